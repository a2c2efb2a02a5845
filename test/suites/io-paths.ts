// The two read paths of the HTTP engine (REUSEPORT_IO): io_uring multishot recvs into provided buffers,
// and recv() on edge-triggered EPOLLIN. The whole suite runs on the default path (io_uring where the
// kernel allows it; scripts/test.mjs runs Bun's suite once more with REUSEPORT_IO=epoll); these tests
// pin each path explicitly and the cases where the ring's mechanics differ (buffers running out, a
// paused read whose bytes are already in flight, a FIN arriving while reading is paused).
import process from "node:process";
import { openFds } from "../_net.ts";
import { runtimeName } from "../_runtime.ts";
import { connect } from "node:net";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { assert, test } from "../_harness.ts";
import { bodyOf, RawClient, startServer, statusOf, withClient, withServer } from "../_http.ts";
import { ConfigError } from "../../src/errors.ts";
import { probeRing } from "../../src/net/poll-loop.ts";
import type { Server } from "../../src/http/server.ts";

type Io = "io_uring" | "epoll";

const paths: Io[] = probeRing() === 0 ? ["io_uring", "epoll"] : ["epoll"];

/** Runs body with the environment variable `name` set to value, then restores it. */
function withEnv<T>(name: string, value: string, body: () => T): T {
  const before = process.env[name];
  process.env[name] = value;
  try {
    return body();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}

/** Starts a server with REUSEPORT_IO=io (read when the engine starts). */
function startWith(io: string, fetch: (request: Request) => Response | Promise<Response>): Server {
  return withEnv("REUSEPORT_IO", io, () => startServer(fetch));
}

/**
 * The process's epoll and io_uring fds, and on Deno its eventfds and pipes: what an engine and its wake reader
 * open. (Bun's reader of the wake fd holds dups of it that Bun closes later, some only when collected.)
 */
const POLLING_FD = runtimeName === "bun" ? /^anon_inode:\[(io_uring|eventpoll)\]$/ : /^anon_inode:\[(io_uring|eventfd|eventpoll)\]$|^pipe$/;
function pollingFds(): string[] {
  return openFds()
    .map(({ target }) => target.replace(/:\[\d+\]$/, ""))
    .filter((target) => POLLING_FD.test(target))
    .sort();
}

async function echoLength(request: Request): Promise<Response> {
  const body = await request.arrayBuffer();
  return new Response(`${request.method} ${body.byteLength}`);
}

test("io: an unknown REUSEPORT_IO is a ConfigError that names the variable", () => {
  assert.throws(() => startWith("uring", echoLength), (error: unknown) =>
    error instanceof ConfigError && /REUSEPORT_IO must be "auto", "epoll" or "io_uring", got "uring"/.test(String(error)));
});

if (paths.includes("io_uring")) {
  test("io: a bad REUSEPORT_TICK_US is a ConfigError that names the variable", () => {
    for (const bad of ["-1", "1.5", "2000000", "soon"]) {
      withEnv("REUSEPORT_TICK_US", bad, () =>
        assert.throws(() => startWith("io_uring", echoLength), (error: unknown) =>
          error instanceof ConfigError && /REUSEPORT_TICK_US must be an integer from 0 to 1000000/.test(String(error)) &&
          String(error).includes(JSON.stringify(bad))));
    }
  });
}

for (const io of paths) {
  test(`io: ${io} answers pipelined requests, a body larger than a read, and a request followed by FIN`, async () => {
    const server = startWith(io, echoLength);
    try {
      assert.equal(server.io, io);
      const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
      const pipelined = await withClient(server.port, async (client) => {
        await client.write(get.repeat(50));
        return client.until(() => client.responses() === 50);
      });
      assert.equal((pipelined.match(/GET 0/g) ?? []).length, 50);
      const size = 300_000; // more than one 16 KiB ring buffer and more than the epoll read buffer
      const post = await withClient(server.port, async (client) => {
        await client.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
        await client.write(new Uint8Array(size).fill(97));
        return client.until((text) => text.includes(`POST ${size}`));
      });
      assert.equal(statusOf(post), 200);
      const fin = await withClient(server.port, async (client) => {
        await client.end(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc`);
        return client.closedByPeer();
      });
      assert.match(fin, /POST 3$/);
    } finally {
      await server.stop(false);
    }
  });

  test(`io: ${io} answers every client when more bytes arrive at once than the ring has buffers`, async () => {
    const server = startWith(io, echoLength);
    const clients: RawClient[] = [];
    try {
      const size = 200_000; // 40 x 200 KB: more than the ring's 256 x 16 KiB, so recvs end with ENOBUFS
      for (let i = 0; i < 40; i++) clients.push(await RawClient.open(server.port));
      const body = new Uint8Array(size).fill(98);
      await Promise.all(clients.map((client) =>
        client.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`).then(() => client.write(body))
      ));
      const answers = await Promise.all(clients.map((client) => client.until((text) => text.includes(`POST ${size}`), 10_000)));
      for (const text of answers) assert.equal(statusOf(text), 200);
      assert.equal(server.stats().readErrors, 0);
    } finally {
      for (const client of clients) client.close();
      await server.stop(false);
    }
  });

  test(`io: ${io} keeps a slow handler's pipelined requests and the client's FIN that came meanwhile`, async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    const server = startWith(io, async (request) => {
      if (calls++ === 0) await gate; // the first request holds the connection while the rest arrive
      return new Response(new URL(request.url).pathname);
    });
    try {
      const text = await withClient(server.port, async (client) => {
        let requests = "";
        for (let i = 0; i < 200; i++) requests += `GET /r${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
        await client.end(requests); // ~6 KB of heads then FIN, sent while the first handler waits
        release();
        return client.closedByPeer();
      });
      const paths = [...text.matchAll(/\r\n\r\n(\/r\d+)/g)].map((match) => match[1]);
      assert.equal(paths.length, 200);
      assert.deepEqual(paths.slice(0, 3), ["/r0", "/r1", "/r2"]);
      assert.equal(paths[199], "/r199");
    } finally {
      await server.stop(false);
    }
  });
}

for (const io of paths) {
  test(`io: ${io}: a server that finished has closed its epoll, ring, eventfd and wake fds`, async () => {
    const cycle = async () => {
      const server = startWith(io, () => new Response("ok"));
      await withClient(server.port, async (client) => {
        await client.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        return client.until(() => client.responses() === 1);
      });
      await server.stop(false);
      await server.finished;
    };
    await cycle(); // the runtime's own lazily made fds come into being here
    const before = pollingFds();
    await cycle();
    await cycle();
    assert.deepEqual(pollingFds(), before);
  });
}

/**
 * Opens a connection, sends `count` pipelined GETs for /0 .. /count-1 while not reading, then reads until
 * `count` responses of `responseBytes` each have arrived (bounded by timeoutMs); returns the bytes.
 */
function pipelineWithoutReading(port: number, count: number, responseBytes: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.pause(); // the server's sends back up until we resume: its batch sees short writes
      let requests = "";
      for (let i = 0; i < count; i++) requests += `GET /${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
      socket.write(requests, () => socket.resume());
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out: ${received} of ${count * responseBytes} bytes`));
    }, timeoutMs);
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.byteLength;
      if (received < count * responseBytes) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks));
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

for (const io of paths) {
  test(`io: ${io}: responses the sockets cannot take at once reach four clients whole and in order`, async () => {
    const bodyBytes = 50_000;
    const server = startWith(io, (request) => {
      const index = new URL(request.url).pathname.slice(1).padStart(3, "0");
      return new Response(`<${index}>`.padEnd(bodyBytes, "x"));
    });
    try {
      const probe = await withClient(server.port, async (client) => {
        await client.write("GET /0 HTTP/1.1\r\nHost: x\r\n\r\n");
        return client.until((text) => text.endsWith("x".repeat(100)));
      });
      const responseBytes = probe.length; // every response has the same head length and body size
      const count = 200; // 10 MB per client: more than loopback socket buffers hold
      const all = await Promise.all([0, 1, 2, 3].map(() => pipelineWithoutReading(server.port, count, responseBytes)));
      for (const bytes of all) {
        assert.equal(bytes.byteLength, count * responseBytes);
        const text = bytes.toString("latin1");
        const order = [...text.matchAll(/<(\d{3})>/g)].map((match) => Number(match[1]));
        assert.deepEqual(order, Array.from({ length: count }, (_, i) => i));
        assert.equal(text.split("HTTP/1.1 200 OK\r\n").length - 1, count);
      }
      assert.equal(server.stats().writeErrors, 0);
    } finally {
      await server.stop(false);
    }
  }, { timeoutMs: 30_000 });
}

const LOAD = fileURLToPath(new URL("../fixtures/keepalive-load.mjs", import.meta.url));

/** The server's engine, for what only it knows: sleeps in the ring, pending JS work. */
function engineOf(server: Server): { loop: { sleeps: number }; asyncPending: number } {
  return (server as unknown as { engine: { loop: { sleeps: number }; asyncPending: number } }).engine;
}

/** Runs test/fixtures/keepalive-load.mjs against port (in another process, so our loop is the only server
 * work on this thread); resolves with the number of responses it got. */
function loadFromAnotherProcess(port: number, connections: number, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("node", [LOAD, String(port), String(connections), String(ms)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (chunk) => (out += chunk));
    child.stderr!.on("data", (chunk) => (out += chunk));
    child.on("error", reject);
    child.on("exit", (code) => {
      const match = /responses (\d+)/.exec(out);
      if (code === 0 && match) resolve(Number(match[1]));
      else reject(new Error(`load exited ${code}: ${out}`));
    });
  });
}

for (const io of paths) {
  test(`io: ${io}: under keep-alive load from another process, timers keep firing during and after it`, async () => {
    const server = startWith(io, () => new Response("Hello"));
    let ticks = 0;
    let tickWaiter: { ticks: number; resolve: () => void } | null = null;
    const interval = setInterval(() => {
      ticks++;
      if (tickWaiter !== null && ticks >= tickWaiter.ticks) tickWaiter.resolve();
    }, 5);
    try {
      const responses = await loadFromAnotherProcess(server.port, 8, 400);
      const during = ticks;
      assert.ok(responses > 500, `only ${responses} responses in 400 ms`);
      // A 5 ms interval over the load (400 ms plus the child's start) fires ~80+ times; a loop that kept
      // the thread (sleeping in the ring with nothing to end the sleep) would starve it.
      assert.ok(during >= 20, `the interval fired ${during} times during the load`);
      // After the load the loop must hand the thread back by itself (the ring's tick ends its sleep): the
      // interval's own ticks are the event (the test's timeout fails it if they stop).
      await new Promise<void>((resolve) => (tickWaiter = { ticks: during + 10, resolve }));
      if (io === "io_uring") {
        assert.ok(engineOf(server).loop.sleeps > 0, "the loop slept in the ring between busy rounds");
      }
    } finally {
      clearInterval(interval);
      await server.stop(false);
    }
  }, { timeoutMs: 20_000 });
}

if (paths.includes("io_uring")) {
  test("io: io_uring: with a second server in the same thread, neither sleeps in its ring", async () => {
    const loaded = startWith("io_uring", () => new Response("Hello"));
    const other = startWith("io_uring", () => new Response("other"));
    try {
      // Without the ring's sleeps every round waits for the runtime's wake, which on some kernels takes
      // milliseconds (the ring's eventfd is signalled late); what this checks is that none slept.
      const responses = await loadFromAnotherProcess(loaded.port, 8, 300);
      assert.ok(responses > 50, `only ${responses} responses`);
      assert.equal(engineOf(loaded).loop.sleeps, 0, "a sleep in one ring would keep the other server waiting");
      assert.equal(await (await fetch(`http://127.0.0.1:${other.port}/`)).text(), "other");
    } finally {
      await other.stop(false);
      await loaded.stop(false);
    }
  }, { timeoutMs: 20_000 });
}

test("io: pending JS work (promises, streamed bodies both ways) is counted and settles back to none", async () => {
  let partialSettled!: () => void;
  const partial = new Promise<void>((resolve) => (partialSettled = resolve));
  const server = startServer(async (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/sync-ignore-body") return new Response("ignored");
    if (path === "/throw") throw new Error("boom");
    if (path === "/echo") return new Response(request.body);
    if (path === "/stream") {
      let i = 0;
      return new Response(new ReadableStream({ pull: (c) => (i++ < 3 ? c.enqueue(new TextEncoder().encode("x")) : c.close()) }));
    }
    if (path === "/partial") { // the client leaves mid-body: reading it fails once the server sees the close
      try {
        await request.arrayBuffer();
      } finally {
        partialSettled();
      }
    }
    return new Response(`read ${(await request.arrayBuffer()).byteLength}`);
  }, { error: async () => new Response("handled", { status: 500 }) });
  const engine = engineOf(server);
  const base = `http://127.0.0.1:${server.port}`;
  const originalError = console.error;
  console.error = () => {};
  try {
    assert.equal(await (await fetch(`${base}/read`, { method: "POST", body: "12345" })).text(), "read 5");
    assert.equal(await (await fetch(`${base}/sync-ignore-body`, { method: "POST", body: "x".repeat(100_000) })).text(), "ignored");
    assert.equal(await (await fetch(`${base}/throw`)).text(), "handled");
    assert.equal(await (await fetch(`${base}/echo`, { method: "POST", body: "echoed" })).text(), "echoed");
    assert.equal(await (await fetch(`${base}/stream`)).text(), "xxx");
    // A client that leaves in the middle of a body it announced.
    await withClient(server.port, async (client) => {
      await client.write("POST /partial HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial");
    });
    await partial; // the handler's read of the cut body has failed: what is left to settle are promise jobs
    await new Promise((resolve) => setTimeout(resolve, 0)); // a macrotask: every promise job queued before it has run
    assert.equal(engine.asyncPending, 0);
  } finally {
    console.error = originalError;
    await server.stop(false);
  }
});

test("io: a client's FIN right behind its requests (edge-triggered reads) still gets every answer", () =>
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
