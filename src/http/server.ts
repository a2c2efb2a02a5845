// serve(): the public HTTP API, shaped after Bun.serve and Deno.serve (both spellings accepted
// where they differ), over one Engine. Options are checked before any syscall.
import { ConfigError } from "../errors.ts";
import { Listener } from "../net/listener.ts";
import { activatedFor, takeActivatedSockets } from "../net/activation.ts";
import { Engine } from "./engine.ts";
import type { ErrorHandler, Handler } from "./answers.ts";
import type { HandlerContext, ServerSurface } from "./handler-context.ts";
import { routedHandler, Router, type Routes } from "./routes.ts";
import { checkCompression, type CompressionOptions, compressing } from "./compression.ts";
import { Health, type HealthOptions } from "./health.ts";
import { type Limits, resolveLimits } from "./limits.ts";
import type { CounterName } from "../counters.ts";
import { checkIoMode, type IoMode, settings } from "../config.ts";
import { type WebSocketHandler, type WebSocketSettings, webSocketSettings } from "../ws/options.ts";
import { WebSockets } from "../ws/websockets.ts";
import { routeDenoUpgrades } from "../ws/deno-socket.ts";
import type { PubSubBridge } from "../ws/bridge.ts";

/** The handler's second argument: Bun's server and Deno's info in one (remoteAddr, completed, requestIP, ...). */
export type ServeInfo = HandlerContext;

export interface ServeOptions {
  /** The request handler (Bun.serve's name); optional with routes (unmatched requests then get 404). */
  fetch?: (request: Request, server: ServeInfo) => Response | Promise<Response>;
  /** The request handler (Deno.serve's name). */
  handler?: (request: Request, server: ServeInfo) => Response | Promise<Response>;
  /** Bun.serve's routes: exact paths, `:params` (req.params), `*` wildcards, per-method objects, static Responses, false. */
  routes?: Routes;
  /** A readiness endpoint answered before routes and handler; 503 while a graceful stop drains (health.ts). */
  health?: boolean | HealthOptions;
  /** Opt-in gzip/Brotli of compressible responses, negotiated from Accept-Encoding (compression.ts). */
  compression?: boolean | CompressionOptions;
  /** Default: $PORT, else 3000. 0 picks a free port (read it back from server.port). A numeric string is taken too. */
  port?: number | string;
  /** IP address or "localhost"; default "0.0.0.0". */
  hostname?: string;
  /** A unix socket path instead of host and port (Bun: unix, Deno: path). */
  unix?: string;
  path?: string;
  /** Answers a handler's throw or rejection (Bun: error, Deno: onError); default a plain 500. */
  error?: (error: unknown) => Response | Promise<Response>;
  onError?: (error: unknown) => Response | Promise<Response>;
  /** Aborting it stops the server gracefully. */
  signal?: AbortSignal;
  onListen?: (address: { hostname: string; port: number; transport: "tcp" | "unix" }) => void;
  limits?: Partial<Limits>;
  /** Bun.serve spelling of limits.idleTimeoutMs, in seconds. */
  idleTimeout?: number;
  /** Bun.serve spelling of limits.maxBodyBytes. */
  maxRequestBodySize?: number;
  backlog?: number;
  /** Join the port's SO_REUSEPORT group (default true, so peers and restarts can share it). */
  reusePort?: boolean;
  ipv6Only?: boolean;
  /** Accepted for Bun.serve compatibility; changes nothing. */
  development?: boolean;
  /** Deno.serve's transport: "tcp" (default) or "unix" with path. */
  transport?: "tcp" | "unix";
  /** Workers in the reuseport group; this engine serves one. */
  workers?: number | "auto";
  /** How sockets are read: "auto" (default: io_uring where the kernel allows it, else epoll), "epoll" or
   * "io_uring" (a SyscallError where a ring cannot be made). Overrides REUSEPORT_IO. */
  io?: IoMode;
  /** Bun.serve's WebSocket handlers (server.upgrade(request) in fetch hands a request to them). */
  websocket?: WebSocketHandler<any>;
  /** Relays published messages to and from other clusters (redisBridge(url)); each worker starts its own. */
  pubsub?: PubSubBridge;
}

const KNOWN = new Set<string>([
  "fetch", "handler", "routes", "compression", "health", "port", "hostname", "unix", "path", "error", "onError", "signal", "onListen", "limits",
  "idleTimeout", "maxRequestBodySize", "backlog", "reusePort", "ipv6Only", "development", "transport", "workers", "io",
  "websocket", "pubsub",
]);

/** Options of Bun.serve and Deno.serve that have no equivalent yet: refused with what to do instead. */
const NOT_YET: Record<string, string> = {
  tls: "TLS is not supported yet: terminate TLS in front (nginx, HAProxy, a load balancer) and serve plain HTTP",
  cert: "TLS is not supported yet: terminate TLS in front (nginx, HAProxy, a load balancer) and serve plain HTTP",
  key: "TLS is not supported yet: terminate TLS in front (nginx, HAProxy, a load balancer) and serve plain HTTP",
};

export interface StopOptions {
  /** true (default): finish in-flight requests, close idle connections. false: close everything now. */
  graceful?: boolean;
  /** Graceful only: force-close what is still open after this long (default 30 s). */
  timeoutMs?: number;
}

export class Server implements ServerSurface {
  /** "single" for a lone engine, "worker" inside a cluster worker (ClusterServer is "primary"). */
  readonly role: "single" | "worker";
  /** Resolved: a Server listens once constructed (a ClusterServer's resolves later). */
  readonly listening: Promise<void> = Promise.resolve();
  readonly hostname: string;
  readonly port: number;
  readonly url: URL;
  /** How sockets are read: "io_uring" (multishot recv) or "epoll"; the `io` option, else REUSEPORT_IO, picks. */
  readonly io: "io_uring" | "epoll";
  readonly finished: Promise<void>;
  /** Bun.serve's development flag, as given (it changes nothing here). */
  readonly development: boolean;
  private stopTimer: ReturnType<typeof setTimeout> | null = null;
  /** The compression and health endpoint the server started with: a reload's handlers get them too. */
  private readonly compression: CompressionSettings;
  private readonly health: Health | null;
  /** This server's WebSockets: upgrades, topics, the idle sweep. */
  readonly webSockets: WebSockets;

  constructor(
    private readonly engine: Engine,
    private readonly listener: Listener,
    role: "single" | "worker" = "single",
    options: Pick<ServeOptions, "development" | "compression"> & { healthEndpoint?: Health | null; webSocketSettings?: WebSocketSettings } = {},
  ) {
    this.role = role;
    this.development = options.development === true;
    this.compression = checkCompression(options.compression);
    this.health = options.healthEndpoint ?? null;
    engine.answers.surface = this;
    this.webSockets = new WebSockets(options.webSocketSettings ?? webSocketSettings(undefined), engine);
    engine.answers.upgrades = this.webSockets;
    routeDenoUpgrades();
    this.io = engine.readsByRing ? "io_uring" : "epoll";
    const { address } = listener;
    this.hostname = address.address;
    this.port = address.port;
    this.url = new URL(address.family === "unix" ? "http://localhost/" : `${engine.origin}/`);
    this.finished = engine.closed.then(() => {
      if (this.stopTimer) clearTimeout(this.stopTimer);
      return this.webSockets.close();
    });
  }

  /** Deno.serve's addr. */
  get addr(): { hostname: string; port: number; transport: "tcp" | "unix" } {
    return { hostname: this.hostname, port: this.port, transport: this.listener.address.family === "unix" ? "unix" : "tcp" };
  }

  /** Bun.serve's requestIP(): the client's address for a request this server received. */
  requestIP(request: Request): { address: string; family: "IPv4" | "IPv6" | "unix"; port: number } | null {
    const conn = this.engine.requestOwners.get(request);
    if (!conn) return null;
    return { address: conn.peer.address, family: conn.peer.family, port: conn.peer.port };
  }

  get pendingConnections(): number {
    return this.engine.stats.active;
  }

  /** Bun: hands the request's connection to the websocket handlers once fetch returns; false when not an upgrade. */
  upgrade(request: Request, options?: { data?: unknown; headers?: unknown }): boolean {
    return this.webSockets.upgrade(request, options);
  }

  /** Bun: a message to every subscriber of topic, in every worker; returns the bytes sent in this one. */
  publish(topic: string, data: string | ArrayBufferView | ArrayBuffer, compress = false): number {
    return this.webSockets.publish(topic, data, compress);
  }

  /** Bun: subscribers of topic in this worker. */
  subscriberCount(topic: string): number {
    return this.webSockets.topics.count(topic);
  }

  /** Bun: open WebSockets. */
  get pendingWebSockets(): number {
    return this.webSockets.open;
  }

  /**
   * Bun's server.timeout(): the connection `request` came on may stay idle `seconds` between requests from
   * now on, instead of the server's idleTimeout (0: no limit). A request of another server is ignored.
   */
  timeout(request: Request, seconds: number): void {
    if (typeof seconds !== "number" || !(seconds >= 0) || !Number.isFinite(seconds)) {
      throw new ConfigError("timeout seconds", `must be a non-negative number, got ${JSON.stringify(seconds)}`);
    }
    const conn = this.engine.requestOwners.get(request);
    if (conn) conn.idleTimeoutMs = seconds === 0 ? Infinity : Math.round(seconds * 1000);
  }

  /** Requests with the handler or being answered now. */
  get pendingRequests(): number {
    return this.engine.pendingRequests;
  }

  /**
   * Bun's server.reload(): requests from now on go to the new fetch/routes/error (a request in flight
   * finishes with its own). Only those three may change; a listener option needs a restart (or the
   * cluster's rolling reload).
   */
  reload(options: Pick<ServeOptions, "fetch" | "handler" | "routes" | "error" | "onError">): this {
    if (typeof options !== "object" || options === null) throw new ConfigError("reload options", "must be an object");
    for (const key of Object.keys(options)) {
      if (!RELOADABLE.has(key)) throw new ConfigError(key, "cannot change in server.reload() (only fetch, handler, routes, error, onError)");
    }
    const { fetch, error } = handlers(options, this.compression, this.health);
    this.engine.answers.replace(fetch, error);
    return this;
  }

  /** This engine's counters (the cluster's ServerCluster.stats() sums every worker's). */
  stats(): Record<"active" | CounterName, number> {
    return this.engine.stats.snapshot();
  }

  /** Stops accepting and ends connections (see StopOptions); also Bun's stop(closeActive). */
  stop(options: StopOptions | boolean = {}): Promise<void> {
    const { graceful = true, timeoutMs = 30_000 } = typeof options === "boolean" ? { graceful: !options } : options;
    if (graceful && this.health !== null && !this.health.draining) {
      // The health endpoint turns 503 and the listener stays open for its drain delay, then the stop goes on.
      void this.health.drain().then(() => this.stop({ graceful: true, timeoutMs }));
      return this.finished;
    }
    this.engine.stop(graceful);
    if (graceful && this.stopTimer === null) {
      this.stopTimer = setTimeout(() => this.engine.stop(false), timeoutMs);
    }
    return this.finished;
  }

  /** Deno.serve's graceful shutdown. */
  shutdown(): Promise<void> {
    return this.stop({ graceful: true });
  }
}

const RELOADABLE = new Set(["fetch", "handler", "routes", "error", "onError"]);

type CompressionSettings = ReturnType<typeof checkCompression>;

/** The one handler (routes compiled in front of fetch, compression after them) and the error handler, checked. */
function handlers(
  options: Pick<ServeOptions, "fetch" | "handler" | "routes" | "error" | "onError">,
  compression: CompressionSettings,
  health: Health | null,
): { fetch: Handler; error: ErrorHandler | null } {
  const fetch = pick<Handler>(options as ServeOptions, "fetch", "handler");
  checkFunction("fetch", fetch, options.routes === undefined);
  const error = pick<ErrorHandler>(options as ServeOptions, "error", "onError");
  checkFunction("error", error, false);
  const routed = options.routes === undefined ? fetch! : routedHandler(new Router(options.routes), fetch ?? null);
  const compressed = compression === null ? routed : compressing(routed, compression);
  return { fetch: health === null ? compressed : health.wrap(compressed), error: error ?? null };
}

/** A port number, or a string of digits (process.env.PORT as Bun.serve takes it); the listener checks the range. */
function portOf(port: number | string | undefined): number {
  if (port === undefined) return settings.port.read();
  if (typeof port === "string") {
    if (!/^\d{1,5}$/.test(port.trim())) throw new ConfigError("port", `must be an integer from 0 to 65535 (or a string of one), got ${JSON.stringify(port)}`);
    return Number(port.trim());
  }
  return port;
}

function pick<T>(options: ServeOptions, a: keyof ServeOptions, b: keyof ServeOptions): T | undefined {
  if (options[a] !== undefined && options[b] !== undefined) {
    throw new ConfigError(String(a), `and ${String(b)} are two names for one option; pass one`);
  }
  return (options[a] ?? options[b]) as T | undefined;
}

function checkBridge(bridge: unknown): void {
  const shape = bridge as Partial<PubSubBridge> | null;
  if (typeof shape !== "object" || shape === null || typeof shape.start !== "function" || typeof shape.publish !== "function") {
    throw new ConfigError("pubsub", "must be a pub/sub bridge (redisBridge(url), or an object with start, publish, subscribe, unsubscribe and close)");
  }
}

function checkFunction(name: string, value: unknown, required: boolean): void {
  if (value === undefined && !required) return;
  if (typeof value !== "function") throw new ConfigError(name, `must be a function, got ${value === undefined ? "nothing" : typeof value}`);
}

/** Validates options and merges the Bun/Deno spellings; throws ConfigError naming the option. */
export function normalizeOptions(options: ServeOptions) {
  if (typeof options !== "object" || options === null) throw new ConfigError("options", "must be an object");
  for (const key of Object.keys(options)) {
    if (NOT_YET[key] !== undefined && (options as Record<string, unknown>)[key] !== undefined) throw new ConfigError(key, `is not supported yet: ${NOT_YET[key]}`);
    if (!KNOWN.has(key) && NOT_YET[key] === undefined) throw new ConfigError(key, "is not a serve() option");
  }
  const health = Health.from(options.health);
  const { fetch, error } = handlers(options, checkCompression(options.compression), health);
  checkFunction("onListen", options.onListen, false);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new ConfigError("signal", "must be an AbortSignal");
  const limits = resolveLimits(options.limits);
  if (options.idleTimeout !== undefined) {
    if (options.limits?.idleTimeoutMs !== undefined) throw new ConfigError("idleTimeout", "and limits.idleTimeoutMs are the same option; pass one");
    if (typeof options.idleTimeout !== "number" || !(options.idleTimeout > 0)) throw new ConfigError("idleTimeout", `must be a positive number of seconds, got ${JSON.stringify(options.idleTimeout)}`);
    limits.idleTimeoutMs = Math.round(options.idleTimeout * 1000);
  }
  if (options.maxRequestBodySize !== undefined) {
    if (options.limits?.maxBodyBytes !== undefined) throw new ConfigError("maxRequestBodySize", "and limits.maxBodyBytes are the same option; pass one");
    const size = options.maxRequestBodySize;
    if (typeof size !== "number" || !Number.isInteger(size) || size <= 0) throw new ConfigError("maxRequestBodySize", `must be a positive integer, got ${JSON.stringify(size)}`);
    limits.maxBodyBytes = size;
  }
  const path = pick<string>(options, "unix", "path");
  if (options.transport !== undefined && options.transport !== "tcp" && options.transport !== "unix") {
    throw new ConfigError("transport", `must be "tcp" or "unix", got ${JSON.stringify(options.transport)}`);
  }
  if (options.transport === "unix" && path === undefined) throw new ConfigError("transport", "\"unix\" needs path");
  const port = portOf(options.port);
  const io = options.io === undefined ? undefined : checkIoMode(options.io);
  const websocket = webSocketSettings(options.websocket);
  if (options.pubsub !== undefined) checkBridge(options.pubsub);
  return { fetch, error, limits, path, port, io, health, websocket };
}

/** systemd's socket (socket activation) for a one-engine server, or null when none was passed. */
function activatedListener(options: ServeOptions, port: number): Listener | null {
  const sockets = takeActivatedSockets();
  if (sockets === null) return null;
  activatedFor(sockets, "tcp", "serve()");
  if (sockets.length > 1) throw new ConfigError("LISTEN_FDS", `holds ${sockets.length} sockets; one engine serves one (give workers: ${sockets.length}, one per socket)`);
  const [socket] = sockets;
  if (options.port !== undefined && port !== 0 && port !== socket.address.port) {
    throw new ConfigError("port", `is ${port}, but systemd passed a socket on port ${socket.address.port}`);
  }
  return Listener.inherit(socket.fd, options.backlog, socket.address.port, true);
}

/** Starts one HTTP engine on this thread (one member of the port's reuseport group). */
export function serveSingle(options: ServeOptions): Server {
  const { fetch, error, limits, path, port, io, health, websocket } = normalizeOptions(options);
  const activated = path === undefined ? activatedListener(options, port) : null;
  const listener = activated ?? Listener.openSync(path !== undefined
    ? { path, backlog: options.backlog }
    : { hostname: options.hostname ?? "0.0.0.0", port, backlog: options.backlog, ipv6Only: options.ipv6Only, reusePort: options.reusePort ?? true });
  let engine: Engine;
  try {
    engine = new Engine(listener, { limits, fetch, error, io });
  } catch (failure) {
    listener.close();
    throw failure;
  }
  const server = new Server(engine, listener, "single", { ...options, healthEndpoint: health, webSocketSettings: websocket });
  if (options.pubsub !== undefined) server.webSockets.bridge(options.pubsub);
  if (options.signal) {
    if (options.signal.aborted) void server.stop();
    else options.signal.addEventListener("abort", () => void server.stop(), { once: true });
  }
  if (options.onListen) options.onListen(server.addr);
  else console.error(`Listening on ${server.url.href}`); // Deno.serve's line, on stderr like its; onListen replaces it
  return server;
}

