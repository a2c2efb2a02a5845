// Slow and hostile clients against one server in a child process (test/fixtures/slow-server.ts), so its RSS
// is its own: pipelined floods that never read, a flood of one-byte body chunks, a body that stops, a
// response nobody reads, and a slow but steady reader. Memory, cuts and counters are checked.
import { connect, type Socket } from "node:net";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { assert, test } from "../_harness.ts";
import { ClusterChild, percentile } from "../_cluster.ts";
import { rawExchange, withClient } from "../_http.ts";
import { ConfigError, LIMITS_DEFAULT, serve, type ClusterStats, type Limits } from "../../src/index.ts";

const FIXTURE = fileURLToPath(new URL("../fixtures/slow-server.ts", import.meta.url));
const MIB = 1024 * 1024;
const MB = 1_000_000;
const CRASH = /panic|Segmentation fault|SIGSEGV/i;

type Stats = Record<string, number>;

/** The fixture server: its counters, its RSS, and a checked stop. */
class SlowServer {
  constructor(readonly child: ClusterChild) {}
  get port(): number {
    return this.child.port;
  }
  async stats(): Promise<Stats> {
    return (await this.child.stats()) as unknown as Stats;
  }
  /** ClusterChild.statsUntil over this fixture's counters: throws with the last ones if predicate does not hold. */
  async statsUntil(predicate: (s: Stats) => boolean, timeoutMs = 10_000): Promise<Stats> {
    const holds = predicate as unknown as (s: ClusterStats) => boolean;
    return (await this.child.statsUntil(holds, timeoutMs)) as unknown as Stats;
  }
  /** VmRSS from /proc/<pid>/status, in bytes. */
  rssBytes(): number {
    const status = readFileSync(`/proc/${this.child.child.pid}/status`, "utf8");
    return Number(/^VmRSS:\s*(\d+) kB/m.exec(status)![1]) * 1024;
  }
  command(text: string): void {
    this.child.command(text);
  }
}

/** Samples the server's RSS every few ms (a measurement, not a synchronisation) and keeps the peak. */
class RssPeak {
  peak: number;
  private readonly timer: ReturnType<typeof setInterval>;
  constructor(private readonly server: SlowServer) {
    this.peak = server.rssBytes();
    this.timer = setInterval(() => this.sample(), 5);
  }
  sample(): void {
    try {
      this.peak = Math.max(this.peak, this.server.rssBytes());
    } catch {
      // the process is gone: the exit check reports it
    }
  }
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}

/** Runs body against a fresh fixture server; then stops it and checks it exited 0 with no crash in its output. */
async function withSlowServer(limits: Partial<Limits>, body: (server: SlowServer) => Promise<void>): Promise<void> {
  const child = await ClusterChild.start({ limits }, FIXTURE);
  const server = new SlowServer(child);
  let failure: unknown = null;
  try {
    await body(server);
  } catch (error) {
    failure = error;
  }
  child.command("stop");
  const killer = setTimeout(() => child.child.kill("SIGKILL"), 10_000);
  const code = await child.exited;
  clearTimeout(killer);
  if (failure !== null) throw failure;
  assert.equal(code, 0, `server exit code; stderr: ${child.stderr.slice(-2000)}`);
  assert.doesNotMatch(child.stderr, CRASH);
}

/** A connection that never reads: paused before anything arrives, so the kernel's buffers fill and stay full. */
function openNeverReading(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.off("error", reject);
      socket.on("error", () => {}); // the server may cut it
      resolve(socket);
    });
    socket.pause();
    socket.once("error", reject);
  });
}

/** `count` sequential keep-alive requests for /small on one connection; the latency of each in ms. */
function probeLatencies(port: number, count: number): Promise<number[]> {
  return withClient(port, async (client) => {
    const latencies: number[] = [];
    for (let i = 1; i <= count; i++) {
      const started = performance.now();
      await client.write("GET /small HTTP/1.1\r\nHost: a\r\n\r\n");
      await client.until((text) => text.endsWith("ok") && client.responses() >= i);
      latencies.push(performance.now() - started);
    }
    assert.equal(client.responses(), count);
    return latencies;
  });
}

/** Serves what the tests will ask for, read whole (on connections the server closes), before a baseline is taken. */
async function warmUp(server: SlowServer): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const text = await rawExchange(server.port, "GET /1mb HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert.ok(text.endsWith("a".repeat(1000)) && text.length > MIB, "a whole 1 MiB response");
  }
  await probeLatencies(server.port, 50);
}

const PIPELINED = 1000;

/** `clients` connections each pipeline 1000 GET /1mb and never read, while another client is served. */
async function pipelinedFlood(clients: number): Promise<void> {
  await withSlowServer({}, async (server) => {
    await warmUp(server);
    const before = await server.stats();
    const baseline = server.rssBytes();
    const rss = new RssPeak(server);
    const sockets = await Promise.all(Array.from({ length: clients }, () => openNeverReading(server.port)));
    try {
      const flood = "GET /1mb HTTP/1.1\r\nHost: a\r\n\r\n".repeat(PIPELINED);
      for (const socket of sockets) socket.write(flood);
      // Until the server did what it will with the floods: paused each one (or, unbounded, answered them all).
      const settled = await server.statsUntil(
        (s) => s.outputPauses >= clients || s.requests - before.requests >= clients * PIPELINED,
        30_000,
      );
      const latencies = await probeLatencies(server.port, 200);
      const after = await server.stats();
      const peak = rss.stop();
      const growth = peak - baseline;
      const p99 = percentile(latencies, 99);
      console.log(
        `slow: ${clients} never-reading pipelining client(s): RSS +${(growth / MB).toFixed(1)} MB ` +
          `(baseline ${(baseline / MB).toFixed(1)} MB), other client p99 ${p99.toFixed(1)} ms, ` +
          `answered ${settled.requests - before.requests} of ${clients * PIPELINED}, outputPauses ${after.outputPauses}`,
      );
      assert.ok(growth < 64 * MB, `server RSS grew ${(growth / MB).toFixed(1)} MB`);
      assert.ok(p99 < 100, `other client's p99 ${p99.toFixed(1)} ms`);
      assert.ok(after.outputPauses >= clients, `outputPauses ${after.outputPauses}`);
      assert.ok(after.requests - before.requests < clients * PIPELINED, "the floods wait for their output to drain");
    } finally {
      rss.stop();
      for (const socket of sockets) socket.destroy();
    }
    // The cut connections are closed, and the server still answers.
    const closed = await server.statsUntil((s) => s.active === 0);
    assert.equal(closed.active, 0);
    assert.equal((await probeLatencies(server.port, 1)).length, 1);
  });
}

test("slow: one client pipelining 1000 GET /1mb and never reading: server RSS flat, others served", () =>
  pipelinedFlood(1), { timeoutMs: 90_000 });

test("slow: four clients pipelining 1000 GET /1mb each and never reading: server RSS flat, others served", () =>
  pipelinedFlood(4), { timeoutMs: 120_000 });

const ONE_BYTE_CHUNKS = 250_000;

/** A chunked POST /hold of `count` one-byte chunks; the handler reads it once released; returns the response. */
async function holdChunks(server: SlowServer, count: number, whileHeld: (total: number) => Promise<void>): Promise<string> {
  return await withClient(server.port, async (client) => {
    const head = "POST /hold HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    const body = "1\r\nx\r\n".repeat(count) + "0\r\n\r\n";
    void client.write(head + body).catch(() => {});
    await whileHeld(head.length + body.length);
    server.command("release");
    return await client.until((t) => t.endsWith(`\r\n\r\n${count}`), 20_000);
  });
}

test("slow: 250,000 one-byte body chunks to a handler that does not read them cost bounded memory", () =>
  withSlowServer({ bodyTimeoutMs: 300 }, async (server) => {
    await probeLatencies(server.port, 50);
    // The chunked path once, small, so the baseline holds its code and buffers.
    const warm = await server.stats();
    await holdChunks(server, 20_000, async () => void await server.statsUntil((s) => s.requests > warm.requests));
    for (let i = 0; i < 100; i++) await server.stats(); // and the stats round trips the wait below makes
    const baseline = server.rssBytes();
    const rss = new RssPeak(server);
    let heldGrowth = 0;
    try {
      const text = await holdChunks(server, ONE_BYTE_CHUNKS, async (total) => {
        // Until the server read it all, or stopped reading (bytesIn stands still over many round trips), and
        // for longer than bodyTimeoutMs: a body the handler leaves unread is not the client's delay.
        const started = Date.now();
        let last = -1;
        let still = 0;
        let held = await server.stats();
        for (let i = 0; i < 1000 && held.bytesIn - warm.bytesIn < total && (still < 20 || Date.now() - started < 1000); i++) {
          await new Promise((resolve) => setTimeout(resolve, 10)); // paces the round trips, which cost memory too
          held = await server.stats();
          still = held.bytesIn === last ? still + 1 : 0;
          last = held.bytesIn;
        }
        rss.sample();
        heldGrowth = rss.peak - baseline;
        console.log(`slow: one-byte chunks held: read ${held.bytesIn - warm.bytesIn} of ${total} bytes, RSS +${(heldGrowth / MB).toFixed(1)} MB`);
        assert.equal(held.bodyTimeouts, 0, "a body the handler does not read is not timed out");
      });
      assert.match(text, /^HTTP\/1\.1 200 /);
    } finally {
      rss.stop();
    }
    const growth = rss.peak - baseline;
    console.log(`slow: ${ONE_BYTE_CHUNKS} one-byte chunks, handler not reading: RSS +${(growth / MB).toFixed(1)} MB`);
    assert.ok(heldGrowth < 16 * MB, `server RSS grew ${(heldGrowth / MB).toFixed(1)} MB while the body was held`);
    assert.ok(growth < 32 * MB, `server RSS grew ${(growth / MB).toFixed(1)} MB`);
  }), { timeoutMs: 60_000 });

test("slow: a body that stops (Content-Length 100, 3 bytes sent) gets 408 after bodyTimeoutMs, counted", () =>
  withSlowServer({ bodyTimeoutMs: 300 }, async (server) => {
    await withClient(server.port, async (client) => {
      const started = Date.now();
      await client.write("POST /read-body HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc");
      const text = await client.closedByPeer(5000);
      const elapsed = Date.now() - started;
      assert.match(text, /^HTTP\/1\.1 408 /);
      assert.match(text, /Connection: close\r\n/i);
      assert.ok(elapsed >= 250, `408 after ${elapsed} ms, before bodyTimeoutMs`);
    });
    // A synchronous handler that ignores the body: its answer goes out, then the rest of the body is
    // awaited (to discard it) for no longer than bodyTimeoutMs.
    await withClient(server.port, async (client) => {
      await client.write("POST /ignore-body HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc");
      const text = await client.closedByPeer(5000);
      assert.match(text, /^HTTP\/1\.1 200 [^]*ignored$/);
      assert.equal(client.responses(), 1);
    });
    const stats = await server.statsUntil((s) => s.active === 0);
    assert.equal(stats.bodyTimeouts, 2);
    assert.equal(stats.active, 0);
  }));

test("slow: a response nobody reads (Connection: close, HTTP/1.0, keep-alive, streamed) is cut after sendTimeoutMs, counted", () =>
  withSlowServer({ sendTimeoutMs: 300 }, async (server) => {
    const requests = [
      "GET /16mb HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
      "GET /16mb HTTP/1.0\r\n\r\n",
      "GET /16mb HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n",
    ];
    const sockets = await Promise.all(requests.map(() => openNeverReading(server.port)));
    try {
      const started = Date.now();
      requests.forEach((request, i) => sockets[i].write(request));
      await server.statsUntil((s) => s.requests === requests.length);
      const stats = await server.statsUntil((s) => s.active === 0, 5000);
      const elapsed = Date.now() - started;
      assert.equal(stats.active, 0, "every unread response was cut");
      assert.equal(stats.sendTimeouts, requests.length);
      assert.ok(elapsed >= 250, `cut after ${elapsed} ms, before sendTimeoutMs`);
      assert.ok(stats.bytesOut < 3 * 16 * MIB, "the cut responses were not delivered");
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  }));

test("slow: pipelined requests then FIN (the client still reads): every one is answered, then the close", () =>
  withSlowServer({}, async (server) => {
    await withClient(server.port, async (client) => {
      const count = 20;
      await client.end("GET /1mb HTTP/1.1\r\nHost: a\r\n\r\n".repeat(count));
      await client.closedByPeer(20_000);
      assert.equal(client.responses(), count);
      assert.ok(client.bytes.byteLength > count * MIB, `received ${client.bytes.byteLength} bytes`);
    });
    const stats = await server.statsUntil((s) => s.active === 0);
    assert.equal(stats.requests, 20);
    assert.ok(stats.outputPauses >= 1, "the output backlog paused the pipelined requests at least once");
  }), { timeoutMs: 60_000 });

// 16 MiB: the kernel's socket buffers take 4 MiB and more (tcp_wmem's 4 MiB, the reader's tcp_rmem), so a
// smaller response would leave the server with nothing pending.
test("slow: a 16 MiB response read slowly but steadily outlasts idleTimeoutMs and arrives whole", () =>
  withSlowServer({ idleTimeoutMs: 150, sendTimeoutMs: 2000 }, async (server) => {
    const socket = await openNeverReading(server.port);
    const expected = 16 * MIB;
    const chunks: Buffer[] = [];
    let received = 0;
    let allowance = 0;
    let closed = false;
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.byteLength;
      if (received >= allowance) socket.pause();
    });
    socket.on("close", () => (closed = true));
    try {
      socket.write("GET /16mb HTTP/1.1\r\nHost: a\r\n\r\n");
      const started = Date.now();
      // 128 KiB more every 20 ms: about 6.5 MB/s, so the transfer takes many idle timeouts.
      for (let tick = 0; tick < 5000 && !closed && received < expected + 200; tick++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        allowance += 128 * 1024;
        if (received < allowance) socket.resume();
      }
      const elapsed = Date.now() - started;
      const bytes = Buffer.concat(chunks);
      const body = bytes.subarray(bytes.indexOf("\r\n\r\n") + 4);
      console.log(`slow: 16 MiB read slowly: ${body.byteLength} bytes in ${elapsed} ms (idleTimeoutMs 150)`);
      assert.equal(body.byteLength, expected, `delivered ${body.byteLength} of ${expected}`);
      assert.ok(body.every((byte) => byte === 0x62), "the bytes are the response's");
      assert.ok(elapsed > 150, "the transfer outlasted idleTimeoutMs");
      const stats = await server.stats();
      assert.equal(stats.sendTimeouts, 0);
    } finally {
      socket.destroy();
    }
  }), { timeoutMs: 60_000 });

test("slow: maxPendingOutputBytes, sendTimeoutMs and bodyTimeoutMs are positive integers, else a ConfigError", () => {
  const fetch = () => new Response("x");
  for (const name of ["maxPendingOutputBytes", "sendTimeoutMs", "bodyTimeoutMs"] as const) {
    assert.ok(Number.isInteger(LIMITS_DEFAULT[name]) && LIMITS_DEFAULT[name] > 0, `${name} has a default`);
    for (const value of [0, -1, 1.5, "100", null, Number.NaN]) {
      assert.throws(
        () => serve({ fetch, hostname: "127.0.0.1", port: 0, limits: { [name]: value } as unknown as Partial<Limits> }),
        (e: unknown) => e instanceof ConfigError && new RegExp(`limits\\.${name} must be a positive integer`).test(e.message),
        `${name}: ${String(value)}`,
      );
    }
  }
});
