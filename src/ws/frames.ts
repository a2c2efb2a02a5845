// RFC 6455 frames, server side: a reader of the client's masked frames that hands whole messages and control
// frames to a sink, checking every rule a server must (each fault names its close code), and the writer of
// the server's unmasked frame headers. A frame whole in the read buffer is unmasked where it lies; one split
// across reads is gathered into an array of its exact size, so a large frame costs one copy.
import { lib } from "../ffi/index.ts";

export const enum Opcode { Continuation = 0x0, Text = 0x1, Binary = 0x2, Close = 0x8, Ping = 0x9, Pong = 0xa }

/** Inflates one whole compressed message (permessage-deflate, deflate.ts implements it). */
export interface Inflater {
  /** data: the message's joined payload, without the 00 00 ff ff tail. Throws MessageTooLargeError past maxBytes. */
  inflate(data: Uint8Array, maxBytes: number): Uint8Array;
}

export class MessageTooLargeError extends Error {
  override name = "MessageTooLargeError";
}

export interface FrameSink {
  onText(text: string): void;
  /** bytes: a copy the sink may keep. */
  onBinary(bytes: Uint8Array): void;
  onPing(payload: Uint8Array): void;
  onPong(payload: Uint8Array): void;
  /** A close frame; code 1005 when it had no body. */
  onClose(code: number, reason: string): void;
  /** The peer broke the protocol: the socket closes with `code`. The reader ignores every later byte. */
  onError(code: 1002 | 1007 | 1009, reason: string): void;
}

export interface FrameReaderOptions {
  /** Largest message (after joining fragments, and after inflating) in bytes; more is 1009. */
  maxPayloadBytes: number;
  /** permessage-deflate was negotiated: RSV1 on a message's first frame means compressed; otherwise RSV1 is 1002. */
  inflater: Inflater | null;
}

/** Control frames carry at most this many payload bytes (RFC 6455 §5.5). */
const CONTROL_PAYLOAD_BYTES_MAX = 125;
/** Payloads shorter than this are unmasked in JS; from here on one rp_ws_unmask call costs less. */
const NATIVE_UNMASK_BYTES_MIN = 16;
/** Frame header bytes at most: 2, 8 of extended length, 4 of mask. */
const HEADER_BYTES_MAX = 14;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export class FrameReader {
  /** A frame split across reads, gathered here (its exact size once the header is known); null when none. */
  private partial: Uint8Array | null = null;
  private partialFilled = 0;
  private done = false;
  /** The message being received in fragments: its opcode (0: none), whether it is compressed, its size so far. */
  private messageOpcode = 0;
  private messageCompressed = false;
  private messageBytes = 0;
  /** Fragments kept: a binary or compressed message's payloads; a text message's decoded parts. */
  private fragments: Uint8Array[] = [];
  private textParts: string[] = [];
  /** A fragmented text message is decoded as it comes (so a bad byte closes at once): its own decoder. */
  private streamDecoder: TextDecoder | null = null;

  constructor(private readonly sink: FrameSink, private readonly options: FrameReaderOptions) {}

  /** Bytes of an unfinished frame or message held now. */
  get bufferedBytes(): number {
    let held = this.partialFilled;
    for (const fragment of this.fragments) held += fragment.byteLength;
    return held;
  }

  /** Consumes all of bytes[start, end): may unmask them in place, keeps none of them. */
  push(bytes: Uint8Array, start: number, end: number): void {
    if (this.done) return;
    if (this.partial !== null) start = this.fillPartial(bytes, start, end);
    while (!this.done && start < end) {
      const size = this.frameSize(bytes, start, end);
      if (size < 0) return; // a fault, already told
      if (size === 0 || start + size > end) {
        this.keepPartial(bytes, start, end, size);
        return;
      }
      this.frame(bytes, start, start + size);
      start += size;
    }
  }

  /** Adds bytes to the split frame; once it is whole, reads it. Returns where the unused bytes begin. */
  private fillPartial(bytes: Uint8Array, start: number, end: number): number {
    let partial = this.partial!;
    if (this.partialFilled < HEADER_BYTES_MAX && partial.byteLength === HEADER_BYTES_MAX) {
      // Only part of the header came before: complete it, and learn the frame's size.
      const take = Math.min(end - start, HEADER_BYTES_MAX - this.partialFilled);
      partial.set(bytes.subarray(start, start + take), this.partialFilled);
      const size = this.frameSize(partial, 0, this.partialFilled + take);
      if (size < 0) return end;
      if (size === 0) {
        this.partialFilled += take;
        return start + take;
      }
      const whole = new Uint8Array(size);
      whole.set(partial.subarray(0, this.partialFilled));
      this.partial = partial = whole;
    }
    const take = Math.min(end - start, partial.byteLength - this.partialFilled);
    partial.set(bytes.subarray(start, start + take), this.partialFilled);
    this.partialFilled += take;
    if (this.partialFilled < partial.byteLength) return end;
    this.partial = null;
    this.partialFilled = 0;
    this.frame(partial, 0, partial.byteLength);
    return start + take;
  }

  /** Keeps an incomplete frame: into an array of its size when its header is whole (size > 0), else a header's worth. */
  private keepPartial(bytes: Uint8Array, start: number, end: number, size: number): void {
    const partial = new Uint8Array(size > 0 ? size : HEADER_BYTES_MAX);
    partial.set(bytes.subarray(start, end));
    this.partial = partial;
    this.partialFilled = end - start;
  }

  /**
   * The whole frame's size from its header at bytes[start, end): 0 when the header is not all there yet, -1 when
   * it breaks a rule (told to the sink). Checked here, before any payload is held, so a frame that may not be
   * is never buffered.
   */
  private frameSize(bytes: Uint8Array, start: number, end: number): number {
    if (end - start < 2) return 0;
    const b0 = bytes[start];
    const b1 = bytes[start + 1];
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    let length = b1 & 0x7f;
    let header = 6;
    if (length === 126) {
      if (end - start < 4) return 0;
      length = (bytes[start + 2] << 8) | bytes[start + 3];
      header = 8;
    } else if (length === 127) {
      if (end - start < 10) return 0;
      const high = ((bytes[start + 2] << 24) | (bytes[start + 3] << 16) | (bytes[start + 4] << 8) | bytes[start + 5]) >>> 0;
      if (high >= 0x80000000) return this.fail(1002, "a 64-bit frame length with its top bit set");
      const low = ((bytes[start + 6] << 24) | (bytes[start + 7] << 16) | (bytes[start + 8] << 8) | bytes[start + 9]) >>> 0;
      length = high * 0x100000000 + low;
      header = 14;
    }
    if ((b1 & 0x80) === 0) return this.fail(1002, "a client frame is not masked");
    if (b0 & 0x30) return this.fail(1002, "RSV2 or RSV3 set without an extension that defines them");
    const rsv1 = (b0 & 0x40) !== 0;
    if (opcode >= 8) {
      if (opcode > Opcode.Pong) return this.fail(1002, `reserved control opcode ${opcode}`);
      if (!fin) return this.fail(1002, "a fragmented control frame");
      if (length > CONTROL_PAYLOAD_BYTES_MAX) return this.fail(1002, `a control frame of ${length} bytes (at most 125)`);
      if (rsv1) return this.fail(1002, "RSV1 on a control frame");
    } else if (opcode === Opcode.Continuation) {
      if (this.messageOpcode === 0) return this.fail(1002, "a continuation frame with no message started");
      if (rsv1) return this.fail(1002, "RSV1 on a continuation frame");
    } else if (opcode === Opcode.Text || opcode === Opcode.Binary) {
      if (this.messageOpcode !== 0) return this.fail(1002, "a new message inside a fragmented one");
      if (rsv1 && this.options.inflater === null) return this.fail(1002, "RSV1 set without permessage-deflate");
    } else return this.fail(1002, `reserved data opcode ${opcode}`);
    if (opcode < 8 && (opcode === Opcode.Continuation ? this.messageBytes : 0) + length > this.options.maxPayloadBytes) {
      return this.fail(1009, `a message over maxPayloadLength (${this.options.maxPayloadBytes} bytes)`);
    }
    return header + length;
  }

  /** One whole frame at bytes[start, end), its header already checked by frameSize. */
  private frame(bytes: Uint8Array, start: number, end: number): void {
    const b0 = bytes[start];
    const length7 = bytes[start + 1] & 0x7f;
    const maskAt = start + (length7 === 126 ? 4 : length7 === 127 ? 10 : 2);
    const payload = bytes.subarray(maskAt + 4, end);
    unmask(payload, bytes, maskAt);
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    if (opcode >= 8) this.control(opcode, payload);
    else this.data(opcode, fin, (b0 & 0x40) !== 0, payload);
  }

  private control(opcode: number, payload: Uint8Array): void {
    if (opcode === Opcode.Ping) return this.sink.onPing(payload.slice());
    if (opcode === Opcode.Pong) return this.sink.onPong(payload.slice());
    if (payload.byteLength === 1) return void this.fail(1002, "a close frame with a 1-byte body");
    const code = payload.byteLength >= 2 ? (payload[0] << 8) | payload[1] : 1005;
    if (payload.byteLength >= 2 && !isValidCloseCode(code)) return void this.fail(1002, `close code ${code} may not be sent`);
    let reason: string;
    try {
      reason = payload.byteLength > 2 ? utf8.decode(payload.subarray(2)) : "";
    } catch {
      return void this.fail(1007, "a close reason that is not UTF-8");
    }
    this.done = true;
    this.sink.onClose(code, reason);
  }

  private data(opcode: number, fin: boolean, rsv1: boolean, payload: Uint8Array): void {
    if (opcode !== Opcode.Continuation) {
      if (fin && !rsv1) return this.whole(opcode, payload); // the common case: one frame, one message
      this.messageOpcode = opcode;
      this.messageCompressed = rsv1;
      this.messageBytes = 0;
    }
    this.messageBytes += payload.byteLength;
    if (this.messageOpcode === Opcode.Text && !this.messageCompressed) {
      // Decoded as it comes: an invalid byte in an early fragment closes before the rest arrive.
      const decoder = this.streamDecoder ??= new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
      try {
        this.textParts.push(decoder.decode(payload, { stream: !fin }));
      } catch {
        this.streamDecoder = null; // a fatal decoder is left mid-sequence: the next message gets a fresh one
        return void this.fail(1007, "text that is not UTF-8");
      }
    } else this.fragments.push(payload.slice());
    if (!fin) return;
    const opcodeDone = this.messageOpcode;
    this.messageOpcode = 0;
    if (opcodeDone === Opcode.Text && !this.messageCompressed) {
      const text = this.textParts.length === 1 ? this.textParts[0] : this.textParts.join("");
      this.textParts = [];
      return this.sink.onText(text);
    }
    const joined = join(this.fragments, this.messageBytes);
    this.fragments = [];
    if (this.messageCompressed) this.inflated(opcodeDone, joined);
    else this.sink.onBinary(joined);
  }

  /** A message in one uncompressed frame: text decoded where it lies, binary copied once. */
  private whole(opcode: number, payload: Uint8Array): void {
    if (opcode === Opcode.Binary) return this.sink.onBinary(payload.slice());
    let text: string;
    try {
      text = utf8.decode(payload);
    } catch {
      return void this.fail(1007, "text that is not UTF-8");
    }
    this.sink.onText(text);
  }

  private inflated(opcode: number, data: Uint8Array): void {
    let message: Uint8Array;
    try {
      message = this.options.inflater!.inflate(data, this.options.maxPayloadBytes);
    } catch (error) {
      if (error instanceof MessageTooLargeError) return void this.fail(1009, `an inflated message over maxPayloadLength (${this.options.maxPayloadBytes} bytes)`);
      return void this.fail(1007, `a compressed message that does not inflate: ${(error as Error).message}`);
    }
    if (opcode === Opcode.Binary) return this.sink.onBinary(message);
    let text: string;
    try {
      text = utf8.decode(message);
    } catch {
      return void this.fail(1007, "text that is not UTF-8");
    }
    this.sink.onText(text);
  }

  private fail(code: 1002 | 1007 | 1009, reason: string): -1 {
    this.done = true;
    this.partial = null;
    this.fragments = [];
    this.textParts = [];
    this.sink.onError(code, reason);
    return -1;
  }
}

/** XORs payload with the 4 mask bytes at bytes[maskAt]. */
function unmask(payload: Uint8Array, bytes: Uint8Array, maskAt: number): void {
  const m0 = bytes[maskAt];
  const m1 = bytes[maskAt + 1];
  const m2 = bytes[maskAt + 2];
  const m3 = bytes[maskAt + 3];
  const length = payload.byteLength;
  if (length >= NATIVE_UNMASK_BYTES_MIN) {
    lib.rp_ws_unmask(payload, length, (m0 | (m1 << 8) | (m2 << 16) | (m3 << 24)) >>> 0, 0);
    return;
  }
  for (let i = 0; i < length; i++) payload[i] ^= (i & 3) === 0 ? m0 : (i & 3) === 1 ? m1 : (i & 3) === 2 ? m2 : m3;
}

function join(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const joined = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.byteLength;
  }
  return joined;
}

/** Header bytes a server (unmasked) frame of `length` payload bytes needs: 2, 4 or 10. */
export function frameHeaderBytes(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

/** Writes a server frame header at target[at] (FIN unless fin is false; RSV1 for a compressed message); returns its length. */
export function writeFrameHeader(target: Uint8Array, at: number, opcode: Opcode, length: number, fin = true, rsv1 = false): number {
  target[at] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  if (length < 126) {
    target[at + 1] = length;
    return 2;
  }
  if (length < 65536) {
    target[at + 1] = 126;
    target[at + 2] = length >>> 8;
    target[at + 3] = length & 0xff;
    return 4;
  }
  target[at + 1] = 127;
  const high = Math.floor(length / 0x100000000);
  const low = length >>> 0;
  for (let i = 0; i < 4; i++) {
    target[at + 2 + i] = (high >>> (24 - 8 * i)) & 0xff;
    target[at + 6 + i] = (low >>> (24 - 8 * i)) & 0xff;
  }
  return 10;
}

/** A whole unmasked frame (header and payload) as one new array. */
export function encodeFrame(opcode: Opcode, payload: Uint8Array, rsv1 = false): Uint8Array {
  const frame = new Uint8Array(frameHeaderBytes(payload.byteLength) + payload.byteLength);
  frame.set(payload, writeFrameHeader(frame, 0, opcode, payload.byteLength, true, rsv1));
  return frame;
}

/** A close frame's payload: the code, then the reason as UTF-8, cut to 123 bytes on a code point boundary. */
export function closePayload(code: number, reason = ""): Uint8Array {
  const encoded = new TextEncoder().encode(reason);
  let length = Math.min(encoded.byteLength, CONTROL_PAYLOAD_BYTES_MAX - 2);
  while (length > 0 && length < encoded.byteLength && (encoded[length] & 0xc0) === 0x80) length--; // not inside a code point
  const payload = new Uint8Array(2 + length);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(encoded.subarray(0, length), 2);
  return payload;
}

/** Whether a peer may send this close code (RFC 6455 §7.4: 1000-1003, 1007-1014, 3000-4999). */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}
