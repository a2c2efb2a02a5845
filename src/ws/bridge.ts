// The seam between one worker's pub/sub and other clusters: a broker relays what each cluster publishes
// (redis-bridge.ts is one). Messages inside a cluster go over the cluster's own bus, never through a bridge.

/** Relays published messages between this cluster and others (a broker). One per worker: each worker's bridge is started in that worker. */
export interface PubSubBridge {
  /**
   * Connects; messages other clusters published come to `deliver` (never those this cluster published itself).
   * `clusterId` tells this cluster's messages from others': the same string in every worker of one cluster,
   * a different one in each cluster (default: a random one, for a server that is a cluster of its own).
   */
  start(deliver: (topic: string, data: string | Uint8Array) => void, clusterId?: string): Promise<void>;
  /** Sends a message this worker published to the other clusters. Never throws, never blocks: what cannot be sent is dropped and counted. */
  publish(topic: string, data: string | Uint8Array): void;
  /** This worker got its first subscriber of `topic` / lost its last (so the broker sends only topics someone here wants). */
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Counters: published, delivered, dropped (not connected / buffer full), errors. */
  readonly stats: { published: number; delivered: number; dropped: number; errors: number };
  close(): Promise<void>;
}
