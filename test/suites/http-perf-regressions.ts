// Behaviours the hot-path optimisations of 2026-11-25 (docs/benchmarks.md) must keep: requestIP without a
// per-request map, string bodies encoded straight into the write buffer, the header-line cache of the
// response head writer, the batch clock (Date header, deadlines), repeated heads and repeated text responses.
import { assert, test } from "../_harness.ts";
import { RawClient, rawExchange, startServer, statusOf, withClient, withServer } from "../_http.ts";
import { ResponseHeadWriter, type ResponseHeadInput } from "../../src/http/response-head.ts";
import { BareTextCache } from "../../src/http/bare-text-cache.ts";

const utf8 = new TextEncoder();

/** The body of the one response in `text` (latin1 as read), checked against its Content-Length. */
function bodyOf(text: string): string {
  const split = text.indexOf("\r\n\r\n");
  assert.ok(split > 0, JSON.stringify(text.slice(0, 200)));
  const length = Number(/\r\ncontent-length: (\d+)\r\n/i.exec(text.slice(0, split + 2))?.[1]);
  const body = text.slice(split + 4);
  assert.equal(body.length, length, "Content-Length is the byte length");
  return body;
}

test("perf-regressions: requestIP finds the connection from the request; foreign objects get null", async () => {
  const seen: unknown[] = [];
  const server = startServer((request) => {
    seen.push(server.requestIP(request));
    seen.push(server.requestIP(new Request("http://x/")));
    seen.push(server.requestIP({} as Request));
    seen.push(server.requestIP(null as unknown as Request));
    return new Response("ok");
  });
  try {
    await withClient(server.port, async (client) => {
      await client.write("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
      await client.until(() => client.responses() === 2);
    });
    assert.equal(seen.length, 8);
    const first = seen[0] as { address: string; family: string; port: number };
    assert.equal(first.address, "127.0.0.1");
    assert.equal(first.family, "IPv4");
    assert.ok(first.port > 0);
    assert.deepEqual(seen[4], first, "both requests of one connection report it");
    for (const i of [1, 2, 3, 5, 6, 7]) assert.equal(seen[i], null);
  } finally {
    await server.stop(false);
  }
});

test("perf-regressions: requestIP still works after the handler awaited", async () => {
  let ip: unknown = null;
  const server = startServer(async (request) => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    ip = server.requestIP(request);
    return new Response("ok");
  });
  try {
    const response = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.equal(await response.text(), "ok");
    assert.equal((ip as { address: string }).address, "127.0.0.1");
  } finally {
    await server.stop(false);
  }
});

test("perf-regressions: string bodies of every shape get the right bytes and Content-Length", async () => {
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

test("perf-regressions: HEAD of a string body sends its Content-Length and no body", () =>
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

test("perf-regressions: a repeated header set is sent exactly, and a changed value replaces it", async () => {
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

test("perf-regressions: the head writer's line cache validates every new pair and repeats cached ones exactly", () => {
  const writer = new ResponseHeadWriter();
  const out = new Uint8Array(512);
  const nowMs = Date.UTC(2026, 0, 1);
  const write = (headers: string[]): string => {
    const input: ResponseHeadInput = {
      status: 200, reason: null, headers, headerCount: headers.length / 2, bodyLength: 1,
      requestVersionMinor: 1, requestKeepAlive: true, requestIsHead: false,
    };
    const end = writer.write(out, 0, input, nowMs);
    return String.fromCharCode(...out.subarray(0, end));
  };
  const good = ["content-type", "text/plain", "x-y", "z"];
  const first = write(good);
  for (let i = 0; i < 3; i++) assert.equal(write([...good]), first);
  assert.throws(() => write(["content-type", "text/plain", "x-y", "z\n"]), TypeError);
  assert.throws(() => write(["content-type", "text/plain", "x y", "z"]), TypeError);
  assert.throws(() => write(["", ""]), TypeError);
  assert.throws(() => write(["", ""]), TypeError, "an invalid pair is never cached");
  assert.equal(write(good), first);
  // A cached line that no longer fits: -1 (no room), then the same line once there is room.
  const small = new Uint8Array(20);
  const input: ResponseHeadInput = {
    status: 200, reason: null, headers: good, headerCount: 2, bodyLength: 1,
    requestVersionMinor: 1, requestKeepAlive: true, requestIsHead: false,
  };
  assert.equal(writer.write(small, 0, input, nowMs), -1);
  assert.equal(write(good), first);
});

test("perf-regressions: Date header is current and idle keep-alive connections still time out", () =>
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

test("perf-regressions: repeated heads on a connection are reused only when every byte is the same", () =>
  withServer((request) => new Response(`${request.method} ${request.url} ${request.headers.get("x-k")}`), {}, async (server) => {
    const client = await RawClient.open(server.port);
    const head = (host: string, name: string, value: string) => `GET /a HTTP/1.1\r\nHost: ${host}\r\n${name}: ${value}\r\n\r\n`;
    try {
      const sent = [
        head("a", "X-K", "1"), head("a", "X-K", "1"), head("a", "X-K", "2"), head("b", "X-K", "2"),
        "POST /a HTTP/1.1\r\nHost: b\r\nX-K: 2\r\nContent-Length: 3\r\n\r\nxyz", head("b", "X-K", "2"),
      ];
      await client.write(sent.join(""));
      await client.until(() => client.responses() === sent.length && client.text.endsWith("GET http://b/a 2"));
      const bodies = client.text.split(/(?=HTTP\/1\.1 )/).map(bodyOf);
      assert.deepEqual(bodies, [
        "GET http://a/a 1", "GET http://a/a 1", "GET http://a/a 2", "GET http://b/a 2", "POST http://b/a 2", "GET http://b/a 2",
      ]);
      // The remembered head again, one byte at a time: parsed as it arrives, answered once complete.
      const again = head("b", "X-K", "2");
      for (const byte of again) await client.write(byte);
      await client.until(() => client.responses() === sent.length + 1);
      // Same length, one byte different, and invalid (a space in the field name): 400, not the memo.
      await client.write(head("b", "X K", "2"));
      const text = await client.closedByPeer();
      assert.equal(statusOf(text.split(/(?=HTTP\/1\.1 )/).at(-1)!), 400);
    } finally {
      client.close();
    }
  }));

test("perf-regressions: a repeated text response keeps HEAD, HTTP/1.0 and Connection: close right", () =>
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

test("perf-regressions: a cached text response sent on its own and one batched behind others are the same bytes", () =>
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

test("perf-regressions: the text response cache holds one text for one Date second", () => {
  const cache = new BareTextCache();
  const bytes = new Uint8Array([1, 2, 3]);
  assert.equal(cache.get("a", 10), null);
  cache.set("a", 10, bytes);
  assert.equal(cache.get("a", 10), bytes);
  assert.equal(cache.get("a", 11), null, "a new second formats a new Date");
  assert.equal(cache.get(["a", "b"].join("").slice(0, 1), 10), bytes, "equal strings match, not only the same one");
  assert.equal(cache.get("b", 10), null);
});

test("perf-regressions: a client's FIN right behind its requests (edge-triggered reads) still gets every answer", () =>
  withServer(async (request) => new Response(`${request.method} ${await request.text()}`), {}, async (server) => {
    const cases = [
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
      `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n${"x".repeat(200_000)}`, // more than one read buffer
    ];
    for (const data of cases) {
      await withClient(server.port, async (client) => {
        await client.end(data);
        const text = await client.closedByPeer();
        assert.ok(client.closed, "the server closes after answering");
        const answers = text.split(/(?=HTTP\/1\.1 )/);
        const expected = (data.match(/HTTP\/1\.1\r\n/g) ?? []).length;
        assert.equal(answers.length, expected, JSON.stringify(text.slice(0, 200)));
        for (const answer of answers) assert.equal(statusOf(answer), 200);
        assert.ok(bodyOf(answers.at(-1)!).startsWith(data.startsWith("POST") ? "POST " : "GET "));
        if (data.length > 100_000) assert.equal(bodyOf(answers[0]).length, 5 + 200_000);
      });
    }
  }));
