// The pub/sub bridge interface (PROVISIONAL copy of the agreed interface: the redis-bridge helper owns this file and may replace it).
/** Relays published messages between this cluster and others (a broker). One per worker: each worker's bridge is started in that worker. */
export interface PubSubBridge {
  start(deliver: (topic: string, data: string | Uint8Array) => void): Promise<void>;
  publish(topic: string, data: string | Uint8Array): void;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  readonly stats: { published: number; delivered: number; dropped: number; errors: number };
  close(): Promise<void>;
}
