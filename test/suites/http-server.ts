// serve(): the Bun.serve / Deno.serve surface, HTTP/1.1 connection semantics and handler errors.
import { assert, test } from "../_harness.ts";
import { bodyOf, RawClient, rawExchange, startServer, statusOf, withClient, withServer } from "../_http.ts";
import { ConfigError, serve } from "../../src/index.ts";
import { openFds } from "../_net.ts";
import { lib } from "../../src/ffi/index.ts";
import { decodeSockaddr } from "../../src/net/address.ts";
import { IPPROTO_TCP, SOL_SOCKET, TCP_NODELAY } from "../../src/net/constants.ts";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { runtimeName } from "../_runtime.ts";

const hello = () => new Response("Hello");

test("serve: GET on port 0 answers with Date and Content-Length", () =>
  withServer(hello, {}, async (server, base) => {
    assert.ok(server.port > 0);
    assert.equal(server.url.href, `http://127.0.0.1:${server.port}/`);
    const response = await fetch(`${base}/`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "Hello");
    assert.equal(response.headers.get("content-length"), "5");
    assert.match(response.headers.get("date") ?? "", /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  }));

test("serve: the client address via info.remoteAddr and server.requestIP", async () => {
  let seen: unknown[] = [];
  const server = startServer((request, info) => {
    seen = [info.remoteAddr, server.requestIP(request)];
    return new Response(`${request.method} ${new URL(request.url).pathname}`);
  });
  try {
    const response = await fetch(`http://127.0.0.1:${server.port}/who?x=1`);
    assert.equal(await response.text(), "GET /who");
    const [remote, ip] = seen as [{ hostname: string; port: number; transport: string }, { address: string; family: string; port: number }];
    assert.equal(remote.hostname, "127.0.0.1");
    assert.equal(remote.transport, "tcp");
    assert.ok(remote.port > 0);
    assert.deepEqual(ip, { address: "127.0.0.1", family: "IPv4", port: remote.port });
  } finally {
    await server.stop(false);
  }
});

test("serve: the Request is a real Request with url, method, headers", () =>
  withServer(async (request) => {
    assert.ok(request instanceof Request);
    return Response.json({
      url: request.url,
      method: request.method,
      agent: request.headers.get("x-agent"),
      body: await request.text(),
    });
  }, {}, async (_server, base) => {
    const response = await fetch(`${base}/path?q=1`, { method: "PUT", headers: { "x-agent": "test" }, body: "payload" });
    assert.deepEqual(await response.json(), { url: `${base}/path?q=1`, method: "PUT", agent: "test", body: "payload" });
  }));

test("serve: keep-alive, HTTP/1.0 and Connection: close", () =>
  withServer(hello, {}, async (server) => {
    await withClient(server.port, async (client) => {
      await client.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
      await client.until((t) => t.endsWith("Hello"));
      await client.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
      await client.until(() => client.responses() === 2);
      assert.ok(!client.closed, "HTTP/1.1 stays open");
    });
    const http10 = await rawExchange(server.port, "GET / HTTP/1.0\r\n\r\n");
    assert.equal(statusOf(http10), 200);
    assert.match(http10, /Connection: close\r\n/i);
    const kept = await rawExchange(server.port, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", (t) => t.endsWith("Hello"));
    assert.match(kept, /Connection: keep-alive\r\n/i);
    const closing = await rawExchange(server.port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert.match(closing, /Connection: close\r\n/i);
    assert.ok(closing.endsWith("Hello"));
  }));

test("serve: HEAD gets the headers and Content-Length but no body", () =>
  withServer(hello, {}, async (server) => {
    const text = await rawExchange(server.port, "HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert.equal(statusOf(text), 200);
    assert.match(text, /Content-Length: 5\r\n/i);
    assert.ok(text.endsWith("\r\n\r\n"), JSON.stringify(text));
  }));

test("serve: 100 pipelined requests in one write are answered in order", () =>
  withServer((request) => new Response(new URL(request.url).pathname), {}, async (server) => {
    let burst = "";
    for (let i = 0; i < 100; i++) burst += `GET /r${i} HTTP/1.1\r\nHost: a\r\n\r\n`;
    await withClient(server.port, async (client) => {
      await client.write(burst);
      const text = await client.until(() => client.responses() === 100);
      const bodies = text.split(/HTTP\/1\.1 200 OK\r\n/).slice(1).map((part) => part.split("\r\n\r\n")[1]);
      assert.deepEqual(bodies, Array.from({ length: 100 }, (_, i) => `/r${i}`));
    });
  }));

test("serve: a request delivered one byte at a time parses the same", () =>
  withServer(async (request) => new Response(`${request.method} ${request.headers.get("x-a")} ${await request.text()}`), {}, async (server) => {
    const raw = "POST /p HTTP/1.1\r\nHost: a\r\nX-A: b\r\nContent-Length: 5\r\n\r\nhello";
    await withClient(server.port, async (client) => {
      for (const byte of raw) await client.write(byte);
      const text = await client.until((t) => t.endsWith("POST b hello"));
      assert.equal(statusOf(text), 200);
    });
  }));

test("serve: handler errors become 500 and the server goes on", async () => {
  const originalError = console.error;
  console.error = () => {}; // the engine logs handler errors; keep the test output clean
  try {
    await withServer((request) => {
      const path = new URL(request.url).pathname;
      if (path === "/throw") throw new Error("boom");
      if (path === "/reject") return Promise.reject(new Error("async boom"));
      if (path === "/bad") return "not a response" as unknown as Response;
      return new Response("fine");
    }, {}, async (_server, base) => {
      for (const path of ["/throw", "/reject", "/bad"]) {
        const response = await fetch(`${base}${path}`);
        assert.equal(response.status, 500, path);
        await response.arrayBuffer();
      }
      assert.equal(await (await fetch(`${base}/`)).text(), "fine");
    });
    await withServer(() => {
      throw new Error("custom");
    }, { error: (error) => new Response(`handled: ${(error as Error).message}`, { status: 503 }) }, async (_server, base) => {
      const response = await fetch(`${base}/`);
      assert.equal(response.status, 503);
      assert.equal(await response.text(), "handled: custom");
    });
  } finally {
    console.error = originalError;
  }
});

test("serve: 100 async handlers waiting 200 ms each run concurrently", () =>
  withServer(async () => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    return new Response("late");
  }, {}, async (_server, base) => {
    const started = Date.now();
    const bodies = await Promise.all(Array.from({ length: 100 }, () => fetch(`${base}/`).then((r) => r.text())));
    const elapsed = Date.now() - started;
    assert.equal(bodies.filter((b) => b === "late").length, 100);
    assert.ok(elapsed < 1000, `100 concurrent 200 ms handlers took ${elapsed} ms`);
  }));

test("serve: response bodies: string, bytes, Blob, stream, null", () =>
  withServer((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/bytes") return new Response(new Uint8Array([104, 105]));
    if (path === "/blob") return new Response(new Blob(["blob!"]));
    if (path === "/null") return new Response(null, { status: 204 });
    if (path === "/stream") {
      let i = 0;
      return new Response(new ReadableStream({
        pull(controller) {
          if (i === 3) controller.close();
          else controller.enqueue(new TextEncoder().encode(`part${i++};`));
        },
      }));
    }
    return new Response("ünïcode");
  }, {}, async (server, base) => {
    assert.equal(await (await fetch(`${base}/`)).text(), "ünïcode");
    assert.equal(await (await fetch(`${base}/bytes`)).text(), "hi");
    assert.equal(await (await fetch(`${base}/blob`)).text(), "blob!");
    const empty = await fetch(`${base}/null`);
    assert.equal(empty.status, 204);
    assert.equal(await empty.text(), "");
    const raw = await rawExchange(server.port, "GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert.match(raw, /Transfer-Encoding: chunked\r\n/i);
    assert.ok(raw.endsWith("6\r\npart0;\r\n6\r\npart1;\r\n6\r\npart2;\r\n0\r\n\r\n"), JSON.stringify(raw));
    assert.equal(await (await fetch(`${base}/stream`)).text(), "part0;part1;part2;");
  }));

test("serve: Expect: 100-continue gets 100 Continue before the body is sent", () =>
  withServer(async (request) => new Response(`got ${await request.text()}`), {}, async (server) => {
    await withClient(server.port, async (client) => {
      await client.write("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
      await client.until((t) => t.includes("HTTP/1.1 100 Continue\r\n\r\n"));
      await client.write("data");
      const text = await client.until((t) => t.endsWith("got data"));
      assert.ok(text.startsWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"));
    });
  }));

test("serve: request bodies: json, formData, arrayBuffer, chunked with extensions and trailers", () =>
  withServer(async (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/json") return Response.json(await request.json());
    if (path === "/form") return new Response(String((await request.formData()).get("a")));
    if (path === "/bytes") return new Response(String((await request.arrayBuffer()).byteLength));
    return new Response(await request.text());
  }, {}, async (server, base) => {
    assert.deepEqual(await (await fetch(`${base}/json`, { method: "POST", body: '{"a":[1,2]}' })).json(), { a: [1, 2] });
    const form = new FormData();
    form.set("a", "value");
    assert.equal(await (await fetch(`${base}/form`, { method: "POST", body: form })).text(), "value");
    assert.equal(await (await fetch(`${base}/form`, { method: "POST", body: new URLSearchParams({ a: "x y" }) })).text(), "x y");
    assert.equal(await (await fetch(`${base}/bytes`, { method: "POST", body: new Uint8Array(70_000) })).text(), "70000");
    const chunked = "POST /text HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
      "5;ext=1;quoted=\"a b\"\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n";
    const text = await rawExchange(server.port, chunked);
    assert.equal(statusOf(text), 200);
    assert.ok(text.endsWith("hello world"), JSON.stringify(text));
  }));

test("serve: Hono runs unchanged", async () => {
  const { Hono } = await import("hono");
  const app = new Hono();
  app.get("/hello/:name", (c) => c.text(`hi ${c.req.param("name")} ${c.req.query("x")}`));
  app.post("/echo", async (c) => c.json({ got: await c.req.json(), type: c.req.header("content-type") }));
  await withServer(app.fetch, {}, async (_server, base) => {
    assert.equal(await (await fetch(`${base}/hello/bob?x=1`)).text(), "hi bob 1");
    const echoed = await fetch(`${base}/echo`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"n":1}' });
    assert.deepEqual(await echoed.json(), { got: { n: 1 }, type: "application/json" });
    const missing = await fetch(`${base}/missing`);
    await missing.arrayBuffer();
    assert.equal(missing.status, 404);
  });
});

test("serve: bad options fail before anything listens", () => {
  const fetch = () => new Response("x");
  // deno-lint-ignore no-explicit-any
  const bad = (options: any, pattern: RegExp) => assert.throws(() => serve(options), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));
  bad({ fetch, port: 0, colour: 1 }, /colour is not a serve\(\) option/);
  bad({ port: 0 }, /fetch must be a function, got nothing/);
  bad({ fetch, port: 70000 }, /port must be an integer from 0 to 65535/);
  bad({ fetch, port: 0, error: () => new Response(), onError: () => new Response() }, /error and onError are two names for one option/);
  bad({ fetch, port: 0, idleTimeout: -1 }, /idleTimeout must be a positive number of seconds/);
  bad({ fetch, port: 0, limits: { maxHeaderBytes: 0 } }, /limits\.maxHeaderBytes must be a positive integer/);
  bad({ fetch, port: 0, limits: { bogus: 1 } }, /limits\.bogus is not a limit/);
  bad({ fetch, port: 0, hostname: "example.invalid" }, /hostname "example\.invalid" is not an IP address/);
});

test("serve: EADDRINUSE names the address", async () => {
  const first = serve({ hostname: "127.0.0.1", port: 0, reusePort: false, fetch: hello, onListen() {} });
  try {
    assert.throws(() => serve({ hostname: "127.0.0.1", port: first.port, fetch: hello }), (e: unknown) => {
      assert.match((e as Error).message, new RegExp(`^bind EADDRINUSE 127\\.0\\.0\\.1:${first.port}`));
      return true;
    });
  } finally {
    await first.stop(false);
  }
});

test("serve: stop() ends the server and finished resolves", async () => {
  const server = startServer(hello);
  const response = await fetch(`http://127.0.0.1:${server.port}/`);
  await response.text();
  await server.stop();
  await server.finished;
  await assert.rejects(fetch(`http://127.0.0.1:${server.port}/`));
});

test("serve: an AbortSignal stops the server", async () => {
  const stoppedWithin = (server: { finished: Promise<void> }, ms: number) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`still running after ${ms} ms`), ms)));
    return Promise.race([server.finished.then(() => "finished"), late]).finally(() => clearTimeout(timer));
  };
  const controller = new AbortController();
  const server = startServer(hello, { signal: controller.signal });
  assert.equal(await (await fetch(`http://127.0.0.1:${server.port}/`)).text(), "Hello", "it serves until the abort");
  controller.abort();
  assert.equal(await stoppedWithin(server, 5000), "finished");
  await assert.rejects(fetch(`http://127.0.0.1:${server.port}/`), "nothing listens on its port");
  // A signal aborted before serve() is called: the server stops at once.
  const early = startServer(hello, { signal: AbortSignal.abort() });
  assert.equal(await stoppedWithin(early, 5000), "finished");
  await assert.rejects(fetch(`http://127.0.0.1:${early.port}/`), "nothing listens on its port");
});

test("serve: a string body is text/plain unless the handler set a type; bytes get what the runtime's server gives them", () =>
  withServer((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/typed") return new Response("{}", { headers: { "content-type": "application/json" } });
    if (path === "/bytes") return new Response(new Uint8Array([1]));
    return new Response("text");
  }, {}, async (_server, base) => {
    const typeOf = async (path: string) => {
      const response = await fetch(`${base}${path}`);
      await response.arrayBuffer();
      return response.headers.get("content-type");
    };
    assert.match((await typeOf("/")) ?? "", /^text\/plain;charset=utf-8$/i);
    assert.equal(await typeOf("/typed"), "application/json");
    assert.equal(await typeOf("/bytes"), runtimeName === "bun" ? "application/octet-stream" : null, "as Bun.serve / Deno.serve send bytes");
  }));

test("serve: Response stays the platform's: instanceof holds for fetch() results and statics", async () => {
  const fetched = await fetch("data:text/plain,hi");
  await fetched.text();
  assert.ok(fetched instanceof Response);
  assert.ok(Response.json({ a: 1 }) instanceof Response);
  assert.ok(new Response("x") instanceof Response);
  assert.equal(Response.name, "Response");
  assert.equal(Object.prototype.toString.call(new Response("x")), "[object Response]");
  const cloned = new Response("again").clone();
  assert.equal(await cloned.text(), "again");
});

test("serve: headers set on a Response after it was made are sent", () =>
  withServer(() => {
    const response = new Response("late headers");
    response.headers.set("x-late", "yes");
    return response;
  }, {}, async (_server, base) => {
    const response = await fetch(`${base}/`);
    assert.equal(response.headers.get("x-late"), "yes");
    assert.equal(await response.text(), "late headers");
  }));

test("serve: a burst of more pipelined requests than maxPipelinedRequests is answered in full", () =>
  withServer((request) => new Response(new URL(request.url).pathname), { limits: { maxPipelinedRequests: 16 } }, async (server) => {
    let burst = "";
    for (let i = 0; i < 300; i++) burst += `GET /r${i} HTTP/1.1\r\nHost: a\r\n\r\n`;
    await withClient(server.port, async (client) => {
      await client.write(burst);
      const text = await client.until(() => client.responses() === 300);
      assert.ok(text.endsWith("/r299"));
    });
  }));

test("serve: options that are neither an object nor a handler are refused", () => {
  // deno-lint-ignore no-explicit-any
  assert.throws(() => serve(null as any), /options must be an object or a handler function, got null/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => serve("app" as any), /options must be an object or a handler function, got string/);
});

/** The value of a TCP option on every accepted socket of this process whose local port is `port`. */
function acceptedSocketOption(port: number, level: number, name: number): number[] {
  const SO_ACCEPTCONN = 30;
  const scratch = new Uint8Array(128);
  const value = new Uint8Array(4);
  const read = (fd: number, optionLevel: number, optionName: number) =>
    lib.rp_getsockopt_int(fd, optionLevel, optionName, value) < 0 ? -1 : new DataView(value.buffer).getInt32(0, true);
  const values: number[] = [];
  for (const { fd, target } of openFds()) {
    if (!target.startsWith("socket:") || lib.rp_getsockname(fd, scratch) < 0) continue;
    const local = decodeSockaddr(scratch, 128);
    if (local.family === "unix" || local.port !== port || read(fd, SOL_SOCKET, SO_ACCEPTCONN) !== 0) continue;
    values.push(read(fd, level, name));
  }
  return values;
}

test("serve: accepted connections have Nagle off, so a streamed chunk never waits for the client's ACK", () =>
  withServer(() => new Response("ok"), {}, async (server) => {
    await withClient(server.port, async (client) => {
      await client.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      await client.until(() => client.responses() === 1);
      assert.deepEqual(acceptedSocketOption(server.port, IPPROTO_TCP, TCP_NODELAY), [1]);
    });
  }));

// A GET or HEAD that carries a body: the handler can read it (or leave it), and the next pipelined request is served.
/** Answers with what the handler saw: method, path and body (also as a header, which HEAD keeps). */
async function echoBody(request: Request): Promise<Response> {
  const body = await request.text();
  const seen = `${request.method} ${new URL(request.url).pathname} [${body}]`;
  return new Response(seen, { headers: { "x-seen": seen } });
}

/** "<status> <x-seen header>" of every response head in a raw exchange, in order. */
function answers(text: string): string[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n((?:[^\r]+\r\n)*)\r\n/g)]
    .map(([, status, head]) => `${status} ${/^x-seen: ([^\r]*)/im.exec(head)?.[1] ?? "-"}`);
}

const bodies: Record<string, { request: string; seen: string }> = {
  "GET with Content-Length: 5": { request: "GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", seen: "GET /a [hello]" },
  "GET with a chunked body": {
    request: "GET /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    seen: "GET /b [hello world]",
  },
  "HEAD with a body": { request: "HEAD /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", seen: "HEAD /c [abc]" },
};

for (const [name, { request, seen }] of Object.entries(bodies)) {
  test(`serve: ${name} is answered 200 with its body readable, and the next pipelined request too`, () =>
    withServer(echoBody, {}, (server) =>
      withClient(server.port, async (client) => {
        await client.write(`${request}GET /next HTTP/1.1\r\nHost: x\r\n\r\n`);
        const text = await client.until((t) => answers(t).length >= 2);
        assert.deepEqual(answers(text), [`200 ${seen}`, "200 GET /next []"]);
      })));
}

test("serve: a GET body is read through clone(), body, arrayBuffer() and json(), or left unread and discarded", async () => {
  const handler = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    if (path === "/clone") {
      const copy = request.clone();
      return new Response(`${await copy.text()}|${await request.text()}|${request.bodyUsed}`);
    }
    if (path === "/stream") {
      const reader = request.body!.getReader();
      let text = "";
      for (let read = await reader.read(); !read.done; read = await reader.read()) text += new TextDecoder().decode(read.value);
      return new Response(`${text}|${request.bodyUsed}`);
    }
    if (path === "/bytes") return new Response(String(new Uint8Array(await request.arrayBuffer()).length));
    if (path === "/json") return new Response(String((await request.json()).n));
    void request.signal; // materialises the native Request without touching the body
    return new Response(`unread ${request.headers.get("content-length")}`);
  };
  await withServer(handler, {}, (server) =>
    withClient(server.port, async (client) => {
      const get = (path: string, body: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      await client.write(get("/clone", "twice") + get("/stream", "flow") + get("/bytes", "1234567") + get("/json", '{"n":42}') + get("/skip", "ignored"));
      const text = await client.until((t) => client.responses() >= 5 && t.endsWith("unread 7"));
      const payloads = text.split(/HTTP\/1\.1 /).slice(1).map((r) => `${r.slice(0, 3)} ${r.slice(r.indexOf("\r\n\r\n") + 4)}`);
      assert.deepEqual(payloads, ["200 twice|twice|true", "200 flow|true", "200 7", "200 42", "200 unread 7"]);
    }));
});

test("serve: requestIP finds the connection from the request; foreign objects get null", async () => {
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

test("serve: requestIP still works after the handler awaited", async () => {
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

test("serve: repeated heads on a connection are reused only when every byte is the same", () =>
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

const FAST_RESPONSE = fileURLToPath(new URL("../fixtures/fast-response.ts", import.meta.url));

/** The fixture's JSON line, run in a child of this runtime with `env` added. */
function fastResponseReport(env: Record<string, string>): Record<string, unknown> {
  const args = runtimeName === "deno" ? ["run", "-A", "--no-check", FAST_RESPONSE] : [FAST_RESPONSE];
  const child = spawnSync(process.execPath, args, { env: { ...process.env, ...env }, encoding: "utf8", timeout: 30_000 });
  assert.equal(child.status, 0, `fixture exited ${child.status}: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split("\n").pop()!);
}

test("serve: FastResponse is the global Response on Bun unless REUSEPORT_NATIVE_RESPONSE=1, and serves either way", () => {
  const common = { fast: "fast", bytes: "hi", name: "Response", fetchedIsResponse: true };
  if (runtimeName === "deno") {
    assert.deepEqual(fastResponseReport({}), { globalIsFast: true, globalIsNative: true, ...common }); // Deno's own, untouched
    return;
  }
  assert.deepEqual(fastResponseReport({}), { globalIsFast: true, globalIsNative: false, ...common });
  assert.deepEqual(fastResponseReport({ REUSEPORT_NATIVE_RESPONSE: "1" }), { globalIsFast: false, globalIsNative: true, ...common });
}, { timeoutMs: 60_000 });
