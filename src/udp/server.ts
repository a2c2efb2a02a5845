// serveUdp(): a datagram server on a SO_REUSEPORT UDP socket (the seed guide's UDP workers).
// Each wake receives up to batchCount datagrams with one recvmmsg and sends the replies with one
// sendmmsg. Every drop is counted: replies the kernel refused or that came after close(), datagrams
// a close() from the handler left undelivered, and the kernel's own receive drops for this socket
// (the `drops` column of /proc/net/udp, which the seed guide says to monitor).
import { readlinkSync } from "node:fs";
import { procNetSockets } from "../net/proc-net.ts";
import { ConfigError } from "../errors.ts";
import type { SocketAddress } from "../net/address.ts";
import { EPOLLIN } from "../net/constants.ts";
import { Listener } from "../net/listener.ts";
import { PollLoop } from "../net/poll-loop.ts";
import { DatagramBatch } from "./batch.ts";
import type { DatagramPayload } from "./payload.ts";
import { F, SLOT_FIELDS } from "../counters.ts";

export interface UdpServeOptions {
  port?: number;
  hostname?: string;
  ipv6Only?: boolean;
  reusePort?: boolean;
  /** Datagrams per recvmmsg/sendmmsg (default 64). */
  batchCount?: number;
  /** Largest datagram accepted (default 2048 bytes; longer ones are truncated by the kernel). */
  slotBytes?: number;
  /**
   * Called per datagram. `message` is a copy of its bytes, the handler's to keep; `reply` queues an
   * answer to the sender, sent with the batch: a string (UTF-8) or any BufferSource.
   */
  onMessage: (message: Uint8Array, peer: SocketAddress, reply: (payload: DatagramPayload) => void) => void;
}

export interface UdpStats {
  received: number;
  sent: number;
  /** Replies the kernel did not take (send buffer full), that failed, or that came after close(). */
  sendDrops: number;
  /** Datagrams read in the same batch as a close() from the handler, not handed to it. */
  closeDrops: number;
  /** Datagrams the kernel dropped before we read them (/proc/net/udp `drops` for this socket). */
  kernelDrops: number;
  handlerErrors: number;
}

const WAKE_BATCHES_MAX = 16;
const KNOWN = new Set(["port", "hostname", "ipv6Only", "reusePort", "batchCount", "slotBytes", "onMessage"]);
/** Keys the cluster takes (serveUdp in src/serve.ts), not the UDP server itself. */
export const UDP_CLUSTER_KEYS = ["workers", "mode", "restartsMax", "restartWindowMs", "stopTimeoutMs", "signals", "log"] as const;

/**
 * Counters in a Float64Array laid out like a cluster stats slot (src/counters.ts), so a
 * UDP worker counts straight into shared memory: accepted = datagrams received, requests =
 * replies sent, writeErrors = replies dropped, bytesIn/bytesOut, handlerErrors.
 */
export class UdpServer {
  readonly port: number;
  readonly hostname: string;
  /** Settles when close() has released everything, the runtime's wait on the socket included. */
  readonly closed: Promise<void>;
  private closedResolve!: () => void;
  private readonly counts: Float64Array;
  private readonly inbox: DatagramBatch;
  private readonly outbox: DatagramBatch;
  private outboxCount = 0;
  private readonly loop: PollLoop;
  /** close() was called: nothing more is delivered or sent. */
  private stopped = false;
  /** onReadable is running: a close() from the handler leaves the teardown to its end. */
  private delivering = false;
  /** A graceful stop() came from the handler: drain what is queued, then close. */
  private stopWhenDrained = false;
  private closeDrops = 0;

  constructor(private readonly listener: Listener, private readonly options: UdpServeOptions, counts?: Float64Array) {
    this.counts = counts ?? new Float64Array(SLOT_FIELDS);
    this.closed = new Promise((resolve) => (this.closedResolve = resolve));
    this.port = listener.port;
    this.hostname = listener.address.address;
    this.inbox = new DatagramBatch(options.batchCount ?? 64, options.slotBytes ?? 2048);
    this.outbox = new DatagramBatch(options.batchCount ?? 64, options.slotBytes ?? 2048);
    this.loop = new PollLoop(4);
    this.loop.add(listener.fd, EPOLLIN, 0);
    this.loop.start(() => this.onReadable());
  }

  private onReadable(): void {
    if (this.stopped || this.delivering) return;
    this.delivering = true;
    try {
      for (let round = 0; round < WAKE_BATCHES_MAX && !this.stopped; round++) {
        const count = this.inbox.receive(this.listener.fd);
        if (count === 0) break;
        // Copies: the handler may keep a message, or reply with it later, past the next receive.
        const messages = this.inbox.copies(count);
        for (let i = 0; i < count; i++) {
          if (this.stopped) {
            this.closeDrops += count - i;
            break;
          }
          const peer = this.inbox.peer(i);
          const message = messages[i];
          this.counts[F.accepted]++;
          this.counts[F.bytesIn] += message.byteLength;
          try {
            this.options.onMessage(message, peer, (payload) => this.queueReply(payload, peer));
          } catch (error) {
            this.counts[F.handlerErrors]++;
            console.error("reuseport: udp handler error:", error);
          }
        }
        this.flush();
      }
    } finally {
      this.delivering = false;
      if (this.stopWhenDrained) this.stopped = true;
      if (this.stopped) this.release();
    }
  }

  private queueReply(payload: DatagramPayload, peer: SocketAddress): void {
    if (this.stopped) {
      this.counts[F.writeErrors]++; // a reply after close() (later in the handler, or from a promise): counted, not sent
      return;
    }
    if (this.outboxCount === this.outbox.count) this.flush();
    this.counts[F.bytesOut] += this.outbox.set(this.outboxCount, payload, peer, "reply");
    this.outboxCount++;
    if (!this.delivering) this.flush(); // a reply from outside the batch (a promise, a timer) goes now
  }

  private flush(): void {
    if (this.outboxCount === 0) return;
    let sent = 0;
    try {
      sent = this.outbox.send(this.listener.fd, this.outboxCount);
    } catch {
      sent = 0; // e.g. ECONNREFUSED from an earlier ICMP: counted below as dropped replies
    }
    this.counts[F.requests] += sent;
    this.counts[F.writeErrors] += this.outboxCount - sent;
    this.outboxCount = 0;
  }

  stats(): UdpStats {
    const c = this.counts;
    return {
      received: c[F.accepted], sent: c[F.requests], sendDrops: c[F.writeErrors], handlerErrors: c[F.handlerErrors],
      closeDrops: this.closeDrops,
      kernelDrops: this.stopped ? 0 : kernelDrops(this.listener.fd),
    };
  }

  /** The socket's fd and poller handle (a cluster primary reclaims them if a thread worker dies). */
  get fd(): number {
    return this.listener.fd;
  }

  get pollerHandle(): number {
    return this.loop.handle;
  }

  /** Graceful: answer what is already queued on the socket, then close (what arrives in the
   * instant between that last read and the close is lost with the socket). Otherwise close now.
   * From inside the handler, a graceful stop finishes the batch and drains the socket first. */
  stop(graceful = true, _idleGraceMs = 0): void {
    if (this.stopped) return;
    if (graceful && this.delivering) {
      this.stopWhenDrained = true;
      return;
    }
    if (graceful) this.onReadable();
    this.close();
  }

  /** Closes now. From inside the handler the rest of the batch is not delivered (closeDrops), and
   * the socket, loop and batches go when the running delivery returns: never under its feet. */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (!this.delivering) this.release();
  }

  private release(): void {
    this.flush(); // replies queued before close() were accepted: send them
    this.loop.close();
    this.listener.close();
    this.inbox.close();
    this.outbox.close();
    // Settled once the loop's wake reader has returned too (Deno waits for the wake on its blocking pool).
    void this.loop.ended.then(this.closedResolve);
  }
}

/** Datagrams dropped on every socket bound to `port` (a UDP cluster's workers, seen from the
 * primary, which holds none of their fds): the `drops` column of /proc/net/udp{,6}. */
export function portKernelDrops(port: number): number {
  return procNetSockets("udp").filter((socket) => socket.localPort === port).reduce((sum, socket) => sum + socket.drops, 0);
}

/** The `drops` column of /proc/net/udp{,6} for the socket behind fd (0 when not found). */
export function kernelDrops(fd: number): number {
  let inode: string;
  try {
    inode = /socket:\[(\d+)\]/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1] ?? "";
  } catch {
    return 0;
  }
  return procNetSockets("udp").find((socket) => socket.inode === inode)?.drops ?? 0;
}

/** One UDP server on this thread, in the port's reuseport group. `counts` is a stats slot to
 * count into (a cluster worker's shared memory). */
export function serveUdpSingle(options: UdpServeOptions, counts?: Float64Array): UdpServer {
  checkUdpOptions(options);
  const listener = Listener.openSync({
    hostname: options.hostname ?? "0.0.0.0",
    port: options.port ?? 0,
    ipv6Only: options.ipv6Only,
    reusePort: options.reusePort ?? true,
    transport: "udp",
  });
  try {
    return new UdpServer(listener, options, counts);
  } catch (error) {
    listener.close();
    throw error;
  }
}

/** Checks serveUdp options before anything opens. */
export function checkUdpOptions(options: UdpServeOptions): void {
  if (typeof options !== "object" || options === null) throw new ConfigError("options", "must be an object");
  for (const key of Object.keys(options)) if (!KNOWN.has(key)) throw new ConfigError(key, "is not a serveUdp() option");
  if (typeof options.onMessage !== "function") throw new ConfigError("onMessage", "must be a function");
}
