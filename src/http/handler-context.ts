// The handler's second argument: Bun's `server` (requestIP, pendingRequests, port, stop, reload, ...) and
// Deno's `info` (remoteAddr, completed) in one object. One is made per request, with two fields; everything
// else is read on use, so an async handler that looks at it later still sees its own request's answers.
import type { SocketAddress } from "../net/address.ts";

export interface RemoteAddr {
  hostname: string;
  port: number;
  transport: "tcp" | "unix";
}

/** What a server offers its handlers (Server implements it; so does a cluster worker's Server). */
export interface ServerSurface {
  readonly port: number;
  readonly hostname: string;
  readonly url: URL;
  readonly development: boolean;
  readonly pendingRequests: number;
  readonly pendingConnections: number;
  requestIP(request: Request): { address: string; family: "IPv4" | "IPv6" | "unix"; port: number } | null;
  timeout(request: Request, seconds: number): void;
  stop(closeActive?: boolean): Promise<void>;
  reload(options: object): unknown;
}

/** What the context reads of the connection a request came on. */
export interface ContextConnection {
  readonly peer: SocketAddress;
  /** Requests dispatched on this connection so far (this one included while its handler runs). */
  readonly requests: number;
  /** Settles once the response to this connection's request number `request` is sent, or the connection ends. */
  responded(request: number): Promise<void>;
}

export class HandlerContext {
  readonly #server: ServerSurface;
  readonly #conn: ContextConnection;
  readonly #request: number;

  constructor(server: ServerSurface, conn: ContextConnection) {
    this.#server = server;
    this.#conn = conn;
    this.#request = conn.requests;
  }

  /** Deno: the client's address. */
  get remoteAddr(): RemoteAddr {
    const peer = this.#conn.peer;
    return { hostname: peer.address, port: peer.port, transport: peer.family === "unix" ? "unix" : "tcp" };
  }

  /** Deno: settles when this request's response has been sent (or its connection ended first). */
  get completed(): Promise<void> {
    return this.#conn.responded(this.#request);
  }

  requestIP(request: Request): ReturnType<ServerSurface["requestIP"]> {
    return this.#server.requestIP(request);
  }

  /** Bun: this request's connection may stay idle `seconds` between requests (0: for ever). */
  timeout(request: Request, seconds: number): void {
    this.#server.timeout(request, seconds);
  }

  /** Bun: the WebSocket upgrade. There are no WebSockets yet: it says so rather than answering false. */
  upgrade(_request: Request, _options?: unknown): never {
    throw new TypeError("server.upgrade(): reuseport does not support WebSocket yet; serve WebSockets from the runtime's own server on another port");
  }

  /** Bun: bytes sent to a topic's subscribers; without WebSockets there are none. */
  publish(_topic: string, _data: unknown, _compress?: boolean): number {
    return 0;
  }

  subscriberCount(_topic: string): number {
    return 0;
  }

  get pendingRequests(): number {
    return this.#server.pendingRequests;
  }

  get pendingConnections(): number {
    return this.#server.pendingConnections;
  }

  get port(): number {
    return this.#server.port;
  }

  get hostname(): string {
    return this.#server.hostname;
  }

  get url(): URL {
    return this.#server.url;
  }

  get development(): boolean {
    return this.#server.development;
  }

  stop(closeActive?: boolean): Promise<void> {
    return this.#server.stop(closeActive);
  }

  reload(options: object): unknown {
    return this.#server.reload(options);
  }
}
