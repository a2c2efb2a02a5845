// serve(): limits (431, 413, 408, idle close), request smuggling answers, streaming with
// bounded memory, and clients that leave mid-response.
import { assert, test } from "../_harness.ts";
import { RawClient, rawExchange, statusOf, withClient, withServer } from "../_http.ts";

const echoLength = async (request: Request) => new Response(String((await request.arrayBuffer()).byteLength));

test("limits: head over maxHeaderBytes gets 431 and close", () =>
  withServer(echoLength, { limits: { maxHeaderBytes: 1024 } }, async (server) => {
    const text = await rawExchange(server.port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${"a".repeat(2000)}\r\n\r\n`);
    assert.equal(statusOf(text), 431);
    const fits = await rawExchange(server.port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${"a".repeat(500)}\r\nConnection: close\r\n\r\n`);
    assert.equal(statusOf(fits), 200);
  }));

test("limits: more than maxHeaderCount fields gets 431", () =>
  withServer(echoLength, { limits: { maxHeaderCount: 10 } }, async (server) => {
    const fields = Array.from({ length: 11 }, (_, i) => `X-${i}: v\r\n`).join("");
    assert.equal(statusOf(await rawExchange(server.port, `GET / HTTP/1.1\r\nHost: a\r\n${fields}\r\n`)), 431);
  }));

test("limits: body over maxBodyBytes gets 413 (Content-Length and chunked), also as maxRequestBodySize", async () => {
  await withServer(echoLength, { limits: { maxBodyBytes: 1000 } }, async (server) => {
    assert.equal(statusOf(await rawExchange(server.port, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n")), 413);
    const chunk = "x".repeat(600);
    const chunked = `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`;
    assert.equal(statusOf(await rawExchange(server.port, chunked)), 413);
    const ok = await rawExchange(server.port, `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n${"y".repeat(1000)}`);
    assert.ok(ok.endsWith("\r\n\r\n1000"), ok);
  });
  await withServer(echoLength, { maxRequestBodySize: 10 }, async (server) => {
    assert.equal(statusOf(await rawExchange(server.port, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n")), 413);
  });
});

test("limits: a head that does not complete within headerTimeoutMs gets 408 and close", () =>
  withServer(echoLength, { limits: { headerTimeoutMs: 200 } }, async (server) => {
    const started = Date.now();
    const text = await rawExchange(server.port, "GET / HTTP/1.1\r\nHost: a\r\n");
    assert.equal(statusOf(text), 408);
    assert.ok(Date.now() - started >= 150, "not before the timeout");
  }));

test("limits: an idle keep-alive connection is closed after idleTimeoutMs", () =>
  withServer(() => new Response("x"), { limits: { idleTimeoutMs: 200 } }, async (server) => {
    await withClient(server.port, async (client) => {
      await client.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
      await client.until((t) => t.endsWith("x"));
      const text = await client.closedByPeer();
      assert.ok(client.closed);
      assert.equal(client.responses(), 1, text);
    });
  }));

const SMUGGLING: [string, string][] = [
  ["Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
  ["differing duplicate Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"],
  ["Transfer-Encoding not ending in chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n"],
  ["obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"],
  ["space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n"],
  ["control character in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n"],
  ["invalid token in a name", "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n"],
  ["bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"],
  ["chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n"],
  ["missing Host in HTTP/1.1", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n"],
  ["bare CR", "GET / HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n"],
];

for (const [name, raw] of SMUGGLING) {
  test(`smuggling: ${name} gets 400 and close`, () =>
    withServer(echoLength, {}, async (server) => {
      const text = await rawExchange(server.port, raw);
      assert.equal(statusOf(text), 400, JSON.stringify(text));
      assert.match(text, /Connection: close\r\n/i);
    }));
}

test("smuggling: a request after a rejected one on the same connection is never served", () =>
  withServer(echoLength, {}, async (server) => {
    const text = await rawExchange(server.port, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n");
    assert.equal((text.match(/HTTP\/1\.1 /g) ?? []).length, 1);
  }));

const MB = 1024 * 1024;

// Bounded memory, measured where the server holds bytes: on upload, what the engine read from
// the socket (stats bytesIn) but the handler has not consumed yet; on download, what the handler's
// stream produced but the engine has not handed to the socket yet (stats bytesOut). Kernel socket
// buffers (tcp_rmem may grow to 32 MB) are the kernel's business and excluded.
test("streaming: 50 MB upload and download with at most a few MB held by the server", async () => {
  const block = new Uint8Array(64 * 1024).fill(97);
  let consumed = 0;
  let produced = 0;
  let heldMax = 0;
  // deno-lint-ignore prefer-const
  let server: { stats(): { bytesIn: number; bytesOut: number } };
  await withServer(async (request) => {
    if (new URL(request.url).pathname === "/upload") {
      for await (const chunk of request.body! as unknown as AsyncIterable<Uint8Array>) {
        consumed += chunk.byteLength;
        heldMax = Math.max(heldMax, server.stats().bytesIn - consumed);
      }
      return new Response(String(consumed));
    }
    const baseline = server.stats().bytesOut;
    return new Response(new ReadableStream({
      pull(controller) {
        if (produced >= 50 * MB) return controller.close();
        heldMax = Math.max(heldMax, produced - (server.stats().bytesOut - baseline));
        controller.enqueue(block);
        produced += block.byteLength;
      },
    }));
  }, {}, async (started, base) => {
    server = started;
    let sent = 0;
    const upload = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 50 * MB) return controller.close();
        controller.enqueue(new Uint8Array(64 * 1024));
        sent += 64 * 1024;
      },
    });
    const up = await fetch(`${base}/upload`, { method: "POST", body: upload, duplex: "half" } as RequestInit);
    assert.equal(await up.text(), String(50 * MB));
    assert.ok(heldMax < 2 * MB, `the server held ${(heldMax / MB).toFixed(2)} MB of the upload`);
    heldMax = 0;
    const down = await fetch(`${base}/download`);
    let received = 0;
    for await (const chunk of down.body! as unknown as AsyncIterable<Uint8Array>) received += chunk.byteLength;
    assert.equal(received, 50 * MB);
    assert.ok(heldMax < 2 * MB, `the server held ${(heldMax / MB).toFixed(2)} MB of the download`);
  });
}, { timeoutMs: 60_000 });

test("disconnect: a client leaving mid-response costs only its connection", () =>
  withServer((request) => {
    if (new URL(request.url).pathname === "/forever") {
      const block = new Uint8Array(16 * 1024);
      return new Response(new ReadableStream({ pull: (c) => c.enqueue(block) }));
    }
    return new Response("still here");
  }, {}, async (server, base) => {
    const client = await RawClient.open(server.port);
    await client.write("GET /forever HTTP/1.1\r\nHost: a\r\n\r\n");
    await client.until((t) => t.length > 100_000);
    client.close();
    assert.equal(await (await fetch(`${base}/`)).text(), "still here");
    const deadline = Date.now() + 5000;
    // The server notices the reset in its own loop on this thread: yield to it (no timed sleep).
    while (server.pendingConnections > 1 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    assert.ok(server.pendingConnections <= 1, `connections left: ${server.pendingConnections}`);
  }));
