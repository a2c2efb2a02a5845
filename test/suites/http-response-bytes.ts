// What a server sends for a Response, byte for byte: the length and framing of string bodies of every shape,
// HEAD, HTTP/1.0 and Connection: close, header sets and texts that repeat (the engine sends those from its
// caches), and a Date header that stays current.
import { assert, test } from "../_harness.ts";
import { bodyOf, RawClient, rawExchange, startServer, statusOf, withClient, withServer } from "../_http.ts";

const utf8 = new TextEncoder();

test("response-bytes: string bodies of every shape get the right bytes and Content-Length", async () => {
  const bodies = [
    "", "Hello", "x".repeat(256), "y".repeat(257), "héllo wörld", "€ and 𝄞", "lone \ud800 surrogate", "\u007f\u0080",
    "ascii then é".padStart(300, "a"), "z".repeat(30_000), "€".repeat(30_000), "a".repeat(70_000) + "é",
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
