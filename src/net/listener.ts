// A listening socket in a kernel SO_REUSEPORT group: open, accept, steer, close.
import { readFileSync } from "node:fs";
import { lib } from "../ffi/index.ts";
import { check, EAGAIN, SyscallError } from "../ffi/errno.ts";
import { ConfigError } from "../errors.ts";
import {
  AF_INET, AF_INET6, AF_UNIX, checkPort, decodeSockaddr, encodeSockaddr, formatAddress, literalHost, resolveHost,
  type SocketAddress,
} from "./address.ts";
import {
  IPPROTO_IPV6, IPV6_V6ONLY, SO_REUSEADDR, SO_REUSEPORT, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET,
} from "./constants.ts";

export const BACKLOG_DEFAULT = 4096;

export interface ListenOptions {
  /** IP literal or name; default "0.0.0.0". Ignored when `path` is set. */
  hostname?: string;
  port?: number;
  /** A unix socket path instead of an IP address. */
  path?: string;
  /** Accept queue length; default 4096, clamped to net.core.somaxconn with a warning. */
  backlog?: number;
  /** IPv6 sockets only: refuse IPv4-mapped connections (default false: dual stack on "::"). */
  ipv6Only?: boolean;
  /** Join the port's reuseport group (default true). */
  reusePort?: boolean;
  transport?: "tcp" | "udp";
}

export interface Accepted {
  fd: number;
  peer: SocketAddress;
}

const scratchAddress = new Uint8Array(128);
/** Backlogs already warned about: one warning per value, not one per worker or socket. */
const warnedBacklogs = new Set<number>();

export function somaxconn(): number {
  try {
    return Number(readFileSync("/proc/sys/net/core/somaxconn", "utf8").trim()) || 4096;
  } catch {
    return 4096; // no procfs: let the kernel clamp silently
  }
}

function checkBacklog(backlog: unknown): number {
  if (backlog === undefined) backlog = BACKLOG_DEFAULT;
  if (typeof backlog !== "number" || !Number.isInteger(backlog) || backlog <= 0) {
    throw new ConfigError("backlog", `must be a positive integer, got ${JSON.stringify(backlog)}`);
  }
  const limit = somaxconn();
  if (backlog > limit) {
    if (!warnedBacklogs.has(backlog)) {
      console.warn(`reuseport: backlog ${backlog} is above net.core.somaxconn (${limit}); the kernel uses ${limit}. Raise it with: sysctl -w net.core.somaxconn=${backlog}`);
      warnedBacklogs.add(backlog);
    }
    return limit;
  }
  return backlog;
}

const KNOWN_OPTIONS = new Set(["hostname", "host", "port", "path", "backlog", "ipv6Only", "reusePort", "transport"]);

function checkKeys(options: object): void {
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new ConfigError(key, "is not a listen option");
  }
}

/** Validates options and resolves the host (names through the system resolver), before any syscall. */
export async function resolveListenAddress(options: ListenOptions & { host?: string }): Promise<SocketAddress> {
  checkKeys(options);
  if (options.path !== undefined) return unixAddress(options.path);
  const port = checkPort(options.port ?? 0);
  const { family, address } = await resolveHost(options.hostname ?? options.host ?? "0.0.0.0");
  return { family, address, port };
}

/** The same for IP literals and "localhost" only, without waiting on a resolver. */
export function resolveListenAddressSync(options: ListenOptions & { host?: string }): SocketAddress {
  checkKeys(options);
  if (options.path !== undefined) return unixAddress(options.path);
  const port = checkPort(options.port ?? 0);
  const host = options.hostname ?? options.host ?? "0.0.0.0";
  if (typeof host !== "string" || host === "") throw new ConfigError("hostname", `must be a non-empty string, got ${JSON.stringify(host)}`);
  const literal = literalHost(host);
  if (!literal) throw new ConfigError("hostname", `"${host}" is not an IP address; pass an address (or "localhost"), or resolve the name first`);
  return { ...literal, port };
}

function unixAddress(path: unknown): SocketAddress {
  if (typeof path !== "string" || path === "") throw new ConfigError("path", `must be a non-empty string, got ${JSON.stringify(path)}`);
  return { family: "unix", address: path, port: 0 };
}

export class Listener {
  private closed = false;

  /** The socket is also held elsewhere (systemd's, Listener.inherit): closing it must leave nothing on it. */
  external = false;

  private constructor(
    readonly fd: number,
    readonly transport: "tcp" | "udp",
    /** The bound address, with the kernel-assigned port when port 0 was asked for. */
    readonly address: SocketAddress,
  ) {}

  get port(): number {
    return this.address.port;
  }

  /** Opens, binds and (for TCP) listens. Options are validated before the first syscall. */
  static async open(options: ListenOptions & { host?: string }): Promise<Listener> {
    return Listener.openAt(await resolveListenAddress(options), options);
  }

  /** open() for IP literals, synchronously (what serve() needs to return a listening server). */
  static openSync(options: ListenOptions & { host?: string }): Listener {
    return Listener.openAt(resolveListenAddressSync(options), options);
  }

  /**
   * Binds a TCP socket into the port's reuseport group without listening: it reserves the port
   * (and learns the number for port 0) but takes no connections, since only listening sockets
   * join the kernel's lookup. A cluster primary holds one while its workers listen.
   */
  static reserve(options: ListenOptions & { host?: string }, transport: "tcp" | "udp" = "tcp"): Listener {
    const address = resolveListenAddressSync(options);
    return Listener.openResolved(address, transport, 0, options.ipv6Only ?? false, true, false);
  }

  private static openAt(address: SocketAddress, options: ListenOptions): Listener {
    const transport = options.transport ?? "tcp";
    if (transport !== "tcp" && transport !== "udp") throw new ConfigError("transport", `must be "tcp" or "udp", got ${JSON.stringify(transport)}`);
    const backlog = transport === "tcp" ? checkBacklog(options.backlog) : 0;
    if (options.ipv6Only !== undefined && typeof options.ipv6Only !== "boolean") throw new ConfigError("ipv6Only", "must be a boolean");
    return Listener.openResolved(address, transport, backlog, options.ipv6Only ?? false, options.reusePort ?? true);
  }

  static openResolved(address: SocketAddress, transport: "tcp" | "udp", backlog: number, ipv6Only: boolean, reusePort: boolean, listen = true): Listener {
    const where = formatAddress(address);
    const family = address.family === "unix" ? AF_UNIX : address.family === "IPv6" ? AF_INET6 : AF_INET;
    const fd = check(lib.rp_socket(family, transport === "tcp" ? SOCK_STREAM : SOCK_DGRAM), "socket", where);
    try {
      if (address.family !== "unix") {
        if (reusePort) check(lib.rp_setsockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1), "setsockopt(SO_REUSEPORT)", where);
        // SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT.
        check(lib.rp_setsockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1), "setsockopt(SO_REUSEADDR)", where);
      }
      if (address.family === "IPv6") {
        check(lib.rp_setsockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, ipv6Only ? 1 : 0), "setsockopt(IPV6_V6ONLY)", where);
      }
      const length = encodeSockaddr(address, scratchAddress);
      check(lib.rp_bind(fd, scratchAddress, length), "bind", where);
      if (transport === "tcp" && listen) check(lib.rp_listen(fd, backlog), "listen", where);
      const bound = address.family === "unix" ? address : decodeSockaddr(scratchAddress, check(lib.rp_getsockname(fd, scratchAddress), "getsockname", where));
      return new Listener(fd, transport, bound);
    } catch (error) {
      lib.rp_close(fd);
      throw error;
    }
  }

  /**
   * Serves a listening TCP socket opened elsewhere (a reload's predecessor's, or systemd's): checks it listens
   * on `port`, and applies `backlog` (listen() again only updates it). Takes ownership of fd. `external`: the
   * socket outlives us elsewhere (systemd holds it), so a stop only closes this fd.
   */
  static inherit(fd: number, backlog: number | undefined, port: number, external = false): Listener {
    const address = decodeSockaddr(scratchAddress, check(lib.rp_getsockname(fd, scratchAddress), "getsockname", `fd ${fd}`));
    if (address.port !== port) throw new ConfigError("listener", `fd ${fd} is bound to port ${address.port}, not ${port}`);
    check(lib.rp_listen(fd, checkBacklog(backlog)), "listen", formatAddress(address));
    const listener = new Listener(fd, "tcp", address);
    listener.external = external;
    return listener;
  }

  /** Accepts one pending connection, or returns null when the queue is empty. */
  accept(): Accepted | null {
    const fd = lib.rp_accept(this.fd, scratchAddress);
    if (fd === -EAGAIN) return null;
    if (fd < 0) throw new SyscallError("accept4", -fd, formatAddress(this.address));
    return { fd, peer: decodeSockaddr(scratchAddress, 128) };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    lib.rp_close(this.fd);
  }

  /**
   * Closes a TCP listener without resetting a connection of its reuseport group: it stops letting SYNs in,
   * takes what its accept queue holds into `accepted` (nonblocking, close-on-exec fds the caller now owns),
   * then closes (zig/src/bpf.zig, retireListener). Returns how many it took.
   */
  retire(accepted: Int32Array): number {
    if (this.closed) return 0;
    this.closed = true;
    return Math.max(0, lib.rp_listener_retire(this.fd, new Uint8Array(accepted.buffer, accepted.byteOffset, accepted.byteLength), accepted.length));
  }
}
