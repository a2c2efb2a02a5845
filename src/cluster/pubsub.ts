// WebSocket pub/sub between the workers of one cluster: each worker connects to the primary's relay socket
// (a unix socket beside the control socket, node:net on both runtimes) and sends each message it publishes
// once; the relay forwards it to every other worker, which delivers it to its own subscribers (ws/topics.ts).
// One stream per worker keeps each publisher's order. Frames: u32 length (of what follows), u8 flags (1:
// text), u16 topic length, topic (UTF-8), payload.
import { createServer, connect, type Server as NetServer, type Socket } from "node:net";
import { chmodSync } from "node:fs";
import { dirname, join } from "node:path";
import { Buffer } from "node:buffer";
import process from "node:process";
import { runtime } from "../ffi/index.ts";
import { peerUid } from "./control.ts";
import type { TopicBus } from "../ws/topics.ts";

/** Bytes a peer's socket may hold unsent before the relay (or a worker) drops messages to it, counted. */
const PEER_BACKLOG_BYTES_MAX = 64 * 1024 * 1024;
const FRAME_HEAD_BYTES = 7;
const FLAG_TEXT = 1;

/** The relay's socket for a cluster whose control socket is `controlPath`. */
export function relayPath(controlPath: string): string {
  return join(dirname(controlPath), "pubsub.sock");
}

/** One message as a relay frame. */
function encodeFrame(topic: string, data: string | Uint8Array): Buffer {
  const topicBytes = Buffer.from(topic);
  if (topicBytes.byteLength > 0xffff) throw new RangeError(`a topic is at most 65535 bytes of UTF-8, got ${topicBytes.byteLength}`);
  const payload = typeof data === "string" ? Buffer.from(data) : data;
  const frame = Buffer.allocUnsafe(FRAME_HEAD_BYTES + topicBytes.byteLength + payload.byteLength);
  frame.writeUInt32LE(frame.byteLength - 4, 0);
  frame[4] = typeof data === "string" ? FLAG_TEXT : 0;
  frame.writeUInt16LE(topicBytes.byteLength, 5);
  topicBytes.copy(frame, FRAME_HEAD_BYTES);
  frame.set(payload, FRAME_HEAD_BYTES + topicBytes.byteLength);
  return frame;
}

/** Splits a byte stream into whole frames (length-prefixed), each passed as one Buffer. */
function frameReader(socket: Socket, onFrame: (frame: Buffer) => void): void {
  let pending: Buffer | null = null;
  socket.on("data", (chunk: Buffer) => {
    let data = pending === null ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    while (data.byteLength - at >= 4) {
      const length = data.readUInt32LE(at);
      if (data.byteLength - at - 4 < length) break;
      onFrame(data.subarray(at, at + 4 + length));
      at += 4 + length;
    }
    pending = at === data.byteLength ? null : Buffer.from(data.subarray(at));
    data = Buffer.alloc(0);
  });
}

/** The primary's side: forwards every frame a worker sends to all the other workers. */
export class PubSubRelay {
  /** Messages not forwarded to a worker whose socket held PEER_BACKLOG_BYTES_MAX unsent. */
  dropped = 0;
  private readonly peers = new Set<Socket>();
  private constructor(private readonly server: NetServer) {}

  static listen(path: string): Promise<PubSubRelay> {
    return new Promise((resolve, reject) => {
      let relay: PubSubRelay;
      const server = createServer((socket) => relay.accept(socket));
      relay = new PubSubRelay(server);
      server.once("error", reject);
      server.listen(path, () => {
        chmodSync(path, 0o600);
        resolve(relay);
      });
      runtime.unrefServer(server);
    });
  }

  private accept(socket: Socket): void {
    socket.on("error", () => {});
    const uid = peerUid(socket);
    if (uid === null || (uid !== (process.getuid?.() ?? -1) && uid !== 0)) {
      socket.destroy();
      return;
    }
    this.peers.add(socket);
    socket.on("close", () => this.peers.delete(socket));
    frameReader(socket, (frame) => this.forward(frame, socket));
  }

  /** The primary's own publish (ClusterServer.publish): to every worker. */
  publish(topic: string, data: string | Uint8Array): void {
    this.forward(encodeFrame(topic, data), null);
  }

  private forward(frame: Buffer, from: Socket | null): void {
    for (const peer of this.peers) {
      if (peer === from) continue;
      if (peer.writableLength > PEER_BACKLOG_BYTES_MAX) this.dropped++;
      else peer.write(frame);
    }
  }

  close(): void {
    for (const peer of this.peers) peer.destroy();
    this.server.close();
  }
}

/** A worker's side: publishes to the other workers and delivers what they published. */
export class PubSubClient implements TopicBus {
  private socket: Socket | null = null;
  private readonly decoder = new TextDecoder();

  constructor(
    path: string,
    deliver: (topic: string, data: string | Uint8Array) => void,
    /** Counts a message that could not go to the other workers (relay unreachable or backed up). */
    private readonly onDropped: () => void,
  ) {
    const socket = connect(path);
    socket.on("error", () => {});
    socket.on("close", () => (this.socket = null));
    this.socket = socket;
    frameReader(socket, (frame) => {
      const flags = frame[4];
      const topicLength = frame.readUInt16LE(5);
      const topic = this.decoder.decode(frame.subarray(FRAME_HEAD_BYTES, FRAME_HEAD_BYTES + topicLength));
      const payload = frame.subarray(FRAME_HEAD_BYTES + topicLength);
      deliver(topic, flags & FLAG_TEXT ? this.decoder.decode(payload) : new Uint8Array(payload));
    });
  }

  publish(topic: string, data: string | Uint8Array): void {
    const socket = this.socket;
    if (socket === null || socket.destroyed || socket.writableLength > PEER_BACKLOG_BYTES_MAX) {
      this.onDropped();
      return;
    }
    socket.write(encodeFrame(topic, data));
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }
}
