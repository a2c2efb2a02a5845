// Pub/sub of one worker: topic → its subscribed sockets here. A publish goes to them, to the other workers
// of the cluster (the bus, src/cluster/pubsub.ts) and to other clusters (a bridge, e.g. redis-bridge.ts); what
// comes from the bus or a bridge goes to the subscribers here only.
import { Opcode } from "./frames.ts";
import { type ServerWebSocket, type SocketTopics, textBytes } from "./socket.ts";
import type { PubSubBridge } from "./bridge.ts";

/** The other workers of this cluster: a message published here reaches them once, in publish order. */
export interface TopicBus {
  publish(topic: string, data: string | Uint8Array): void;
}

export class Topics implements SocketTopics {
  private readonly subscribers = new Map<string, Set<ServerWebSocket<unknown>>>();
  /** The cluster's other workers (null: a lone server). */
  bus: TopicBus | null = null;
  /** Other clusters, through a broker (null: none). */
  bridge: PubSubBridge | null = null;

  constructor(private readonly cork: <R>(fn: () => R) => R) {}

  subscribe(ws: ServerWebSocket<unknown>, topic: string): void {
    let set = this.subscribers.get(topic);
    if (set === undefined) {
      this.subscribers.set(topic, set = new Set());
      this.bridge?.subscribe(topic);
    }
    set.add(ws);
  }

  unsubscribe(ws: ServerWebSocket<unknown>, topic: string): void {
    const set = this.subscribers.get(topic);
    if (set === undefined || !set.delete(ws) || set.size > 0) return;
    this.subscribers.delete(topic);
    this.bridge?.unsubscribe(topic);
  }

  /** Subscribers of topic in this worker. */
  count(topic: string): number {
    return this.subscribers.get(topic)?.size ?? 0;
  }

  /** A message published in this worker: to every subscriber of the cluster and beyond; returns bytes sent here. */
  publish(topic: string, data: string | Uint8Array, compress: boolean, except: ServerWebSocket<unknown> | null): number {
    this.bus?.publish(topic, data);
    this.bridge?.publish(topic, data);
    return this.deliver(topic, data, compress, except);
  }

  /** To the subscribers in this worker only (a message from the bus or a bridge comes here). */
  deliver(topic: string, data: string | Uint8Array, compress = false, except: ServerWebSocket<unknown> | null = null): number {
    const set = this.subscribers.get(topic);
    if (set === undefined) return 0;
    const text = typeof data === "string";
    // Encoded once for all of them (each write copies it or sends it at once).
    const payload = text ? (set.size > 1 ? new TextEncoder().encode(data) : textBytes(data)) : data;
    const opcode = text ? Opcode.Text : Opcode.Binary;
    return this.cork(() => {
      let sent = 0;
      for (const ws of set) {
        if (ws === except) continue;
        const result = ws.sendFrame(opcode, payload, compress);
        if (result > 0) sent += result;
      }
      return sent;
    });
  }
}
