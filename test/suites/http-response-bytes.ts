// What a server sends for a Response, byte for byte: the length and framing of string bodies of every shape,
// HEAD, HTTP/1.0 and Connection: close, header sets and texts that repeat (the engine sends those from its
// caches), a Date header that stays current, and how many sends a large or streamed response takes.
import { assert, test } from "../_harness.ts";
import { bodyOf, RawClient, rawExchange, startServer, statusOf, withClient, withServer } from "../_http.ts";
import { openFds } from "../_fds.ts";
import { lib } from "../../src/ffi/index.ts";
import { decodeSockaddr } from "../../src/net/address.ts";
import { IPPROTO_TCP, SOL_SOCKET } from "../../src/net/constants.ts";
import { closeFd, connect, readSome, writeSome } from "../../src/net/socket.ts";

const utf8 = new TextEncoder();

test("response-bytes: string bodies of every shape get the right bytes and Content-Length", async () => {
  const bodies = [
    "", "Hello", "x".repeat(256), "y".repeat(257), "héllo wörld", "€ and 𝄞", "lone \ud800 surrogate", "\u007f\u0080",
    "ascii then é".padStart(300, "a"), "z".repeat(30_000), "€".repeat(30_000), "a".repeat(70_000) + "é",
    // Either side of the size from which a body leaves from where it is rather than copied (8 KiB), ASCII or
    // not; a surrogate pair and a lone surrogate where a first, as-if-ASCII encode runs out of room.
    "b".repeat(8191), "c".repeat(8192), "d".repeat(8190) + "é", "é".repeat(5000), "a".repeat(70_000) + "𝄞",
    "a".repeat(65_535) + "\ud800",
  ];
  await withServer((request) => new Response(bodies[Number(new URL(request.url).searchParams.get("i"))]), {}, async (server) => {
    const client = await RawClient.open(server.port);
    try {
      for (let i = 0; i < bodies.length; i++) {
        const before = client.bytes.length;
        await client.write(`GET /?i=${i} HTTP/1.1\r\nHost: a\r\n\r\n`);
        const expected = utf8.encode(bodies[i]);
        // Content-Length where the body is known at once; Bun hands a long string over as a stream of
        // several chunks, which the engine sends chunked (as before these changes).
        const parse = (): Uint8Array | null => {
          const bytes = client.bytes.subarray(before);
          const split = bytes.indexOf("\r\n\r\n");
          if (split < 0) return null;
          const head = bytes.subarray(0, split).toString("latin1");
          assert.equal(statusOf(head), 200);
          const rest = bytes.subarray(split + 4);
          const length = /\r\ncontent-length: (\d+)(\r\n|$)/i.exec(head)?.[1];
          if (length !== undefined) {
            assert.equal(Number(length), expected.length, `Content-Length of body ${i}`);
            return rest.length >= expected.length ? new Uint8Array(rest) : null;
          }
          assert.match(head, /\r\ntransfer-encoding: chunked(\r\n|$)/i, `framing of body ${i}`);
          const parts: Uint8Array[] = [];
          for (let at = 0; ;) {
            const eol = rest.indexOf("\r\n", at);
            if (eol < 0) return null;
            const size = parseInt(rest.subarray(at, eol).toString("latin1"), 16);
            if (size === 0) return rest.length >= eol + 4 ? new Uint8Array(Buffer.concat(parts)) : null;
            if (rest.length < eol + 2 + size + 2) return null;
            parts.push(rest.subarray(eol + 2, eol + 2 + size));
            at = eol + 2 + size + 2;
          }
        };
        await client.until(() => parse() !== null);
        assert.deepEqual(parse(), expected, `body ${i}`);
      }
    } finally {
      client.close();
    }
  });
});

test("response-bytes: HEAD of a string body sends its Content-Length and no body", () =>
  withServer(() => new Response("héllo"), {}, async (server) => {
    await withClient(server.port, async (client) => {
      await client.write("HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
      const text = await client.until(() => client.responses() === 2 && client.text.endsWith("h\xc3\xa9llo"));
      const [headAnswer, getAnswer] = text.split(/(?=HTTP\/1\.1 )/);
      assert.match(headAnswer, /\r\ncontent-length: 6\r\n/i);
      assert.ok(headAnswer.endsWith("\r\n\r\n"), "no body after the HEAD answer");
      assert.equal(bodyOf(getAnswer), "h\xc3\xa9llo");
    });
  }));

test("response-bytes: a repeated header set is sent exactly, and a changed value replaces it", async () => {
  let mode = "same";
  const server = startServer(() => {
    if (mode === "other") return new Response("x", { headers: { "x-a": "1", "x-b": "3" } });
    return new Response("x", { headers: { "x-a": "1", "x-b": "2" } });
  });
  try {
    for (let i = 0; i < 4; i++) {
      const text = await rawExchange(server.port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
      assert.match(text, /\r\nx-a: 1\r\nx-b: 2\r\n/, `round ${i}`);
    }
    mode = "other";
    assert.match(await rawExchange(server.port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), /\r\nx-a: 1\r\nx-b: 3\r\n/);
  } finally {
    await server.stop(false);
  }
});

test("response-bytes: Date header is current and idle keep-alive connections still time out", () =>
  withServer(() => new Response("ok"), { limits: { idleTimeoutMs: 300 } }, async (server) => {
    await withClient(server.port, async (client) => {
      await client.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
      const text = await client.until(() => client.responses() === 1 && client.text.endsWith("ok"));
      const date = /\r\ndate: ([^\r]+)\r\n/i.exec(text)?.[1] ?? "";
      assert.ok(Math.abs(Date.parse(date) - Date.now()) < 3000, date);
      const started = Date.now();
      await client.closedByPeer(5000);
      const waited = Date.now() - started;
      assert.ok(client.closed, "closed by the idle timeout");
      assert.ok(waited >= 150 && waited < 3000, `closed after ${waited} ms`);
    });
  }));

test("response-bytes: a repeated text response keeps HEAD, HTTP/1.0 and Connection: close right", () =>
  withServer(() => new Response("same"), {}, async (server) => {
    await withClient(server.port, async (client) => {
      const get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
      await client.write(get + get + "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n" + get);
      await client.until(() => client.responses() === 4 && client.text.endsWith("same"));
      const answers = client.text.split(/(?=HTTP\/1\.1 )/);
      assert.equal(answers[0], answers[1], "the same bytes twice");
      assert.equal(bodyOf(answers[3]), "same");
      assert.match(answers[2], /\r\ncontent-length: 4\r\n/i);
      assert.ok(answers[2].endsWith("\r\n\r\n"), "no body after the HEAD answer");
      await client.write("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
      const closing = (await client.closedByPeer()).split(/(?=HTTP\/1\.1 )/).at(-1)!;
      assert.match(closing, /\r\nconnection: close\r\n/i);
      assert.equal(bodyOf(closing), "same");
    });
    const old = await rawExchange(server.port, "GET / HTTP/1.0\r\n\r\n");
    assert.doesNotMatch(old, /keep-alive/i);
    assert.equal(bodyOf(old), "same");
  }));

test("response-bytes: a cached text response sent on its own and one batched behind others are the same bytes", () =>
  withServer(() => new Response("solo"), {}, async (server) => {
    await withClient(server.port, async (client) => {
      const get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
      // One request per write: the second answer comes from the cache, sent straight from it.
      for (let i = 1; i <= 2; i++) {
        await client.write(get);
        await client.until(() => client.responses() === i && client.text.endsWith("solo"));
      }
      // Two in one write: the second is batched behind the first; then one alone again.
      await client.write(get + get);
      await client.until(() => client.responses() === 4 && client.text.endsWith("solo"));
      await client.write(get);
      await client.until(() => client.responses() === 5 && client.text.endsWith("solo"));
      const answers = client.text.split(/(?=HTTP\/1\.1 )/);
      assert.equal(answers.length, 5);
      for (const answer of answers) assert.equal(bodyOf(answer), "solo");
      const dateOf = (answer: string) => /\r\nDate: [^\r]+/i.exec(answer)![0];
      for (const answer of answers) {
        if (dateOf(answer) === dateOf(answers[1])) assert.equal(answer, answers[1], "cached, batched or not, the same bytes");
      }
    });
  }));

// Each send of a response wakes the client (on loopback, an inter-processor interrupt per send), so a
// response goes out in one send: its head with its body, a stream's chunks that are ready together with
// one another. The server's sockets count what they sent in TCP segments (tcp_info), and a send of up to an
// MSS (65483 bytes on loopback) is one segment: so segments count sends.

const TCP_INFO = 11;
/** struct tcp_info: tcpi_data_segs_out, the data segments the socket sent (u32, since Linux 4.6). */
const DATA_SEGS_OUT_OFFSET = 156;
const SO_ACCEPTCONN = 30;

/** Data segments sent so far by every connection this process accepted on `port`. */
function segmentsSent(port: number): number {
  const address = new Uint8Array(128);
  const value = new Uint8Array(4);
  const info = new Uint8Array(256);
  let total = 0;
  for (const { fd, target } of openFds()) {
    if (!target.startsWith("socket:") || lib.rp_getsockname(fd, address) < 0) continue;
    const local = decodeSockaddr(address, 128);
    if (local.family === "unix" || local.port !== port) continue;
    if (lib.rp_getsockopt_bytes(fd, SOL_SOCKET, SO_ACCEPTCONN, value, 4) < 0 || value[0] !== 0) continue; // the listener
    const length = lib.rp_getsockopt_bytes(fd, IPPROTO_TCP, TCP_INFO, info, info.byteLength);
    assert.ok(length >= DATA_SEGS_OUT_OFFSET + 4, `tcp_info of fd ${fd}: ${length}`);
    total += new DataView(info.buffer).getUint32(DATA_SEGS_OUT_OFFSET, true);
  }
  return total;
}

/**
 * Plain nonblocking sockets, written synchronously: requests written on all of them in one go are all in
 * the kernel before the server (on this thread) runs, so it answers them in one poll round.
 */
class SyncClients {
  private readonly received: Buffer[][];
  private constructor(readonly fds: number[]) {
    this.received = fds.map(() => []);
  }

  static open(port: number, count: number): SyncClients {
    const fds: number[] = [];
    for (let i = 0; i < count; i++) fds.push(connect({ family: "IPv4", address: "127.0.0.1", port }));
    return new SyncClients(fds);
  }

  /** Writes `request` on every socket (each takes it whole, or the test fails). */
  writeAll(request: string): void {
    const bytes = new TextEncoder().encode(request);
    for (const fd of this.fds) assert.equal(writeSome(fd, bytes), bytes.byteLength, `request on fd ${fd}`);
  }

  /** Reads until every socket has `complete` bytes (or 5 s pass), yielding to the server in between. */
  async readAll(complete: (bytes: Buffer) => boolean): Promise<Buffer[]> {
    const scratch = new Uint8Array(256 * 1024);
    const all = () => this.received.map((parts) => Buffer.concat(parts));
    for (let wait = 0; wait < 5000; wait++) {
      this.fds.forEach((fd, i) => {
        for (let n = readSome(fd, scratch); n > 0; n = readSome(fd, scratch)) this.received[i].push(Buffer.from(scratch.subarray(0, n)));
      });
      const got = all();
      if (got.every(complete)) {
        this.received.forEach((parts) => (parts.length = 0));
        return got;
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    throw new Error("responses did not arrive within 5 s");
  }

  close(): void {
    for (const fd of this.fds) closeFd(fd);
  }
}

/** A whole response with a Content-Length body. */
function wholeWithLength(bytes: Buffer): boolean {
  const split = bytes.indexOf("\r\n\r\n");
  if (split < 0) return false;
  const length = /\r\ncontent-length: (\d+)\r\n/i.exec(bytes.subarray(0, split + 2).toString("latin1"))?.[1];
  return length !== undefined && bytes.length === split + 4 + Number(length);
}

async function segmentsPerRound(port: number, clients: SyncClients, request: string, complete: (bytes: Buffer) => boolean): Promise<number> {
  clients.writeAll(request); // a warm-up answer, so that every connection is accepted and its windows are open
  await clients.readAll(complete);
  const before = segmentsSent(port);
  clients.writeAll(request);
  const answers = await clients.readAll(complete);
  for (const answer of answers) assert.equal(statusOf(answer.toString("latin1")), 200);
  return segmentsSent(port) - before;
}

test("response-bytes: large bodies answered in one round leave in one send each, head and body together", async () => {
  const text = "t".repeat(32 * 1024);
  const bytes = new Uint8Array(32 * 1024).fill(0x62); // segments count sends while a response fits the client's window
  const handler = (request: Request) =>
    new URL(request.url).pathname === "/text"
      ? new Response(text, { headers: { "content-type": "text/plain" } })
      : new Response(bytes, { headers: { "content-type": "application/octet-stream" } });
  await withServer(handler, {}, async (server) => {
    const count = 6;
    const clients = SyncClients.open(server.port, count);
    try {
      for (const path of ["/text", "/bytes"]) {
        const segments = await segmentsPerRound(server.port, clients, `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`, wholeWithLength);
        // One segment per response; one spare for the kernel's own reasons.
        assert.ok(segments <= count + 1, `${path}: ${segments} segments for ${count} responses`);
      }
    } finally {
      clients.close();
    }
  });
});

/** A handler streaming `chunks` chunks of 1 KiB of `fill`, each given on a pull. */
function streamOfChunks(fill: number, chunks: number) {
  const chunk = new Uint8Array(1024).fill(fill);
  return () => {
    let given = 0;
    return new Response(new ReadableStream({
      pull(controller) {
        if (given++ < chunks) controller.enqueue(chunk);
        else controller.close();
      },
    }));
  };
}

test("response-bytes: a streamed body's chunks that are ready together leave in one send", async () => {
  const chunks = 8;
  await withServer(streamOfChunks(0x63, chunks), {}, async (server) => {
    const clients = SyncClients.open(server.port, 1);
    try {
      const ended = (bytes: Buffer) => bytes.length > 5 && bytes.subarray(-5).toString("latin1") === "0\r\n\r\n";
      const segments = await segmentsPerRound(server.port, clients, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", ended);
      assert.ok(segments <= 2, `${segments} segments for one response of ${chunks} chunks`);
    } finally {
      clients.close();
    }
  });
});

test("response-bytes: more streams at once than there are full stream buffers all arrive whole", async () => {
  const chunks = 8;
  await withServer(streamOfChunks(0x64, chunks), {}, async (server) => {
    const clients = SyncClients.open(server.port, 160); // more than BUFFERS_IN_USE_MAX (stream-buffer.ts)
    try {
      const ended = (bytes: Buffer) => bytes.length > 5 && bytes.subarray(-5).toString("latin1") === "0\r\n\r\n";
      for (let round = 0; round < 2; round++) {
        clients.writeAll("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        for (const answer of await clients.readAll(ended)) {
          const text = answer.toString("latin1");
          assert.equal(statusOf(text), 200);
          const body = text.slice(text.indexOf("\r\n\r\n") + 4);
          assert.equal(body.replace(/(^|\r\n)[0-9a-f]+\r\n/g, "").replaceAll("\r\n", ""), "d".repeat(chunks * 1024));
        }
      }
    } finally {
      clients.close();
    }
  });
});

test("response-bytes: a gathered chunk leaves without waiting for the stream's next one", async () => {
  const encoder = new TextEncoder();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const handler = () => {
    let step = 0;
    return new Response(new ReadableStream({
      pull(controller) {
        step++;
        if (step <= 3) controller.enqueue(encoder.encode(["one", "two", "three"][step - 1]));
        else return gate.then(() => controller.close()); // the end waits for the client to have seen "three"
      },
    }));
  };
  await withServer(handler, {}, async (server) => {
    await withClient(server.port, async (client) => {
      await client.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
      await client.until((text) => text.includes("\r\nthree\r\n"));
      release();
      const text = await client.until((text) => text.endsWith("\r\n0\r\n\r\n"));
      assert.match(text, /\r\ntransfer-encoding: chunked\r\n/i);
    });
  });
});
