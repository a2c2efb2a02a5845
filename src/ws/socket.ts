// One WebSocket connection after the handshake, as Bun's ServerWebSocket: frames in (frames.ts), messages
// out with Bun's send codes (bytes sent, -1 backpressure, 0 dropped), the close handshake, topics. Deno's
// WebSocket (deno-socket.ts) is events over the same object.
import { Buffer } from "node:buffer";
import type { Upgraded, UpgradedConnection } from "../http/upgrade.ts";
import { closePayload, FrameReader, type FrameSink, frameHeaderBytes, isValidCloseCode, Opcode, writeFrameHeader } from "./frames.ts";
import type { MessageDeflater, MessageInflater } from "./deflate.ts";
import type { WsStats } from "./stats.ts";

/** What a socket calls on its events: Bun's handler object, or Deno's WebSocket (deno-socket.ts). */
export interface SocketEvents<T = unknown> {
  message(ws: ServerWebSocket<T>, message: string | Uint8Array): unknown;
  open?(ws: ServerWebSocket<T>): unknown;
  close?(ws: ServerWebSocket<T>, code: number, reason: string): unknown;
  drain?(ws: ServerWebSocket<T>): unknown;
  ping?(ws: ServerWebSocket<T>, data: Uint8Array): unknown;
  pong?(ws: ServerWebSocket<T>, data: Uint8Array): unknown;
}

/** The limits a socket keeps (options.ts checks them). */
export interface SocketSettings {
  readonly maxPayloadBytes: number;
  readonly backpressureBytes: number;
  readonly closeOnBackpressureLimit: boolean;
  readonly sendPings: boolean;
  readonly publishToSelf: boolean;
}

/** The worker's topics as a socket uses them (topics.ts). */
export interface SocketTopics {
  subscribe(ws: ServerWebSocket<unknown>, topic: string): void;
  unsubscribe(ws: ServerWebSocket<unknown>, topic: string): void;
  publish(topic: string, data: string | Uint8Array, compress: boolean, except: ServerWebSocket<unknown> | null): number;
}

/** What a socket needs of its server (websockets.ts). */
export interface SocketHost {
  readonly settings: SocketSettings;
  readonly stats: WsStats;
  readonly topics: SocketTopics;
  /** Runs fn with sends gathered into one batch (Bun's cork; the engine's send batch). */
  cork<R>(fn: () => R): R;
  reportError(error: unknown, what: string): void;
  opened(ws: ServerWebSocket<unknown>): void;
  closed(ws: ServerWebSocket<unknown>): void;
}

export const enum ReadyState { Connecting = 0, Open = 1, Closing = 2, Closed = 3 }

/** How long a close we sent waits for the peer's before the socket just goes. */
const CLOSE_WAIT_MS = 5000;
/** Strings up to this many UTF-16 units are encoded into a scratch array, not a new one. */
const SCRATCH_TEXT_UNITS_MAX = 16 * 1024;
const scratch = new Uint8Array(3 * SCRATCH_TEXT_UNITS_MAX);
const header = new Uint8Array(14);
const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

export class ServerWebSocket<T = undefined> implements Upgraded, FrameSink {
  /** Bun: what server.upgrade(request, { data }) attached. */
  data: T;
  readyState: ReadyState = ReadyState.Open;
  /** How binary messages reach `message`: Buffer (Bun's default), ArrayBuffer or Uint8Array. */
  binaryType: "nodebuffer" | "arraybuffer" | "uint8array" = "nodebuffer";
  /** The chosen subprotocol ("" when none). */
  readonly protocol: string;
  /** The negotiated extensions header ("" when none). */
  readonly extensions: string;
  /** Bytes came since the last idle check (websockets.ts sweeps). */
  active = true;
  /** The idle sweep pinged it once already. */
  pinged = false;
  private readonly reader: FrameReader;
  private subscribed: Set<string> | null = null;
  private closeSent = false;
  private closeReceived = false;
  /** The code the connection ends with: the peer's close, or the one we failed it with. */
  private closeCode = 1006;
  private closeReason = "";
  private wantsDrain = false;
  private closeTimer: ReturnType<typeof setTimeout> | null = null;
  private ended = false;

  constructor(
    private readonly conn: UpgradedConnection,
    private readonly host: SocketHost,
    private readonly events: SocketEvents<T>,
    data: T,
    options: {
      protocol: string; extensions: string; inflater: MessageInflater | null; deflater: MessageDeflater | null;
      deflateThresholdBytes: number; idleTimeoutMs: number;
    },
  ) {
    this.data = data;
    this.protocol = options.protocol;
    this.extensions = options.extensions;
    this.deflater = options.deflater;
    this.inflater = options.inflater;
    this.deflateThresholdBytes = options.deflateThresholdBytes;
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.reader = new FrameReader(this, { maxPayloadBytes: host.settings.maxPayloadBytes, inflater: options.inflater });
  }

  private readonly deflater: MessageDeflater | null;
  private readonly inflater: MessageInflater | null;
  /** Messages shorter than this go uncompressed even when compression is asked for. */
  private readonly deflateThresholdBytes: number;
  /** Received nothing this long: pinged (sendPings), then closed; 0: never (websockets.ts sweeps). */
  readonly idleTimeoutMs: number;

  /** The handover is done: the open event. */
  start(): void {
    this.host.opened(this as ServerWebSocket<unknown>);
    if (this.events.open) this.call("open", () => this.events.open!(this));
  }

  /** Both close frames went (the close handshake completed). */
  get closedCleanly(): boolean {
    return this.closeSent && this.closeReceived;
  }

  get remoteAddress(): string {
    return this.conn.peer.address;
  }

  /** Bun: unsent bytes. */
  getBufferedAmount(): number {
    return this.conn.unsentBytes;
  }

  // ---- sending -------------------------------------------------------------------------------------------

  /** Bun: a string as text, anything else as binary; bytes sent, -1 (sent, under backpressure) or 0 (dropped). */
  send(data: string | ArrayBufferView | ArrayBuffer, compress = false): number {
    return typeof data === "string" ? this.sendText(data, compress) : this.sendBinary(data, compress);
  }

  sendText(text: string, compress = false): number {
    return this.sendFrame(Opcode.Text, textBytes(text), compress);
  }

  sendBinary(data: ArrayBufferView | ArrayBuffer, compress = false): number {
    return this.sendFrame(Opcode.Binary, bytesOf(data), compress);
  }

  /** A whole message; what publish fans out (topics.ts) comes here too. */
  sendFrame(opcode: Opcode, payload: Uint8Array, compress: boolean): number {
    const stats = this.host.stats;
    if (this.readyState !== ReadyState.Open || this.conn.closed) {
      stats.dropped++;
      return 0;
    }
    const settings = this.host.settings;
    if (this.conn.unsentBytes > settings.backpressureBytes) {
      stats.dropped++;
      if (settings.closeOnBackpressureLimit) this.fail(1008, "backpressure limit");
      return 0;
    }
    let rsv1 = false;
    if (compress && this.deflater !== null && payload.byteLength >= this.deflateThresholdBytes) {
      payload = this.deflater.deflate(payload);
      rsv1 = true;
    }
    this.writeFrame(opcode, payload, rsv1);
    stats.messagesOut++;
    stats.bytesOut += payload.byteLength;
    if (this.conn.unsentBytes > 0) {
      this.wantsDrain = true;
      return -1;
    }
    return payload.byteLength;
  }

  private writeFrame(opcode: Opcode, payload: Uint8Array, rsv1 = false): void {
    const length = writeFrameHeader(header, 0, opcode, payload.byteLength, true, rsv1);
    this.conn.write(header, length, payload);
  }

  ping(data: string | ArrayBufferView | ArrayBuffer = EMPTY): number {
    return this.control(Opcode.Ping, data);
  }

  pong(data: string | ArrayBufferView | ArrayBuffer = EMPTY): number {
    return this.control(Opcode.Pong, data);
  }

  private control(opcode: Opcode, data: string | ArrayBufferView | ArrayBuffer): number {
    if (this.readyState !== ReadyState.Open || this.conn.closed) return 0;
    const payload = typeof data === "string" ? encoder.encode(data) : bytesOf(data);
    if (payload.byteLength > 125) throw new RangeError(`a ${opcode === Opcode.Ping ? "ping" : "pong"} carries at most 125 bytes, got ${payload.byteLength}`);
    this.writeFrame(opcode, payload);
    return payload.byteLength + frameHeaderBytes(payload.byteLength);
  }

  /** Bun: sends inside `callback` leave together. */
  cork<R>(callback: (ws: this) => R): R {
    return this.host.cork(() => callback(this));
  }

  /** Starts the close handshake (default 1000); the close event comes when the peer answered or left. */
  close(code = 1000, reason = ""): void {
    if (code !== 1000 && !(code >= 3000 && code <= 4999) && !isValidCloseCode(code)) {
      throw new RangeError(`close code ${code} may not be sent (1000, 1001-1003, 1007-1014 or 3000-4999)`);
    }
    if (this.readyState >= ReadyState.Closing) return;
    this.sendClose(code, reason);
    if (this.closeReceived) this.conn.closeWhenFlushed();
    else this.closeTimer = setTimeout(() => this.conn.destroy(), CLOSE_WAIT_MS);
  }

  /** Closes the TCP connection now, without a close frame. */
  terminate(): void {
    this.conn.destroy();
  }

  private sendClose(code: number, reason: string): void {
    this.readyState = ReadyState.Closing;
    this.closeSent = true;
    const payload = code === 1005 ? EMPTY : closePayload(code, reason);
    this.writeFrame(Opcode.Close, payload);
  }

  /** Fails the connection (RFC 6455 §7.1.7): a close frame with `code`, then the TCP close, not waiting. */
  private fail(code: number, reason: string): void {
    if (this.ended) return;
    this.closeCode = code;
    this.closeReason = reason;
    if (!this.closeSent && !this.conn.closed) this.sendClose(code, reason);
    this.readyState = ReadyState.Closing;
    this.conn.closeWhenFlushed();
  }

  // ---- topics --------------------------------------------------------------------------------------------

  subscribe(topic: string): void {
    checkTopic(topic);
    if (this.readyState >= ReadyState.Closing) return;
    (this.subscribed ??= new Set()).add(topic);
    this.host.topics.subscribe(this as ServerWebSocket<unknown>, topic);
  }

  unsubscribe(topic: string): void {
    checkTopic(topic);
    if (this.subscribed?.delete(topic)) this.host.topics.unsubscribe(this as ServerWebSocket<unknown>, topic);
  }

  isSubscribed(topic: string): boolean {
    return this.subscribed?.has(topic) ?? false;
  }

  get subscriptions(): string[] {
    return this.subscribed === null ? [] : [...this.subscribed];
  }

  /** To every subscriber of topic in the cluster (this socket too with publishToSelf); bytes sent locally. */
  publish(topic: string, data: string | ArrayBufferView | ArrayBuffer, compress = false): number {
    checkTopic(topic);
    const except = this.host.settings.publishToSelf ? null : (this as ServerWebSocket<unknown>);
    return this.host.topics.publish(topic, typeof data === "string" ? data : bytesOf(data), compress, except);
  }

  publishText(topic: string, text: string, compress = false): number {
    return this.publish(topic, text, compress);
  }

  publishBinary(topic: string, data: ArrayBufferView | ArrayBuffer, compress = false): number {
    return this.publish(topic, data, compress);
  }

  // ---- the connection (Upgraded) -------------------------------------------------------------------------

  onBytes(bytes: Uint8Array, start: number, end: number): void {
    this.active = true;
    this.reader.push(bytes, start, end);
  }

  onPeerClosed(): void {
    this.conn.destroy(); // a FIN without a close frame ends the connection (1006 unless a close came)
  }

  onDrained(): void {
    if (!this.wantsDrain || this.conn.unsentBytes > 0) return;
    this.wantsDrain = false;
    if (this.events.drain && this.readyState === ReadyState.Open) this.call("drain", () => this.events.drain!(this));
  }

  onStop(graceful: boolean): void {
    if (!graceful) this.conn.destroy();
    else if (this.readyState === ReadyState.Open) this.close(1001, "server shutting down");
  }

  onClosed(): void {
    if (this.ended) return;
    this.ended = true;
    this.readyState = ReadyState.Closed;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    if (this.subscribed !== null) for (const topic of this.subscribed) this.host.topics.unsubscribe(this as ServerWebSocket<unknown>, topic);
    this.subscribed = null;
    this.inflater?.close();
    this.deflater?.close();
    this.host.closed(this as ServerWebSocket<unknown>);
    this.host.stats.countClose(this.closeCode);
    if (this.events.close) this.call("close", () => this.events.close!(this, this.closeCode, this.closeReason));
  }

  // ---- frames (FrameSink) --------------------------------------------------------------------------------

  onText(text: string): void {
    this.received(text.length);
    if (this.readyState === ReadyState.Open) this.deliver(text);
  }

  onBinary(bytes: Uint8Array): void {
    this.received(bytes.byteLength);
    if (this.readyState !== ReadyState.Open) return;
    const message = this.binaryType === "nodebuffer" ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      : this.binaryType === "arraybuffer" ? arrayBufferOf(bytes) : bytes;
    this.deliver(message as Uint8Array);
  }

  /** The message event, without a closure per message (the hot path of call()). */
  private deliver(message: string | Uint8Array): void {
    try {
      const result = this.events.message(this, message);
      if (result instanceof Promise) result.catch((error) => this.rejected(error, "message"));
    } catch (error) {
      this.host.stats.handlerErrors++;
      this.host.reportError(error, "websocket message handler threw:");
    }
  }

  private received(bytes: number): void {
    const stats = this.host.stats;
    stats.messagesIn++;
    stats.bytesIn += bytes;
  }

  onPing(payload: Uint8Array): void {
    if (this.readyState === ReadyState.Open) this.writeFrame(Opcode.Pong, payload);
    if (this.events.ping) this.call("ping", () => this.events.ping!(this, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)));
  }

  onPong(payload: Uint8Array): void {
    this.pinged = false;
    if (this.events.pong) this.call("pong", () => this.events.pong!(this, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)));
  }

  onClose(code: number, reason: string): void {
    this.closeReceived = true;
    this.closeCode = code;
    this.closeReason = reason;
    if (!this.closeSent) this.sendClose(code === 1005 ? 1005 : code, "");
    this.conn.closeWhenFlushed(); // the server closes the TCP connection first (RFC 6455 §7.1.1)
  }

  onError(code: 1002 | 1007 | 1009, reason: string): void {
    this.host.stats.protocolErrors++;
    this.fail(code, reason);
  }

  /** The idle sweep found no byte for a whole period (websockets.ts): ping once, then close. */
  onIdle(): void {
    if (this.readyState !== ReadyState.Open) return;
    if (this.host.settings.sendPings && !this.pinged) {
      this.pinged = true;
      this.writeFrame(Opcode.Ping, EMPTY);
      return;
    }
    this.host.stats.timeouts++;
    this.fail(1001, "idle timeout");
  }

  private rejected(error: unknown, what: string): void {
    this.host.stats.handlerErrors++;
    this.host.reportError(error, `websocket ${what} handler rejected:`);
  }

  /** A callback of the user's: a throw or a rejection is reported and counted, never let into the poll round. */
  private call(what: string, run: () => unknown): void {
    try {
      const result = run();
      if (result instanceof Promise) result.catch((error) => this.rejected(error, what));
    } catch (error) {
      this.host.stats.handlerErrors++;
      this.host.reportError(error, `websocket ${what} handler threw:`);
    }
  }
}

function checkTopic(topic: unknown): void {
  if (typeof topic !== "string" || topic.length === 0) throw new TypeError(`a topic must be a non-empty string, got ${JSON.stringify(topic)}`);
}

/** A string's UTF-8 bytes: in the shared scratch when short (the write copies or sends them at once). */
export function textBytes(text: string): Uint8Array {
  if (text.length <= SCRATCH_TEXT_UNITS_MAX) return scratch.subarray(0, encoder.encodeInto(text, scratch).written);
  return encoder.encode(text);
}

export function bytesOf(data: ArrayBufferView | ArrayBuffer): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && (data as unknown) instanceof SharedArrayBuffer)) return new Uint8Array(data);
  throw new TypeError(`a WebSocket message must be a string, an ArrayBuffer or a view of one, got ${typeof data}`);
}

function arrayBufferOf(bytes: Uint8Array): ArrayBuffer {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer as ArrayBuffer : bytes.slice().buffer;
}
