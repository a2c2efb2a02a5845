// The WebSockets of one server (engine): upgrade requests (Bun's server.upgrade, Deno's upgradeWebSocket)
// completed into ServerWebSockets when the handler answers, the idle sweep, topics and counters.
import type { EngineStats } from "../http/engine-stats.ts";
import type { SendBatch } from "../http/send-batch.ts";
import { requestOwner } from "../http/request.ts";
import type { Upgrades, UpgradeSource } from "../http/upgrade.ts";
import { checkUpgrade, headerPairs, switchingHead, type UpgradeRequest } from "./handshake.ts";
import { MessageDeflater, MessageInflater, negotiateDeflate } from "./deflate.ts";
import type { WebSocketSettings } from "./options.ts";
import { ServerWebSocket, type SocketEvents, type SocketHost } from "./socket.ts";
import { Topics } from "./topics.ts";
import { WsStats } from "./stats.ts";
import type { PubSubBridge } from "./bridge.ts";
import { bytesOf } from "./socket.ts";

/** The idle sweep's period: idle timeouts are kept to within about this. */
const SWEEP_MS = 1000;

/** An upgrade a handler asked for, waiting for the handler's answer (Connection.pendingUpgrade). */
export interface PendingUpgrade {
  readonly fields: UpgradeRequest;
  readonly data: unknown;
  readonly headers: [string, string][];
  readonly events: SocketEvents<unknown>;
  /** Deno's idiom: the handler must answer with this Response; null for Bun's (any answer). */
  readonly response: Response | null;
  /** The subprotocol chosen (null: none). */
  readonly protocol: string | null;
  /** Deno's idiom: its own idle timeout, in ms (null: the server's). */
  readonly idleTimeoutMs: number | null;
  /** Called with the socket once open, or with null when the handler answered with another Response. */
  readonly settle: ((ws: ServerWebSocket<unknown> | null) => void) | null;
}

/** What the WebSockets need of their engine. */
export interface WebSocketEngine {
  readonly stats: EngineStats;
  readonly batch: SendBatch;
  reportError(error: unknown, what: string): void;
}

export class WebSockets implements Upgrades, SocketHost {
  readonly stats: WsStats;
  readonly topics: Topics;
  private readonly sockets = new Set<ServerWebSocket<unknown>>();
  private readonly idleMs = new Map<ServerWebSocket<unknown>, number>();
  private sweepTimer: ReturnType<typeof setInterval> | null = null;

  constructor(readonly settings: WebSocketSettings, private readonly engine: WebSocketEngine) {
    this.stats = new WsStats(engine.stats);
    this.topics = new Topics((fn) => this.cork(fn));
  }

  /** Open WebSockets (Bun's server.pendingWebSockets). */
  get open(): number {
    return this.sockets.size;
  }

  /** The connection `request` is in flight on, when it may still be upgraded. */
  source(request: Request): UpgradeSource | null {
    const conn = requestOwner(request) as (UpgradeSource & { upgraded: unknown; busy: boolean }) | undefined;
    if (conn === undefined || conn.closed || conn.upgraded !== null || !conn.busy || conn.pendingUpgrade !== null) return null;
    return conn;
  }

  /** Bun's server.upgrade(request, { data, headers }): true when the request is an upgrade and will be one. */
  upgrade(request: Request, options?: { data?: unknown; headers?: unknown }): boolean {
    const handler = this.settings.handler;
    if (handler === null) throw new TypeError("server.upgrade(): pass websocket: { message(ws, data) { ... } } to serve() first");
    const conn = this.source(request);
    if (conn === null) return false;
    const fields: UpgradeRequest = { key: "", protocols: [], extensions: null };
    if (checkUpgrade(request, fields) !== null) return false;
    const headers = headerPairs(options?.headers);
    const chosen = headers.find(([name]) => name.toLowerCase() === "sec-websocket-protocol");
    const pending: PendingUpgrade = {
      fields, data: options?.data, headers: headers.filter((h) => h !== chosen), events: handler, response: null,
      protocol: chosen?.[1] ?? null, idleTimeoutMs: null, settle: null,
    };
    conn.pendingUpgrade = pending;
    return true;
  }

  complete(conn: UpgradeSource, answer: unknown): boolean {
    const pending = conn.pendingUpgrade as PendingUpgrade;
    if (pending.response !== null && answer !== pending.response) {
      conn.pendingUpgrade = null; // Deno: the handler answered with another Response; it is sent instead
      pending.settle?.(null);
      return false;
    }
    const { fields } = pending;
    const deflate = this.settings.deflate === null ? null : negotiateDeflate(fields.extensions, this.settings.deflate);
    const head = switchingHead(fields.key, pending.protocol, deflate?.response ?? null, pending.headers);
    const ws = new ServerWebSocket(conn, this, pending.events, pending.data, {
      protocol: pending.protocol ?? "", extensions: deflate?.response ?? "",
      inflater: deflate === null ? null : new MessageInflater(deflate.params),
      deflater: deflate === null ? null : new MessageDeflater(deflate.params),
      deflateThresholdBytes: deflate?.params.thresholdBytes ?? 0,
      idleTimeoutMs: pending.idleTimeoutMs ?? this.settings.idleTimeoutMs,
    });
    conn.takeOver(head, ws);
    pending.settle?.(ws);
    ws.start();
    return true;
  }

  /** Bun's server.publish: to every subscriber of topic in the cluster; the bytes sent in this worker. */
  publish(topic: string, data: string | ArrayBufferView | ArrayBuffer, compress = false): number {
    if (typeof topic !== "string" || topic.length === 0) throw new TypeError(`a topic must be a non-empty string, got ${JSON.stringify(topic)}`);
    return this.topics.publish(topic, typeof data === "string" ? data : bytesOf(data), compress, null);
  }

  /**
   * Starts this worker's bridge to other clusters (`clusterId`: the same in every worker of one cluster); a
   * failure to connect is reported, and publishes stay inside the cluster.
   */
  bridge(bridge: PubSubBridge, clusterId?: string): void {
    this.topics.bridge = bridge;
    bridge.start((topic, data) => this.topics.deliver(topic, data), clusterId).catch((error) => {
      this.reportError(error, "the pub/sub bridge did not start:");
    });
  }

  /** The engine closed: the sweep and the bridge end. */
  close(): Promise<void> {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    const bridge = this.topics.bridge;
    this.topics.bridge = null;
    return bridge === null ? Promise.resolve() : bridge.close().catch((error) => this.reportError(error, "the pub/sub bridge did not close:"));
  }

  /** Runs fn with every send it makes gathered into the engine's batch, which leaves when fn returns. */
  cork<R>(fn: () => R): R {
    const batch = this.engine.batch;
    if (batch.roundNow !== 0) return fn(); // inside a poll round: the round's end sends it
    batch.beginRound(Date.now());
    try {
      return fn();
    } finally {
      batch.endRound();
    }
  }

  reportError(error: unknown, what: string): void {
    this.engine.reportError(error, what);
  }

  opened(ws: ServerWebSocket<unknown>): void {
    this.sockets.add(ws);
    this.stats.opened();
    if (ws.idleTimeoutMs > 0) {
      this.idleMs.set(ws, 0);
      this.sweepTimer ??= setInterval(() => this.sweep(), SWEEP_MS);
    }
  }

  closed(ws: ServerWebSocket<unknown>): void {
    this.sockets.delete(ws);
    this.idleMs.delete(ws);
    if (this.idleMs.size === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  /** Each socket that received nothing for its idle timeout is pinged once (sendPings), then closed. */
  private sweep(): void {
    this.cork(() => {
      for (const [ws, idle] of this.idleMs) {
        if (ws.active) {
          ws.active = false;
          this.idleMs.set(ws, 0);
        } else if (idle + SWEEP_MS >= ws.idleTimeoutMs) {
          this.idleMs.set(ws, 0);
          ws.onIdle();
        } else this.idleMs.set(ws, idle + SWEEP_MS);
      }
    });
  }
}
