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
  upgrade(request: Request, options?: { data?: unknown; headers?: unknown }): boolean;
  publish(topic: string, data: string | ArrayBufferView | ArrayBuffer, compress?: boolean): number;
  subscriberCount(topic: string): number;
  readonly pendingWebSockets: number;
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

  /** Bun: the request's connection goes to the websocket handlers once the handler returns (true), or false. */
  upgrade(request: Request, options?: { data?: unknown; headers?: unknown }): boolean {
    return this.#server.upgrade(request, options);
  }

  /** Bun: to every subscriber of topic in the cluster; the bytes sent in this worker. */
  publish(topic: string, data: string | ArrayBufferView | ArrayBuffer, compress?: boolean): number {
    return this.#server.publish(topic, data, compress);
  }

  subscriberCount(topic: string): number {
    return this.#server.subscriberCount(topic);
  }

  get pendingWebSockets(): number {
    return this.#server.pendingWebSockets;
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
