// Unix datagram sockets (AF_UNIX, SOCK_DGRAM) through libc and bun:ffi: Bun's
// node:dgram speaks UDP only, and systemd's notify socket and journald's native
// socket are datagram sockets. Linux only; a path starting with '@' names an
// abstract socket, as sd_notify(3) reads $NOTIFY_SOCKET.

import { dlopen, FFIType, ptr, read } from "bun:ffi"

const AF_UNIX = 1
const SOCK_DGRAM = 2
const SOCK_NONBLOCK = 0o4000
const SOCK_CLOEXEC = 0o2000000
const MSG_NOSIGNAL = 0x4000
const MSG_DONTWAIT = 0x40
const EAGAIN = 11
/** sizeof(struct sockaddr_un): sa_family_t then char sun_path[108]. */
const SOCKADDR_UN_BYTES = 110
const SUN_PATH_BYTES = 108

interface Libc {
  socket(domain: number, type: number, protocol: number): number
  bind(fd: number, address: Uint8Array, length: number): number
  connect(fd: number, address: Uint8Array, length: number): number
  sendto(fd: number, data: Uint8Array, length: number, flags: number, address: Uint8Array, addressLength: number): number
  recv(fd: number, buffer: Uint8Array, length: number, flags: number): number
  close(fd: number): number
  errno(): number
  strerror(errno: number): string
}

let libc: Libc | undefined

function loadLibc(): Libc {
  if (libc) return libc
  if (process.platform !== "linux") throw new UnixDatagramError("unix datagram sockets need Linux", 0)
  const lib = dlopen("libc.so.6", {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    sendto: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i64 },
    recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
    strerror: { args: [FFIType.i32], returns: FFIType.cstring },
  })
  const s = lib.symbols
  libc = {
    socket: (domain, type, protocol) => s.socket(domain, type, protocol),
    bind: (fd, address, length) => s.bind(fd, ptr(address), length),
    connect: (fd, address, length) => s.connect(fd, ptr(address), length),
    sendto: (fd, data, length, flags, address, addressLength) =>
      Number(s.sendto(fd, data.length === 0 ? null : ptr(data), length, flags, ptr(address), addressLength)),
    recv: (fd, buffer, length, flags) => Number(s.recv(fd, ptr(buffer), length, flags)),
    close: (fd) => s.close(fd),
    errno: () => {
      const at = s.__errno_location()
      return at === null ? 0 : read.i32(at, 0)
    },
    strerror: (errno) => String(s.strerror(errno)),
  }
  return libc
}

export class UnixDatagramError extends Error {
  override readonly name = "UnixDatagramError"
  constructor(
    message: string,
    readonly errno: number,
  ) {
    super(message)
  }
}

function fail(c: Libc, what: string): never {
  const errno = c.errno()
  throw new UnixDatagramError(`${what}: ${c.strerror(errno).toLowerCase()}`, errno)
}

/** struct sockaddr_un for `path` ('@name' = abstract) and the length to pass with it. */
function sockaddr(path: string): { address: Uint8Array; length: number } {
  const name = new TextEncoder().encode(path)
  if (name.length === 0 || name.length >= SUN_PATH_BYTES) throw new UnixDatagramError(`invalid unix socket path ${JSON.stringify(path)}`, 0)
  const address = new Uint8Array(SOCKADDR_UN_BYTES)
  address[0] = AF_UNIX
  address.set(name, 2)
  const abstract = path.startsWith("@")
  if (abstract) address[2] = 0
  // Abstract names are exactly their bytes; a path name carries its NUL.
  return { address, length: 2 + name.length + (abstract ? 0 : 1) }
}

/** Sends each datagram to the socket at `path` from a socket of its own. */
export class UnixDatagramSender {
  private fd: number
  private readonly target: { address: Uint8Array; length: number }

  constructor(readonly path: string) {
    this.target = sockaddr(path)
    const c = loadLibc()
    this.fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)
    if (this.fd < 0) fail(c, "socket")
  }

  /** Connects to the socket (Go's net.Dial("unixgram")): fails at once when nothing listens at the path. */
  connect(): void {
    const c = loadLibc()
    if (c.connect(this.fd, this.target.address, this.target.length) < 0) fail(c, `dial unixgram ${this.path}: connect`)
  }

  /** Sends one datagram; throws UnixDatagramError (ENOENT, ECONNREFUSED, EMSGSIZE ...) when it cannot. */
  send(data: Uint8Array): void {
    const c = loadLibc()
    if (this.fd < 0) throw new UnixDatagramError("send on a closed socket", 0)
    const sent = c.sendto(this.fd, data, data.length, MSG_NOSIGNAL, this.target.address, this.target.length)
    if (sent < 0) fail(c, `sendto ${this.path}`)
  }

  close(): void {
    if (this.fd < 0) return
    loadLibc().close(this.fd)
    this.fd = -1
  }
}

/** A bound, non-blocking datagram socket: what a test puts where systemd or journald would listen. */
export class UnixDatagramReceiver {
  private fd: number
  private readonly buffer = new Uint8Array(256 * 1024)

  constructor(readonly path: string) {
    const c = loadLibc()
    const { address, length } = sockaddr(path)
    this.fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)
    if (this.fd < 0) fail(c, "socket")
    if (c.bind(this.fd, address, length) < 0) {
      const errno = c.errno()
      c.close(this.fd)
      this.fd = -1
      throw new UnixDatagramError(`bind ${path}: ${c.strerror(errno).toLowerCase()}`, errno)
    }
  }

  /** The next datagram waiting, or undefined when there is none. */
  receive(): Uint8Array | undefined {
    const c = loadLibc()
    const n = c.recv(this.fd, this.buffer, this.buffer.length, MSG_DONTWAIT)
    if (n >= 0) return this.buffer.slice(0, n)
    if (c.errno() === EAGAIN) return undefined
    fail(c, `recv ${this.path}`)
  }

  close(): void {
    if (this.fd < 0) return
    loadLibc().close(this.fd)
    this.fd = -1
  }
}
