// HTTP test helpers: start a server on 127.0.0.1 port 0, and a raw TCP client that sends exact
// bytes and reads until a condition holds or the peer closes (bounded in time).
import { connect as tcpConnect, type Socket } from "node:net";
import { serve, type Server, type ServeOptions } from "../src/index.ts";
import assert from "node:assert/strict";

export type Fetch = NonNullable<ServeOptions["fetch"]>;

export function startServer(fetch: Fetch, options: Omit<ServeOptions, "fetch"> = {}): Server {
  return serve({ hostname: "127.0.0.1", port: 0, onListen: () => {}, fetch, ...options }) as Server; // onListen: no startup line per test
}

/** Runs body with a fresh server and always stops it (not gracefully) afterwards. */
export async function withServer(fetch: Fetch, options: Omit<ServeOptions, "fetch">, body: (server: Server, base: string) => Promise<void>): Promise<void> {
  const server = startServer(fetch, options);
  try {
    await body(server, `http://127.0.0.1:${server.port}`);
  } finally {
    await server.stop(false);
  }
}

export class RawClient {
  private chunks: Buffer[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect({ host: "127.0.0.1", port }, () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString("latin1");
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  write(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (error) => (error ? reject(error) : resolve())));
  }

  /** Writes data, then half-closes: our FIN follows the bytes, the socket still reads. */
  end(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve) => this.socket.end(data, () => resolve()));
  }

  /** Waits until predicate(text) holds, or the peer closed, or timeoutMs passed; returns the text. */
  async until(predicate: (text: string) => boolean, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.text) && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for the response; got ${JSON.stringify(this.text.slice(0, 500))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.text;
  }

  /** Waits for the peer to close (bounded). */
  async closedByPeer(timeoutMs = 5000): Promise<string> {
    return this.until(() => false, timeoutMs).catch((error) => {
      if (this.closed) return this.text;
      throw error;
    });
  }

  /** Number of complete HTTP responses seen so far (status lines). */
  responses(): number {
    return (this.text.match(/HTTP\/1\.[01] \d{3} /g) ?? []).length;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Opens a raw connection to 127.0.0.1:port for `body`, and closes it however body ends. */
export async function withClient<T>(port: number, body: (client: RawClient) => Promise<T>): Promise<T> {
  const client = await RawClient.open(port);
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

/** Sends raw bytes on a fresh connection and returns everything until the server closes it. */
export function rawExchange(port: number, data: string | Uint8Array, predicate?: (text: string) => boolean): Promise<string> {
  return withClient(port, async (client) => {
    await client.write(data);
    return predicate ? await client.until(predicate) : await client.closedByPeer();
  });
}

export function statusOf(text: string): number {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return match ? Number(match[1]) : 0;
}

/** The body of the one response in `text` (latin1 as read), checked against its Content-Length. */
export function bodyOf(text: string): string {
  const split = text.indexOf("\r\n\r\n");
  assert.ok(split > 0, JSON.stringify(text.slice(0, 200)));
  const length = Number(/\r\ncontent-length: (\d+)\r\n/i.exec(text.slice(0, split + 2))?.[1]);
  const body = text.slice(split + 4);
  assert.equal(body.length, length, "Content-Length is the byte length");
  return body;
}
