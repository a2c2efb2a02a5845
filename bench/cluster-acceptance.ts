// Prints the cluster acceptance numbers (the tests assert them; this reports them):
//   bun bench/cluster-acceptance.ts      deno run -A bench/cluster-acceptance.ts
import { ClusterChild, listenersOn, load, percentile } from "../test/_cluster.ts";
import { rawExchange } from "../test/_http.ts";
import { connect, closeFd } from "../src/net/socket.ts";
import { allowedCpus, withCpu } from "../src/os.ts";
import { runtimeName } from "../test/_runtime.ts";

const oneShot = (port: number, path = "/") => rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
const report = (name: string, value: unknown) => console.log(`${runtimeName} ${name}: ${JSON.stringify(value)}`);

for (const workers of [2, 4]) {
  const c = await ClusterChild.start({ workers });
  const listeners = listenersOn(c.port);
  for (let i = 0; i < 10; i++) await Promise.all(Array.from({ length: 100 }, () => oneShot(c.port)));
  const s = await c.statsUntil((x) => x.totals.requests >= 1000);
  report(`hash ${workers} workers`, { listeners, accepted: s.workers.map((w) => w.counters.accepted), cv: +s.balance.coefficientOfVariation.toFixed(3), maxDeviation: +s.balance.maxDeviation.toFixed(3) });
  await c.stop();
}

{
  const c = await ClusterChild.start({ workers: 2, balance: "cpu" });
  const target = { family: "IPv4" as const, address: "127.0.0.1", port: c.port };
  const cpus = allowedCpus().slice(0, 2);
  const perCpu: Record<number, number[]> = {};
  for (let round = 0; round < 20; round++) {
    const cpu = cpus[round % 2];
    const before = (await c.stats()).workers.map((w) => w.counters.accepted);
    const fds = withCpu(cpu, () => Array.from({ length: 100 }, () => connect(target)));
    const after = (await c.statsUntil((x) => sum(x.workers.map((w) => w.counters.accepted)) >= sum(before) + 100)).workers.map((w) => w.counters.accepted);
    fds.forEach(closeFd);
    perCpu[cpu] = (perCpu[cpu] ?? [0, 0]).map((n, i) => n + after[i] - before[i]);
  }
  report("cpu 2 workers, 2000 connections alternating client CPU (per CPU: per worker)", perCpu);
  await c.stop();
}

{
  const c = await ClusterChild.start({ workers: 2, balance: "least-connections" });
  const target = { family: "IPv4" as const, address: "127.0.0.1", port: c.port };
  const fds = Array.from({ length: 64 }, () => connect(target));
  const s = await c.statsUntil((x) => x.totals.active >= 64);
  const active = s.workers.map((w) => w.active);
  fds.forEach(closeFd);
  await c.statsUntil((x) => x.totals.active === 0);
  const healthy = await load(`http://127.0.0.1:${c.port}/`, 400, 8, { headers: { connection: "close" } });
  const stall = oneShot(c.port, "/block?ms=2000");
  await c.statsUntil((x) => x.workers.some((w) => w.state === "stalled"));
  const during = await load(`http://127.0.0.1:${c.port}/`, 400, 8, { headers: { connection: "close" } });
  await stall;
  report("least-connections", {
    active64: active, ratio: +(Math.max(...active) / Math.min(...active)).toFixed(3),
    p99HealthyMs: +percentile(healthy.latencies, 99).toFixed(1), p99StalledMs: +percentile(during.latencies, 99).toFixed(1),
    failed: healthy.failed + during.failed,
  });
  await c.stop();
}

{
  const c = await ClusterChild.start({ workers: 2 });
  let running = true;
  let ok = 0;
  let failed = 0;
  const keep = (async () => {
    while (running) {
      const r = await load(`http://127.0.0.1:${c.port}/`, 50, 4);
      ok += r.ok;
      failed += r.failed;
    }
  })();
  const fresh = (async () => {
    while (running) {
      const t = await oneShot(c.port).catch((e) => String(e));
      if (t.startsWith("HTTP/1.1 200")) ok++;
      else failed++;
    }
  })();
  const started = Date.now();
  for (let i = 0; i < 5; i++) {
    c.command("reload");
    await c.line((l) => l === "reloaded", 30_000);
  }
  running = false;
  await Promise.all([keep, fresh]);
  const s = await c.stats();
  report("5 reloads under load", { requestsOk: ok, failed, seconds: (Date.now() - started) / 1000, listenersAfter: listenersOn(c.port), totalRequests: s.totals.requests });
  let killRunning = true;
  let killOk = 0;
  let killFailed = 0;
  const traffic = Array.from({ length: 4 }, async () => {
    while (killRunning) {
      const t = await oneShot(c.port).catch((e) => String(e));
      if (t.startsWith("HTTP/1.1 200")) killOk++;
      else killFailed++;
    }
  });
  await c.statsUntil((x) => x.totals.requests >= s.totals.requests + 100);
  c.command("kill 1");
  await c.line((l) => l.startsWith("killed "));
  const after = await c.statsUntil((x) => x.totals.restarts === 1 && x.workers.every((w) => w.state === "listening"));
  await c.statsUntil((x) => x.totals.requests >= after.totals.requests + 100);
  killRunning = false;
  await Promise.all(traffic);
  report("kill worker 1 under load (4 clients, new connection per request)", { restarts: after.totals.restarts, ok: killOk, failed: killFailed, requestsBefore: s.totals.requests, requestsAfter: after.totals.requests });
  await c.stop();
}
