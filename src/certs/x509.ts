// @peculiar/x509, loaded after the Reflect metadata polyfill it needs (Bun
// evaluates a CommonJS dependency before its ES siblings, so a static import
// would run tsyringe's check before the polyfill is installed).

import "./reflect_metadata"
import type * as X509 from "@peculiar/x509"

// require, not a top-level await: the executable is compiled to bytecode, which needs a CommonJS bundle.
export const x509: typeof X509 = require("@peculiar/x509")
x509.cryptoProvider.set(globalThis.crypto)

export type { X509 }
