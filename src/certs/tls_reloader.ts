// Hot reload of certificate, key, CA bundle and CRL: new connections use the
// new files without a restart; a broken new file keeps the old material in
// use and is reported once. etcd reloads the certificate per connection but
// not the CA bundle (etcd-io/etcd#7576, #11555); tskv reloads both.
//
// Detection: a poll every intervalMs (default 1 s) reads the files and
// compares a sha256 of their bytes (a few KiB, cheaper than reasoning about
// mtime granularity and atomic renames), plus fs.watch on the directories to
// react at once. Delivery: every attached server gets setSecureContext() (Bun
// and Node; grpc-js' ServerCredentials.updateSecureContextOptions does the
// same), serverOptions() carries an SNICallback for clients that send SNI,
// and clientOptions() is read at each dial.

import { type FSWatcher, watch } from "node:fs"
import { dirname } from "node:path"
import * as tls from "node:tls"
import type { Logger } from "../lib/logger"
import {
  type ClientTlsSettings,
  type TlsConfig,
  type TlsMaterial,
  clientTlsOptions,
  errorText,
  loadTlsMaterial,
  secureContextOptions,
  serverTlsOptions,
} from "./tls"

export interface SecureContextTarget {
  setSecureContext(options: tls.SecureContextOptions): void
}

export interface TlsReloaderOptions {
  readonly config: TlsConfig
  readonly logger: Logger
  /** Poll period; default 1000 ms. */
  readonly intervalMs?: number
  /** Also use fs.watch on the files' directories; default true. */
  readonly watchFiles?: boolean
  /** Settings used by clientOptions() (peer auto-TLS skips verification). */
  readonly client?: ClientTlsSettings
}

export type ReloadOutcome = "unchanged" | "reloaded" | "failed"

export class TlsReloader {
  private materialNow: TlsMaterial
  private context: tls.SecureContext
  private readonly targets = new Set<SecureContextTarget>()
  private readonly listeners = new Set<(material: TlsMaterial) => void>()
  private lastFailure = ""
  private timer: ReturnType<typeof setInterval> | undefined
  private watchers: FSWatcher[] = []
  private debounce: ReturnType<typeof setTimeout> | undefined

  /** Loads the files now; throws TlsMaterialError if they are unusable. */
  constructor(private readonly options: TlsReloaderOptions) {
    this.materialNow = loadTlsMaterial(options.config)
    this.context = tls.createSecureContext(secureContextOptions(this.materialNow, options.config))
    for (const warning of this.materialNow.warnings) options.logger.warn("TLS certificate problem", { warning })
  }

  material(): TlsMaterial {
    return this.materialNow
  }

  secureContext(): tls.SecureContext {
    return this.context
  }

  /** Options for tls.createServer / http2.createSecureServer, with an SNICallback serving the current context. */
  serverOptions(): tls.TlsOptions {
    return {
      ...serverTlsOptions(this.materialNow, this.options.config),
      SNICallback: (_servername: string, callback: (error: Error | null, context?: tls.SecureContext) => void) =>
        callback(null, this.context),
    }
  }

  /** The current context options (for setSecureContext or grpc-js updateSecureContextOptions). */
  secureContextOptions(): tls.SecureContextOptions {
    return secureContextOptions(this.materialNow, this.options.config)
  }

  /** Options for dialing with the current client certificate and CA. */
  clientOptions(): tls.ConnectionOptions {
    return clientTlsOptions(this.materialNow, { ...this.options.config, ...this.options.client })
  }

  /** New connections to `server` use reloaded material; returns a detach function. */
  attach(server: SecureContextTarget): () => void {
    this.targets.add(server)
    return () => this.targets.delete(server)
  }

  /** Called after each successful reload. */
  onReload(listener: (material: TlsMaterial) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Reads the files now and switches to them if they changed and are usable. */
  reloadNow(): ReloadOutcome {
    let next: TlsMaterial
    try {
      next = loadTlsMaterial(this.options.config)
    } catch (e) {
      const message = errorText(e)
      if (message !== this.lastFailure) {
        this.lastFailure = message
        this.options.logger.error("failed to reload TLS files; keeping the previous certificate, key and CA", { error: message })
      }
      return "failed"
    }
    this.lastFailure = ""
    if (next.fingerprint === this.materialNow.fingerprint) return "unchanged"
    const contextOptions = secureContextOptions(next, this.options.config)
    let context: tls.SecureContext
    try {
      context = tls.createSecureContext(contextOptions)
    } catch (e) {
      this.options.logger.error("failed to reload TLS files; keeping the previous certificate, key and CA", { error: errorText(e) })
      return "failed"
    }
    for (const target of this.targets) {
      try {
        target.setSecureContext(contextOptions)
      } catch (e) {
        this.options.logger.error("failed to install reloaded TLS files on a listener", { error: errorText(e) })
        return "failed"
      }
    }
    this.materialNow = next
    this.context = context
    this.options.logger.info("reloaded TLS files", {
      "cert-file": this.options.config.certFile,
      subject: next.leaf.subject,
      "not-after": next.leaf.validTo,
    })
    for (const warning of next.warnings) this.options.logger.warn("TLS certificate problem", { warning })
    for (const listener of this.listeners) listener(next)
    return "reloaded"
  }

  start(): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => this.reloadNow(), this.options.intervalMs ?? 1000)
    this.timer.unref?.()
    if (this.options.watchFiles === false) return
    const config = this.options.config
    const dirs = new Set([config.certFile, config.keyFile, config.trustedCaFile, config.crlFile].filter((f): f is string => !!f).map((f) => dirname(f)))
    for (const dir of dirs) {
      try {
        const watcher = watch(dir, () => this.scheduleReload())
        watcher.on("error", () => {})
        watcher.unref?.()
        this.watchers.push(watcher)
      } catch {
        // Polling covers directories that cannot be watched.
      }
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    if (this.debounce !== undefined) clearTimeout(this.debounce)
    this.debounce = undefined
    for (const watcher of this.watchers) watcher.close()
    this.watchers = []
  }

  private scheduleReload(): void {
    if (this.debounce !== undefined) return
    // Writers replace several files in a row; wait for the burst to settle.
    this.debounce = setTimeout(() => {
      this.debounce = undefined
      this.reloadNow()
    }, 100)
    this.debounce.unref?.()
  }
}
