// The counters' layout: one slot of f64 fields per worker (or per single server), shared by the
// HTTP engine and the UDP server that write them and by the cluster that maps them in shared memory
// (src/cluster/shared-stats.ts). Neutral ground, so that http/ and udp/ need nothing of cluster/.

export const SLOT_FIELDS = 48;

/** Field index within a slot; counters only grow, gauges (state, active, ...) don't. */
export const F = {
  state: 0, // 0 free, 1 starting, 2 listening, 3 retiring, 4 exited
  workerId: 1,
  generation: 2,
  pid: 3,
  threadId: 4,
  cpu: 5,
  active: 6,
  startedAtMs: 7,
  accepted: 8,
  requests: 9,
  bytesIn: 10,
  bytesOut: 11,
  handlerErrors: 12,
  protocolErrors: 13,
  rejectedConnections: 14,
  acceptErrors: 15,
  writeErrors: 16,
  timeouts: 17,
  bytesDiscarded: 18,
  /** Date.now() written by the worker's loop every HEARTBEAT_MS; stale means stalled. */
  heartbeatMs: 19,
  /** For thread workers: the listener fd + 1 and the poller handle (0: none), which the primary
   * closes if the thread dies holding them; the worker zeroes each before it closes it itself. */
  listenerFd: 20,
  pollerHandle: 21,
  // Written by the primary only:
  /** In a retired record: crashes of this worker id that were replaced. */
  restarts: 22,
  /** 1 while the primary sees this slot's worker stalled (least-connections). */
  stalled: 23,
  /** 1 for the slot of the worker currently serving its id (0 for one that is retiring). */
  current: 24,
  /** Connections that ended in a read error (ECONNRESET ...), their requests unanswered. */
  readErrors: 25,
  /** For thread workers: the io_uring handle + 1 (0: none), destroyed by the primary if the thread dies. */
  ringHandle: 26,
  /** Responses cut because the client read nothing for limits.sendTimeoutMs. */
  sendTimeouts: 27,
  /** Request bodies answered 408 because no byte came for limits.bodyTimeoutMs. */
  bodyTimeouts: 28,
  /** Pipelined requests held back while a connection's unsent output was above limits.maxPendingOutputBytes. */
  outputPauses: 29,
  /** WebSocket connections opened (upgraded) and ended; open ones are the difference, a crashed worker's are lost. */
  wsOpened: 30,
  wsClosed: 31,
  wsMessagesIn: 32,
  wsMessagesOut: 33,
  wsBytesIn: 34,
  wsBytesOut: 35,
  /** Messages not sent: over a socket's backpressureLimit, or to a closed socket, or a cluster publish lost. */
  wsDropped: 36,
  /** Ends by close code: 1000/1001, protocol faults (1002, 1003, 1007, 1008, 1009, 1011), without a close frame (1006), any other. */
  wsClosesNormal: 37,
  wsClosesError: 38,
  wsClosesAbnormal: 39,
  wsClosesOther: 40,
} as const;

export const COUNTER_NAMES = [
  "accepted", "requests", "bytesIn", "bytesOut", "handlerErrors", "protocolErrors", "rejectedConnections",
  "acceptErrors", "readErrors", "writeErrors", "timeouts", "bytesDiscarded", "sendTimeouts", "bodyTimeouts",
  "outputPauses", "wsOpened", "wsClosed", "wsMessagesIn", "wsMessagesOut", "wsBytesIn", "wsBytesOut", "wsDropped",
  "wsClosesNormal", "wsClosesError", "wsClosesAbnormal", "wsClosesOther",
] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];
