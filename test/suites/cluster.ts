// Cluster: N workers in one reuseport group, steering, supervision, reloads, graceful stop.
// Each test runs test/fixtures/cluster-app.ts as a child (same runtime) and ends it by pid.
import { assert, test } from "../_harness.ts";
import { ClusterChild, listenersOn, load, oneShot, percentile, withCluster } from "../_cluster.ts";
import { isRoot, openFds } from "../_net.ts";
import { crashLine } from "../_load.ts";
import { connect, closeFd } from "../../src/net/socket.ts";
import { allowedCpus, withCpu } from "../../src/os.ts";
import { probeRing } from "../../src/net/poll-loop.ts";
import { ConfigError, serve } from "../../src/index.ts";
import type { ClusterStats } from "../../src/index.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { runtimeName } from "../_runtime.ts";

const accepted = (s: ClusterStats) => s.workers.map((w) => w.counters.accepted);
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** The io_uring instances open in a process (thread workers' rings live in the cluster's own process). */
function ringsOf(pid: number): number {
  return openFds(pid).filter(({ target }) => target === "anon_inode:[io_uring]").length;
}

/** What Server.io should say here: REUSEPORT_IO=epoll, or io_uring where the kernel allows it. */
function expectedIo(): string {
  return process.env.REUSEPORT_IO === "epoll" || probeRing() !== 0 ? "epoll" : "io_uring";
}

for (const workers of [2, 4]) {
  test(`cluster: ${workers} workers share one port, one listener each, all get load`, () =>
    withCluster({ workers }, async (cluster) => {
      assert.equal(listenersOn(cluster.port), workers, "ss -ltn shows one listener per worker");
      assert.equal(cluster.io, expectedIo(), "the primary's io says how its workers read");
      const bodies = await Promise.all(Array.from({ length: 40 * workers }, () => oneShot(cluster.port)));
      assert.ok(bodies.every((b) => b.includes("v1 ")));
      const stats = await cluster.statsUntil((s) => s.totals.requests >= 40 * workers);
      assert.equal(stats.workers.length, workers);
      assert.equal(stats.totals.requests, 40 * workers);
      for (const w of stats.workers) assert.ok(w.counters.accepted > 0, `worker ${w.id} got none: ${accepted(stats)}`);
      // The balance figures are the population coefficient of variation and the largest relative deviation
      // of the accepted counts, computed here independently.
      const counts = accepted(stats);
      const mean = sum(counts) / counts.length;
      const cv = Math.sqrt(sum(counts.map((n) => (n - mean) ** 2)) / counts.length) / mean;
      const deviation = Math.max(...counts.map((n) => Math.abs(n - mean) / mean));
      assert.ok(Math.abs(stats.balance.coefficientOfVariation - cv) < 1e-9, `cv ${stats.balance.coefficientOfVariation}, expected ${cv} for ${counts}`);
      assert.ok(Math.abs(stats.balance.maxDeviation - deviation) < 1e-9, `maxDeviation ${stats.balance.maxDeviation}, expected ${deviation} for ${counts}`);
      assert.equal(stats.balance.alert, deviation > 0.15 && mean >= 400, `alert above 15% deviation, from 400 connections per worker on: ${counts}`);
      assert.ok(stats.workers.every((w) => w.pid > 0 && w.threadId > 0 && w.cpuSeconds >= 0), "pid, thread and CPU time per worker");
      assert.ok(sum(stats.workers.map((w) => w.cpuSeconds)) > 0, "workers used some CPU");
    }), { timeoutMs: 40_000 });
}

test("cluster: balance cpu sends each client CPU's connections to one worker, evenly", () =>
  withCluster({ workers: 2, balance: "cpu" }, async (cluster) => {
    const cpus = allowedCpus().slice(0, 2);
    const target = { family: "IPv4" as const, address: "127.0.0.1", port: cluster.port };
    const landed: number[] = [];
    for (const cpu of cpus) {
      const before = accepted(await cluster.stats());
      const fds = withCpu(cpu, () => Array.from({ length: 100 }, () => connect(target)));
      const after = accepted(await cluster.statsUntil((s) => sum(accepted(s)) >= sum(before) + 100));
      fds.forEach(closeFd);
      const delta = after.map((n, i) => n - before[i]);
      const worker = delta.findIndex((d) => d === 100);
      assert.ok(worker >= 0, `all 100 connections from cpu ${cpu} on one worker: ${delta}`);
      landed.push(worker);
    }
    assert.notEqual(landed[0], landed[1], "the two CPUs map to different workers");
    const before = accepted(await cluster.stats());
    for (let round = 0; round < 20; round++) {
      const fds = withCpu(cpus[round % 2], () => Array.from({ length: 100 }, () => connect(target)));
      await cluster.statsUntil((s) => sum(accepted(s)) >= sum(before) + 100 * (round + 1));
      fds.forEach(closeFd);
    }
    const delta = accepted(await cluster.stats()).map((n, i) => n - before[i]);
    assert.equal(sum(delta), 2000);
    assert.ok(Math.abs(delta[0] - delta[1]) <= 0.05 * 1000, `within 5%: ${delta}`);
  }), { timeoutMs: 40_000, skip: isRoot ? (allowedCpus().length < 2 ? "needs 2 CPUs" : false) : "BPF steering needs root" });

test("cluster: least-connections keeps 64 long-lived connections within 1.10 and avoids a stalled worker", () =>
  withCluster({ workers: 2, balance: "least-connections" }, async (cluster) => {
    const target = { family: "IPv4" as const, address: "127.0.0.1", port: cluster.port };
    const fds = Array.from({ length: 64 }, () => connect(target));
    const stats = await cluster.statsUntil((s) => s.totals.active >= 64);
    const active = stats.workers.map((w) => w.active);
    assert.equal(sum(active), 64);
    assert.ok(Math.max(...active) / Math.min(...active) <= 1.1, `busiest/idlest ${active}`);
    fds.forEach(closeFd);
    await cluster.statsUntil((s) => s.totals.active === 0);
    // Healthy p99 first, then stall one worker and measure new connections again.
    const healthy = await load(`http://127.0.0.1:${cluster.port}/`, 200, 8, { headers: { connection: "close" } });
    assert.equal(healthy.failed, 0, healthy.errors.join("; "));
    const stall = oneShot(cluster.port, "/block?ms=1500");
    const stalled = await cluster.statsUntil((s) => s.workers.some((w) => w.state === "stalled"));
    assert.ok(stalled.workers.some((w) => w.state === "stalled"), "the primary sees the stalled worker");
    const during = await load(`http://127.0.0.1:${cluster.port}/`, 200, 8, { headers: { connection: "close" } });
    await stall;
    assert.equal(during.failed, 0, during.errors.join("; "));
    const p99Healthy = percentile(healthy.latencies, 99);
    const p99During = percentile(during.latencies, 99);
    // 2x the healthy p99, with a 50 ms floor for a shared machine's scheduling noise: a request
    // sent to the stalled worker would wait out the whole 1.5 s stall.
    assert.ok(p99During <= Math.max(2 * p99Healthy, p99Healthy + 50), `p99 ${p99During.toFixed(1)} ms while stalled vs ${p99Healthy.toFixed(1)} ms healthy`);
  }), { timeoutMs: 60_000, skip: isRoot ? false : "BPF steering needs root" });

test("cluster: a custom eBPF program decides which worker gets each connection", () =>
  withCluster({ workers: 2, balance: "program-zero" }, async (cluster) => {
    await Promise.all(Array.from({ length: 40 }, () => oneShot(cluster.port)));
    const stats = await cluster.statsUntil((s) => s.totals.requests >= 40);
    const counts = accepted(stats).sort((a, b) => a - b);
    assert.deepEqual(counts, [0, 40], "every connection on one worker");
  }), { timeoutMs: 30_000, skip: isRoot ? false : "BPF steering needs root" });

test("cluster: a worker killed under load is replaced, only its connections fail, counters stay monotonic", () =>
  withCluster({ workers: 2 }, async (cluster) => {
    await Promise.all(Array.from({ length: 40 }, () => oneShot(cluster.port)));
    const before = await cluster.statsUntil((s) => s.totals.requests >= 40);
    // Four clients keep opening connections while worker 0 is killed: at most the requests that
    // worker held (one per client at a time) may fail.
    let running = true;
    let ok = 0;
    const failures: string[] = [];
    const clients = Array.from({ length: 4 }, async () => {
      while (running) {
        const text = await oneShot(cluster.port).catch((e) => String(e));
        if (text.startsWith("HTTP/1.1 200")) ok++;
        else failures.push(text.slice(0, 80));
      }
    });
    await cluster.statsUntil((s) => s.totals.requests >= before.totals.requests + 20);
    const ringsBefore = ringsOf(cluster.child.pid!);
    cluster.command("kill 0");
    await cluster.line((l) => l.startsWith("killed "));
    const after = await cluster.statsUntil((s) => s.totals.restarts === 1 && s.workers.every((w) => w.state === "listening"));
    const servedAfter = after.totals.requests;
    await cluster.statsUntil((s) => s.totals.requests >= servedAfter + 40); // the replaced worker serves under load too
    running = false;
    await Promise.all(clients);
    assert.equal(after.totals.restarts, 1, "stats count the restart");
    assert.equal(ringsOf(cluster.child.pid!), ringsBefore, "a dead thread's io_uring is closed by the primary");
    assert.ok(failures.length <= 4, `only the killed worker's in-flight requests fail: ${failures.length} (${failures.join(" | ")})`);
    assert.ok(ok > 40);
    assert.ok(after.totals.requests >= before.totals.requests, "requests never go backwards");
    assert.ok(after.totals.accepted >= before.totals.accepted, "accepted never goes backwards");
    assert.equal(listenersOn(cluster.port), 2);
  }), { timeoutMs: 40_000 });

test("cluster: 5 reloads under keep-alive and new-connection load fail no request", () =>
  withCluster({ workers: 2 }, async (cluster) => {
    const url = `http://127.0.0.1:${cluster.port}/`;
    let running = true;
    const keepAlive = (async () => {
      const totals = { ok: 0, failed: 0, errors: [] as string[] };
      while (running) {
        const r = await load(url, 20, 4);
        totals.ok += r.ok;
        totals.failed += r.failed;
        totals.errors.push(...r.errors);
      }
      return totals;
    })();
    const fresh = (async () => {
      let ok = 0;
      const failures: string[] = [];
      while (running) {
        const text = await oneShot(cluster.port).catch((e) => String(e));
        if (text.startsWith("HTTP/1.1 200")) ok++;
        else failures.push(text.slice(0, 100));
      }
      return { ok, failures };
    })();
    let previous = await cluster.stats();
    for (let i = 0; i < 5; i++) {
      cluster.command("reload");
      await cluster.line((l) => l === "reloaded", 20_000);
      const now = await cluster.stats();
      assert.ok(now.totals.requests >= previous.totals.requests && now.totals.accepted >= previous.totals.accepted, "a scrape never goes backwards");
      previous = now;
    }
    running = false;
    const [kept, opened] = await Promise.all([keepAlive, fresh]);
    assert.equal(kept.failed, 0, kept.errors.slice(0, 5).join("; "));
    assert.equal(opened.failures.length, 0, opened.failures.slice(0, 5).join("; "));
    assert.ok(kept.ok > 0 && opened.ok > 0);
    // reload() resolves once the last new worker listens and the old one was told to stop; that one closes
    // its listener a moment later (bounded: each check waits for a stats round trip to the primary).
    const deadline = Date.now() + 5_000;
    while (listenersOn(cluster.port) !== 2 && Date.now() < deadline) await cluster.stats();
    assert.equal(listenersOn(cluster.port), 2);
  }), { timeoutMs: 90_000 });

test("cluster: graceful stop lets every accepted request finish", async () => {
  const cluster = await ClusterChild.start({ workers: 2 });
  try {
    const slow = Array.from({ length: 20 }, () => oneShot(cluster.port, "/slow?ms=400"));
    await cluster.statsUntil((s) => s.totals.requests >= 20);
    const code = await cluster.stop();
    const bodies = await Promise.all(slow);
    // The primary printed "finished" (its graceful stop completed) before exiting. Deno's
    // node:child_process reports a child that handled SIGTERM and exited 0 as (null, SIGTERM).
    await cluster.line((l) => l === "finished");
    assert.ok(code === 0 || code === null, `exit code ${code}`);
    assert.equal(bodies.filter((b) => b.startsWith("HTTP/1.1 200") && b.includes("v1 ")).length, 20);
  } finally {
    await cluster.stop(); // a no-op once it has exited
  }
}, { timeoutMs: 40_000 });

test("cluster: a crash loop gives up with a clear message and a non-zero exit", async () => {
  const cluster = await ClusterChild.start({ workers: 1, balance: "hash", restartsMax: 2 });
  try {
    for (let i = 0; i < 3; i++) {
      await oneShot(cluster.port, "/crash").catch(() => "");
      if (i < 2) await cluster.statsUntil((s) => s.totals.restarts === i + 1 && s.workers[0].state === "listening", 15_000);
    }
    const code = await cluster.exited;
    assert.notEqual(code, 0);
    assert.match(cluster.stderr, /crashed 3 times within \d+ ms .*giving up/);
  } finally {
    await cluster.stop(); // a no-op once it has exited
  }
}, { timeoutMs: 60_000 });

test("cluster: invalid options fail before anything starts", () => {
  const fetch = () => new Response("x");
  // deno-lint-ignore no-explicit-any
  const bad = (options: any, pattern: RegExp) => assert.throws(() => serve(options), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));
  bad({ fetch, port: 0, workers: 0 }, /workers must be a positive integer or "auto", got 0/);
  bad({ fetch, port: 0, workers: "lots" }, /workers must be a positive integer or "auto", got "lots"/);
  bad({ fetch, port: 0, workers: 2, balance: "random" }, /balance must be "hash", "cpu", "least-connections"/);
  bad({ fetch, port: 0, workers: 2, mode: "fiber" }, /mode must be "thread" or "process"/);
  bad({ fetch, port: 0, workers: 2, colour: 1 }, /colour is not a serve\(\) option/);
});

test("cluster: Prometheus exposition with per-worker labels", () =>
  withCluster({ workers: 2, metrics: { port: 0 } }, async (cluster) => {
    await Promise.all(Array.from({ length: 20 }, () => oneShot(cluster.port)));
    await cluster.statsUntil((s) => s.totals.requests >= 20);
    const response = await fetch(cluster.metricsUrl!);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    assert.match(text, /^# TYPE reuseport_requests_total counter$/m);
    const perWorker = [...text.matchAll(/^reuseport_requests_total\{worker="(\d)"\} (\d+)$/gm)].map((m) => Number(m[2]));
    assert.equal(perWorker.length, 2);
    assert.equal(sum(perWorker), 20);
    assert.match(text, /^reuseport_balance_cv [\d.e-]+$/m);
  }), { timeoutMs: 30_000 });

test("cluster: a second instance on the same port takes over from SIGTERM with no failed request", async () => {
  const first = await ClusterChild.start({ workers: 2, version: "old" });
  let second: ClusterChild | null = null;
  try {
    let running = true;
    const failures: string[] = [];
    const seen = new Set<string>();
    const traffic = (async () => {
      while (running) {
        const text = await oneShot(first.port).catch((e) => String(e));
        if (!text.startsWith("HTTP/1.1 200")) failures.push(text.slice(0, 100));
        else seen.add(text.includes("new ") ? "new" : "old");
      }
    })();
    second = await ClusterChild.start({ workers: 2, port: first.port, version: "new" });
    assert.equal(listenersOn(first.port), 4, "both instances in one group");
    await first.stop();
    await second.statsUntil((s) => s.totals.requests >= 20);
    running = false;
    await traffic;
    assert.deepEqual(failures, []);
    assert.ok(seen.has("new"), "the new instance served");
    assert.equal(listenersOn(first.port), 2);
  } finally {
    await first.stop();
    await second?.stop();
  }
}, { timeoutMs: 60_000 });

test("cluster: workers in the other mode (Bun processes, Deno threads)", async () => {
  const mode = runtimeName === "bun" ? "process" : "thread";
  await withCluster({ workers: 2, mode }, async (cluster) => {
    assert.equal(listenersOn(cluster.port), 2);
    await Promise.all(Array.from({ length: 40 }, () => oneShot(cluster.port)));
    const stats = await cluster.statsUntil((s) => s.totals.requests >= 40);
    const pids = new Set(stats.workers.map((w) => w.pid));
    assert.equal(pids.size, mode === "process" ? 2 : 1, `pids ${[...pids]}`);
    for (const w of stats.workers) assert.ok(w.counters.accepted > 0);
  });
}, { timeoutMs: 40_000 });

test("cluster: metrics at a path are answered by every worker on the server's port", () =>
  withCluster({ workers: 2, metrics: { path: "/metrics" } }, async (cluster) => {
    await Promise.all(Array.from({ length: 20 }, () => oneShot(cluster.port)));
    await cluster.statsUntil((s) => s.totals.requests >= 20);
    const text = await (await fetch(`http://127.0.0.1:${cluster.port}/metrics`)).text();
    const perWorker = [...text.matchAll(/^reuseport_requests_total\{worker="(\d)"\} (\d+)$/gm)].map((m) => Number(m[2]));
    assert.equal(perWorker.length, 2);
    assert.ok(sum(perWorker) >= 20, text);
    assert.match(await oneShot(cluster.port, "/other"), /v1 /, "other paths reach the handler");
  }), { timeoutMs: 30_000 });

test("cluster: a worker that crashes while starting is replaced and listening still resolves", async () => {
  const marker = join(mkdtempSync(join(tmpdir(), "reuseport-crash-")), "crashed");
  await withCluster({ workers: 2, crashOnceFile: marker }, async (cluster) => {
    const stats = await cluster.statsUntil((s) => s.workers.every((w) => w.state === "listening"));
    assert.equal(stats.totals.restarts, 1);
    assert.equal(listenersOn(cluster.port), 2);
    assert.match(await oneShot(cluster.port), /v1 /);
  });
  rmSync(dirname(marker), { recursive: true, force: true });
}, { timeoutMs: 40_000 });

test("cluster: a cluster's stats() carries the kernel's listen figures (host-wide drops, this port's accept queue)", async () => {
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

for (const mode of ["thread", "process"] as const) {
  test(`cluster: on SIGTERM the health endpoint answers 503 for drainDelayMs while the workers still serve, then the cluster stops (${mode})`, async () => {
    const cluster = await ClusterChild.start({ workers: 2, mode, health: { path: "/healthz", drainDelayMs: 1500 } });
    const get = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${cluster.port}${path}`, { headers: { connection: "close" } });
      return { status: response.status, body: await response.text() };
    };
    try {
      assert.deepEqual(await get("/healthz"), { status: 200, body: "ok" });
      assert.equal((await get("/")).status, 200);
      const signalled = Date.now();
      cluster.signal("SIGTERM");
      let draining = { status: 200, body: "" };
      for (let i = 0; i < 200 && draining.status !== 503; i++) draining = await get("/healthz"); // bounded: the signal takes a moment
      assert.deepEqual(draining, { status: 503, body: "draining" });
      const served = await get("/"); // a new connection while draining: the listeners are still open
      assert.equal(served.status, 200, "requests are still served while the endpoint drains");
      assert.equal(await cluster.exited, 0);
      assert.ok(Date.now() - signalled >= 1400, `the stop waited for the drain delay: ${Date.now() - signalled} ms`);
      assert.equal(crashLine(cluster.stderr), null, cluster.stderr);
    } finally {
      cluster.signal("SIGKILL");
    }
  }, { timeoutMs: 40_000 });
}

test("cluster: the primary says each lifecycle event in one line (reload started, each worker replaced, finished; stop begun, finished); log: false keeps it quiet", async () => {
  for (const log of [true, false]) {
    const cluster = await ClusterChild.start({ workers: 2, log });
    try {
      cluster.command("reload");
      await cluster.line((l) => l === "reloaded", 30_000);
      assert.equal(await cluster.stop(), 0);
      const lines = cluster.stderr.split("\n").filter((l) => l.startsWith("reuseport: "));
      if (!log) {
        assert.deepEqual(lines, [], cluster.stderr);
        continue;
      }
      const expected = [
        /^reuseport: reload started: 2 workers, one at a time$/,
        /^reuseport: worker 0: pid \d+ \(generation \d+\) replaced by pid \d+ \(generation \d+\)/,
        /^reuseport: worker 1: pid \d+ \(generation \d+\) replaced by pid \d+ \(generation \d+\)/,
        /^reuseport: reload finished in \d+ ms$/,
        /^reuseport: stopping 2 workers \(graceful\)$/,
        /^reuseport: stopped in \d+ ms$/,
      ];
      assert.equal(lines.length, expected.length, lines.join("\n"));
      expected.forEach((pattern, i) => assert.match(lines[i], pattern));
    } finally {
      cluster.signal("SIGKILL");
    }
  }
}, { timeoutMs: 60_000 });
