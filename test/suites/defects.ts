// Smaller defects (issue #12): GET/HEAD requests that carry a body, and the kernel's accept-queue
// drops in a cluster's stats().
import { assert, test } from "../_harness.ts";
import { withClient, withServer } from "../_http.ts";
import { closeAll, connectMany } from "../_net.ts";
import { ClusterChild } from "../_cluster.ts";
import { Listener } from "../../src/net/listener.ts";
import { kernelListenStats } from "../../src/cluster/cluster-stats.ts";

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
  test(`defects: ${name} is answered 200 with its body readable, and the next pipelined request too`, () =>
    withServer(echoBody, {}, (server) =>
      withClient(server.port, async (client) => {
        await client.write(`${request}GET /next HTTP/1.1\r\nHost: x\r\n\r\n`);
        const text = await client.until((t) => answers(t).length >= 2);
        assert.deepEqual(answers(text), [`200 ${seen}`, "200 GET /next []"]);
      })));
}

test("defects: a GET body is read through clone(), body, arrayBuffer() and json(), or left unread and discarded", async () => {
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

test("defects: a listener with backlog 1 that never accepts: ListenOverflows and ListenDrops grow, its accept queue shows full", async () => {
  const listener = Listener.openSync({ hostname: "127.0.0.1", port: 0, backlog: 1 });
  const fds: number[] = [];
  try {
    const before = kernelListenStats(listener.port);
    assert.ok(before, "procfs is readable here");
    assert.equal(before.acceptQueue, 0, "an empty accept queue");
    fds.push(...connectMany(listener.address, 8)); // nonblocking: the queue holds 2, the other SYNs are dropped
    // Loopback handles each SYN within its connect(); the counters are read until they show it (bounded).
    let after = kernelListenStats(listener.port)!;
    for (let round = 0; round < 200 && after.listenOverflows === before.listenOverflows; round++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      after = kernelListenStats(listener.port)!;
    }
    // Host-wide counters: other sockets may add to them, never take away.
    assert.ok(after.listenOverflows - before.listenOverflows >= 1, `ListenOverflows grew: ${before.listenOverflows} -> ${after.listenOverflows}`);
    assert.ok(after.listenDrops - before.listenDrops >= 1, `ListenDrops grew: ${before.listenDrops} -> ${after.listenDrops}`);
    assert.ok(after.acceptQueue >= 1 && after.acceptQueue <= 2, `the accept queue holds what fit: ${after.acceptQueue}`);
  } finally {
    closeAll([listener], fds);
  }
});

test("defects: a cluster's stats() carries the kernel's listen figures (host-wide drops, this port's accept queue)", async () => {
  const cluster = await ClusterChild.start({ workers: 2 });
  try {
    const stats = await cluster.stats();
    const kernel = stats.kernel;
    assert.ok(kernel, `stats().kernel is there: ${JSON.stringify(stats).slice(0, 500)}`);
    for (const name of ["listenOverflows", "listenDrops", "acceptQueue"] as const) {
      assert.ok(Number.isInteger(kernel[name]) && kernel[name] >= 0, `${name} is a count: ${kernel[name]}`);
    }
    assert.equal(kernel.acceptQueue, 0, "nothing waits for accept() on an idle cluster");
    const code = await cluster.stop();
    // Deno's node:child_process reports a child that handled SIGTERM and exited 0 as (null, SIGTERM).
    await cluster.line((l) => l === "finished");
    assert.ok(code === 0 || code === null, `exit code ${code}`);
    assert.ok(!/panic|Segmentation fault/.test(cluster.stderr), cluster.stderr.slice(-2000));
  } finally {
    await cluster.stop(); // a no-op once it has exited
  }
}, { timeoutMs: 40_000 });
