// serveUdp(): a datagram server on a SO_REUSEPORT UDP socket (the seed guide's UDP workers).
// Each wake receives up to batchCount datagrams with one recvmmsg and sends the replies with one
// sendmmsg. Every drop is counted: replies the kernel refused, and the kernel's own receive drops
// for this socket (the `drops` column of /proc/net/udp, which the seed guide says to monitor).
import { readFileSync, readlinkSync } from "node:fs";
import { ConfigError } from "../errors.ts";
import type { SocketAddress } from "../net/address.ts";
import { EPOLLIN } from "../net/constants.ts";
import { Listener } from "../net/listener.ts";
import { PollLoop } from "../net/poll-loop.ts";
import { DatagramBatch } from "./batch.ts";

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
   * Called per datagram. `message` is a view into the receive batch, valid during the call only
   * (copy it to keep it); `reply` queues an answer to the sender, sent with the batch.
   */
  onMessage: (message: Uint8Array, peer: SocketAddress, reply: (bytes: Uint8Array) => void) => void;
}

export interface UdpStats {
  received: number;
  sent: number;
  /** Replies the kernel did not take (send buffer full) or that failed. */
  sendDrops: number;
  /** Datagrams the kernel dropped before we read them (/proc/net/udp `drops` for this socket). */
  kernelDrops: number;
  handlerErrors: number;
}

const WAKE_BATCHES_MAX = 16;
const KNOWN = new Set(["port", "hostname", "ipv6Only", "reusePort", "batchCount", "slotBytes", "onMessage"]);

export class UdpServer {
  readonly port: number;
  readonly hostname: string;
  private readonly counts = { received: 0, sent: 0, sendDrops: 0, handlerErrors: 0 };
  private readonly inbox: DatagramBatch;
  private readonly outbox: DatagramBatch;
  private outboxCount = 0;
  private readonly loop: PollLoop;
  private closed = false;

  constructor(private readonly listener: Listener, private readonly options: UdpServeOptions) {
    this.port = listener.port;
    this.hostname = listener.address.address;
    this.inbox = new DatagramBatch(options.batchCount ?? 64, options.slotBytes ?? 2048);
    this.outbox = new DatagramBatch(options.batchCount ?? 64, options.slotBytes ?? 2048);
    this.loop = new PollLoop(4);
    this.loop.add(listener.fd, EPOLLIN, 0);
    this.loop.start(() => this.onReadable());
  }

  private onReadable(): void {
    for (let round = 0; round < WAKE_BATCHES_MAX && !this.closed; round++) {
      const count = this.inbox.receive(this.listener.fd);
      if (count === 0) break;
      this.counts.received += count;
      for (let i = 0; i < count; i++) {
        const peer = this.inbox.peer(i);
        try {
          this.options.onMessage(this.inbox.payload(i), peer, (bytes) => this.queueReply(bytes, peer));
        } catch (error) {
          this.counts.handlerErrors++;
          console.error("reuseport: udp handler error:", error);
        }
      }
      this.flush();
    }
  }

  private queueReply(bytes: Uint8Array, peer: SocketAddress): void {
    if (this.closed) return;
    if (bytes.byteLength > this.outbox.slotBytes) {
      throw new ConfigError("reply", `is ${bytes.byteLength} bytes; slotBytes is ${this.outbox.slotBytes}`);
    }
    if (this.outboxCount === this.outbox.count) this.flush();
    this.outbox.set(this.outboxCount++, bytes, peer);
  }

  private flush(): void {
    if (this.outboxCount === 0) return;
    let sent = 0;
    try {
      sent = this.outbox.send(this.listener.fd, this.outboxCount);
    } catch {
      sent = 0; // e.g. ECONNREFUSED from an earlier ICMP: counted below as dropped replies
    }
    this.counts.sent += sent;
    this.counts.sendDrops += this.outboxCount - sent;
    this.outboxCount = 0;
  }

  stats(): UdpStats {
    return { ...this.counts, kernelDrops: kernelDrops(this.listener.fd) };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.loop.close();
    this.listener.close();
    this.inbox.close();
    this.outbox.close();
  }
}

/** The `drops` column of /proc/net/udp{,6} for the socket behind fd (0 when not found). */
export function kernelDrops(fd: number): number {
  let inode: string;
  try {
    inode = /socket:\[(\d+)\]/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1] ?? "";
  } catch {
    return 0;
  }
  for (const table of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const columns = line.trim().split(/\s+/);
      if (columns[9] === inode) return Number(columns[12] ?? 0);
    }
  }
  return 0;
}

/** Starts a UDP server in the port's reuseport group (start more, in workers, on the same port). */
export function serveUdp(options: UdpServeOptions): UdpServer {
  if (typeof options !== "object" || options === null) throw new ConfigError("options", "must be an object");
  for (const key of Object.keys(options)) if (!KNOWN.has(key)) throw new ConfigError(key, "is not a serveUdp() option");
  if (typeof options.onMessage !== "function") throw new ConfigError("onMessage", "must be a function");
  const listener = Listener.openSync({
    hostname: options.hostname ?? "0.0.0.0",
    port: options.port ?? 0,
    ipv6Only: options.ipv6Only,
    reusePort: options.reusePort ?? true,
    transport: "udp",
  });
  try {
    return new UdpServer(listener, options);
  } catch (error) {
    listener.close();
    throw error;
  }
}
