// PROVISIONAL, so that the tree runs: the frames helper replaces this whole file with the real codec.
export const enum Opcode { Continuation = 0x0, Text = 0x1, Binary = 0x2, Close = 0x8, Ping = 0x9, Pong = 0xa }
export interface Inflater { inflate(data: Uint8Array, maxBytes: number): Uint8Array }
export class MessageTooLargeError extends Error {}
export interface FrameSink {
  onText(text: string): void; onBinary(bytes: Uint8Array): void; onPing(payload: Uint8Array): void; onPong(payload: Uint8Array): void;
  onClose(code: number, reason: string): void; onError(code: 1002 | 1007 | 1009, reason: string): void;
}
export interface FrameReaderOptions { maxPayloadBytes: number; inflater: Inflater | null }
export class FrameReader {
  private held: Uint8Array | null = null;
  private done = false;
  private fragments: Uint8Array[] | null = null;
  private fragOpcode = 0;
  private compressed = false;
  constructor(private readonly sink: FrameSink, private readonly options: FrameReaderOptions) {}
  get bufferedBytes(): number { return this.held?.byteLength ?? 0; }
  push(bytes: Uint8Array, start: number, end: number): void {
    if (this.done) return;
    let data = bytes.subarray(start, end);
    if (this.held) { const j = new Uint8Array(this.held.byteLength + data.byteLength); j.set(this.held); j.set(data, this.held.byteLength); data = j; this.held = null; }
    let at = 0;
    while (!this.done && data.byteLength - at >= 2) {
      const b0 = data[at], b1 = data[at + 1];
      let len = b1 & 0x7f; let p = at + 2;
      if (len === 126) { if (data.byteLength - at < 4) break; len = (data[at + 2] << 8) | data[at + 3]; p += 2; }
      else if (len === 127) { if (data.byteLength - at < 10) break; len = Number(new DataView(data.buffer, data.byteOffset + at + 2, 8).getBigUint64(0)); p += 8; }
      if (!(b1 & 0x80)) return this.fail(1002, "unmasked client frame");
      const op = b0 & 0x0f; const fin = (b0 & 0x80) !== 0;
      const rsv1 = (b0 & 0x40) !== 0;
      if (b0 & 0x30 || (rsv1 && (this.options.inflater === null || op === 0 || op >= 8))) return this.fail(1002, "reserved bits set");
      if (len > this.options.maxPayloadBytes) return this.fail(1009, "too large");
      if (data.byteLength - p < 4 + len) break;
      const key = data.subarray(p, p + 4); p += 4;
      const payload = data.slice(p, p + len);
      for (let i = 0; i < len; i++) payload[i] ^= key[i & 3];
      at = p + len;
      if (op === 1 || op === 2) this.compressed = rsv1;
      this.frame(op, fin, payload);
    }
    if (!this.done && at < data.byteLength) this.held = data.slice(at);
  }
  private frame(op: number, fin: boolean, payload: Uint8Array): void {
    if (op >= 8) {
      if (op > 10 || !fin || payload.byteLength > 125) return this.fail(1002, "bad control frame");
      if (op === 9) return this.sink.onPing(payload);
      if (op === 10) return this.sink.onPong(payload);
      if (payload.byteLength === 1) return this.fail(1002, "close of 1 byte");
      const code = payload.byteLength >= 2 ? (payload[0] << 8) | payload[1] : 1005;
      if (payload.byteLength >= 2 && !isValidCloseCode(code)) return this.fail(1002, "bad close code");
      let reason = "";
      try { reason = new TextDecoder("utf-8", { fatal: true }).decode(payload.subarray(2)); } catch { return this.fail(1007, "bad reason"); }
      this.done = true;
      return this.sink.onClose(code, reason);
    }
    if (op === 0) { if (!this.fragments) return this.fail(1002, "continuation without start"); this.fragments.push(payload); }
    else if (op === 1 || op === 2) { if (this.fragments) return this.fail(1002, "new message inside fragmented"); this.fragments = [payload]; this.fragOpcode = op; }
    else return this.fail(1002, "reserved opcode");
    if (!fin) return;
    const parts = this.fragments!; this.fragments = null;
    let total = 0; for (const p of parts) total += p.byteLength;
    let whole = parts.length === 1 ? parts[0] : new Uint8Array(total);
    if (parts.length > 1) { let o = 0; for (const p of parts) { whole.set(p, o); o += p.byteLength; } }
    if (this.compressed) {
      try { whole = this.options.inflater!.inflate(whole, this.options.maxPayloadBytes); } catch (e) {
        return this.fail(e instanceof MessageTooLargeError || (e as Error)?.name === "MessageTooLargeError" ? 1009 : 1007, "inflate failed");
      }
    }
    if (this.fragOpcode === 1) {
      let text: string;
      try { text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(whole); } catch { return this.fail(1007, "bad utf-8"); }
      this.sink.onText(text);
    } else this.sink.onBinary(whole);
  }
  private fail(code: 1002 | 1007 | 1009, reason: string): void { this.done = true; this.sink.onError(code, reason); }
}
export function frameHeaderBytes(length: number): number { return length < 126 ? 2 : length < 65536 ? 4 : 10; }
export function writeFrameHeader(target: Uint8Array, at: number, opcode: Opcode, length: number, fin = true, rsv1 = false): number {
  target[at] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  if (length < 126) { target[at + 1] = length; return 2; }
  if (length < 65536) { target[at + 1] = 126; target[at + 2] = length >> 8; target[at + 3] = length & 0xff; return 4; }
  target[at + 1] = 127; new DataView(target.buffer, target.byteOffset + at + 2, 8).setBigUint64(0, BigInt(length)); return 10;
}
export function encodeFrame(opcode: Opcode, payload: Uint8Array, rsv1 = false): Uint8Array {
  const h = new Uint8Array(10); const n = writeFrameHeader(h, 0, opcode, payload.byteLength, true, rsv1);
  const out = new Uint8Array(n + payload.byteLength); out.set(h.subarray(0, n)); out.set(payload, n); return out;
}
export function closePayload(code: number, reason = ""): Uint8Array {
  const r = new TextEncoder().encode(reason).subarray(0, 123); const out = new Uint8Array(2 + r.byteLength);
  out[0] = code >> 8; out[1] = code & 0xff; out.set(r, 2); return out;
}
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}
