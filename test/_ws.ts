// WebSocket test helpers: the runtime's own client (the global WebSocket) with promises for its events, and
// masked client frames for a raw TCP client (bad frames a conforming client would never send).
import { RawClient } from "./_http.ts";

/** A client WebSocket whose messages and close are awaited in order. */
export class Client {
  readonly messages: (string | ArrayBuffer)[] = [];
  private waiters: (() => void)[] = [];
  closeEvent: CloseEvent | null = null;
  private constructor(readonly socket: WebSocket) {
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      this.messages.push(event.data);
      this.wake();
    };
    socket.onclose = (event) => {
      this.closeEvent = event;
      this.wake();
    };
  }

  static open(url: string, protocols?: string[]): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, protocols);
      const client = new Client(socket);
      socket.onopen = () => resolve(client);
      socket.onerror = () => reject(new Error(`WebSocket ${url} failed to open`));
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private async until(done: () => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next `count` messages (bounded wait), removed from the queue. */
  async take(count = 1, timeoutMs = 5000): Promise<(string | ArrayBuffer)[]> {
    await this.until(() => this.messages.length >= count || this.closeEvent !== null, `${count} message(s)`, timeoutMs);
    if (this.messages.length < count) throw new Error(`closed (${this.closeEvent?.code}) after ${this.messages.length} of ${count} messages`);
    return this.messages.splice(0, count);
  }

  async closed(timeoutMs = 5000): Promise<CloseEvent> {
    await this.until(() => this.closeEvent !== null, "the close", timeoutMs);
    return this.closeEvent!;
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }
}

/** A masked client frame (fin, opcode, payload; masked unless told not to). */
export function clientFrame(opcode: number, payload: Uint8Array, options: { fin?: boolean; mask?: boolean; rsv?: number } = {}): Uint8Array {
  const { fin = true, mask = true, rsv = 0 } = options;
  const length = payload.byteLength;
  const extra = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const frame = new Uint8Array(2 + extra + (mask ? 4 : 0) + length);
  frame[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  frame[1] = (mask ? 0x80 : 0) | (length < 126 ? length : length < 65536 ? 126 : 127);
  const view = new DataView(frame.buffer);
  if (extra === 2) view.setUint16(2, length);
  else if (extra === 8) view.setBigUint64(2, BigInt(length));
  let at = 2 + extra;
  const key = [0x12, 0x34, 0x56, 0x78];
  if (mask) {
    frame.set(key, at);
    at += 4;
  }
  for (let i = 0; i < length; i++) frame[at + i] = mask ? payload[i] ^ key[i & 3] : payload[i];
  return frame;
}

export const HANDSHAKE = (port: number, path = "/") =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/** Opens a raw connection and completes the handshake; returns the client and the bytes after the 101 head. */
export async function rawUpgrade(port: number, path = "/"): Promise<RawClient> {
  const client = await RawClient.open(port);
  await client.write(HANDSHAKE(port, path));
  await client.until((text) => text.includes("\r\n\r\n"));
  if (!client.text.startsWith("HTTP/1.1 101")) throw new Error(`no 101: ${client.text.slice(0, 200)}`);
  return client;
}

/** The server's frames after the 101 head: [opcode, payload][] (server frames are unmasked). */
export function serverFrames(bytes: Uint8Array): [number, Uint8Array][] {
  const text = new TextDecoder("latin1").decode(bytes);
  let at = text.indexOf("\r\n\r\n") + 4;
  const frames: [number, Uint8Array][] = [];
  while (at + 2 <= bytes.byteLength) {
    let length = bytes[at + 1] & 0x7f;
    let start = at + 2;
    if (length === 126) {
      length = (bytes[at + 2] << 8) | bytes[at + 3];
      start += 2;
    } else if (length === 127) {
      length = Number(new DataView(bytes.buffer, bytes.byteOffset + at + 2, 8).getBigUint64(0));
      start += 8;
    }
    if (start + length > bytes.byteLength) break;
    frames.push([bytes[at] & 0x0f, bytes.subarray(start, start + length)]);
    at = start + length;
  }
  return frames;
}

/** The code of a close frame's payload (1005 when it has none). */
export function closeCodeOf(payload: Uint8Array): number {
  return payload.byteLength >= 2 ? (payload[0] << 8) | payload[1] : 1005;
}
