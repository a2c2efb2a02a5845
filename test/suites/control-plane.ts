// The supervisor and its control plane under faults: reloads that fail, overlap or are cut by SIGTERM,
// garbage on the control socket, its permissions, stale files the sweep may not remove, bad files
// for `reuseport stats`, and process workers outliving a killed primary. Each test runs
// test/fixtures/cluster-app.ts as a child (same runtime) and ends only the pids it started.
import process from "node:process";
import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, test } from "../_harness.ts";
import { ClusterChild, listenersOn } from "../_cluster.ts";
import { crashLine, LoadClient, type LoadTotals } from "../_load.ts";
import { RawClient, rawExchange } from "../_http.ts";
import { runtimeName } from "../_runtime.ts";
import type { ClusterStats } from "../../src/index.ts";

const CLI = fileURLToPath(new URL("../../bin/reuseport.mjs", import.meta.url));
/** Thread and process workers on Bun; process workers on Deno (its default). */
const MODES: ("thread" | "process")[] = runtimeName === "bun" ? ["thread", "process"] : ["process"];
const io = process.env.REUSEPORT_IO ? ` ${process.env.REUSEPORT_IO}` : "";
// Signals go by process.kill(pid): Deno's ChildProcess.kill() also stops the child's stdin, which
// drives the primary.

/** A pid no process can have (above pid_max): a stale file's primary that is surely dead. */
function deadPid(): number {
  return Number(readFileSync("/proc/sys/kernel/pid_max", "utf8").trim()) + 1;
}

function oneShot(port: number): Promise<string> {
  return rawExchange(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
}

const allListening = (workers: number) => (s: ClusterStats) => s.workers.length === workers && s.workers.every((w) => w.state === "listening");

/** A scratch directory under the temp dir, removed by the caller. */
function scratch(): string {
  return mkdtempSync(join(tmpdir(), "reuseport-control-test-"));
}

function assertNoFailures(totals: LoadTotals): void {
  assert.equal(totals.failed, 0, `failed requests: ${totals.errors.join("; ")}`);
  assert.ok(totals.requests > 0, `load ran: ${JSON.stringify(totals)}`);
}

/** SIGTERM, then: the primary was alive until now, stopped gracefully, no crash in its output. */
async function endCleanly(cluster: ClusterChild): Promise<void> {
  assert.equal(cluster.exitCode, null, `the primary died: ${cluster.stderr.slice(-1500)}`);
  const code = await cluster.stop();
  await cluster.line((l) => l === "finished");
  assert.equal(crashLine(cluster.stderr), null, cluster.stderr.slice(-1500));
  // Deno's node:child_process reports a child that handled SIGTERM and exited 0 as (null, SIGTERM);
  // "finished" above shows the graceful stop ran to its end.
  assert.ok(code === 0 || (runtimeName === "deno" && code === null), `exit code ${code}: ${cluster.stderr.slice(-1500)}`);
}

for (const mode of MODES) {
  test(`control: a reload whose new code throws at import keeps the old generation serving under load (${runtimeName} ${mode}${io})`, async () => {
    const dir = scratch();
    const brokenFile = join(dir, "broken");
    const cluster = await ClusterChild.start({ workers: 2, mode, brokenFile });
    try {
      const load = await LoadClient.start(cluster.port, { keepAlive: 16, fresh: 4 });
      const before = await cluster.statsUntil((s) => s.totals.requests > 100);
      writeFileSync(brokenFile, "");
      const asked = Date.now();
      cluster.command("reload");
      const failed = await cluster.line((l) => l.startsWith("reload-failed ") || l === "reloaded", 30_000);
      const rejectedMs = Date.now() - asked;
      assert.match(failed, /^reload-failed .*worker 0 .*before listening/, failed);
      // The one line the primary logs says which worker and why.
      assert.equal(cluster.stderr.match(/reuseport: reload failed/g)?.length, 1, cluster.stderr);
      const after = await cluster.statsUntil((s) => s.totals.requests > before.totals.requests + 100);
      assert.deepEqual(after.workers.map((w) => [w.pid, w.threadId, w.state]), before.workers.map((w) => [w.pid, w.threadId, "listening"]), "the old generation keeps serving");
      assert.equal(after.totals.restarts, 0, "a failed candidate is not a crash of the serving worker");
      // Fixed code reloads as usual.
      rmSync(brokenFile);
      cluster.command("reload");
      assert.equal(await cluster.line((l) => l.startsWith("reload-failed ") || l === "reloaded", 30_000), "reloaded");
      const totals = await load.stop();
      assert.equal(crashLine(load.stderr), null);
      console.log(`broken reload: rejected after ${rejectedMs} ms; load ${JSON.stringify({ requests: totals.requests, failed: totals.failed })}`);
      assertNoFailures(totals);
      await endCleanly(cluster);
    } finally {
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, { timeoutMs: 90_000 });

  test(`control: a storm of 20 SIGHUPs never crashes the primary (${runtimeName} ${mode}${io})`, async () => {
    const cluster = await ClusterChild.start({ workers: 2, mode });
    try {
      const load = await LoadClient.start(cluster.port, { keepAlive: 16, fresh: 4 });
      await cluster.statsUntil((s) => s.totals.requests > 100);
      // Each followed by a stats round trip, so the runtime does not merge pending SIGHUPs into one.
      for (let i = 0; i < 20; i++) {
        process.kill(cluster.child.pid!, "SIGHUP");
        await cluster.stats();
      }
      // A reload asked for after the storm runs after the storm's (queued or coalesced): once it is
      // done, so are they. Its last retired worker closes its listener a moment later (bounded).
      cluster.command("reload");
      assert.equal(await cluster.line((l) => l.startsWith("reload-failed ") || l === "reloaded", 60_000), "reloaded");
      const deadline = Date.now() + 5_000;
      let stats = await cluster.stats();
      while (Date.now() < deadline && !(allListening(2)(stats) && listenersOn(cluster.port) === 2)) stats = await cluster.stats();
      assert.ok(allListening(2)(stats), JSON.stringify(stats.workers));
      assert.equal(listenersOn(cluster.port), 2);
      const totals = await load.stop();
      assert.equal(crashLine(load.stderr), null);
      console.log(`storm load: ${JSON.stringify({ requests: totals.requests, failed: totals.failed, errors: totals.errors.slice(0, 5) })}`);
      await endCleanly(cluster);
    } finally {
      await cluster.stop();
    }
  }, { timeoutMs: 120_000 });

  test(`control: SIGTERM during a reload stops cleanly (${runtimeName} ${mode}${io})`, async () => {
    const dir = scratch();
    const slowStartFile = join(dir, "slow");
    const cluster = await ClusterChild.start({ workers: 2, mode, slowStartFile, slowStartMs: 1_500 });
    try {
      // An old worker still busy with a request when the stop comes: the stop waits for it.
      const slow = rawExchange(cluster.port, "GET /slow?ms=1000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
      await cluster.statsUntil((s) => s.totals.active >= 1);
      writeFileSync(slowStartFile, "");
      process.kill(cluster.child.pid!, "SIGHUP");
      await cluster.line((l) => l.startsWith("slow start 0 "), 20_000); // the new worker 0 is on its way
      await endCleanly(cluster);
      assert.match(await slow, /^HTTP\/1.1 200/);
      assert.doesNotMatch(cluster.stderr, /unhandled|uncaught/i);
    } finally {
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, { timeoutMs: 60_000 });
}

test(`control: malformed control lines are ignored and counted, the cluster keeps serving (${runtimeName}${io})`, async () => {
  const cluster = await ClusterChild.start({ workers: 2 });
  try {
    cluster.command("control");
    const path = (await cluster.line((l) => l.startsWith("control "))).slice(8);
    const garbage = ["not json", "null", "[1,2]", '{"type":"hello"}', '{"type":"listening","slot":"x"}', '{"type":"hello","slot":1e9,"id":0,"generation":1,"pid":1}', "{".repeat(10)];
    await new Promise<void>((resolve, reject) => {
      const socket = connect(path, () => socket.end(garbage.join("\n") + "\n"));
      socket.on("error", reject);
      socket.on("close", () => resolve());
    });
    const stats = await cluster.statsUntil((s) => (s.control?.malformedLines ?? 0) >= garbage.length);
    assert.equal(stats.control?.malformedLines, garbage.length, JSON.stringify(stats.control));
    assert.equal(stats.control?.refusedPeers, 0);
    for (let i = 0; i < 10; i++) assert.match(await oneShot(cluster.port), /^HTTP\/1.1 200/);
    assert.ok(allListening(2)(await cluster.stats()));
    await endCleanly(cluster);
  } finally {
    await cluster.stop();
  }
}, { timeoutMs: 40_000 });

/** Root with setpriv can act as another uid that still reaches the 0700 directory (CAP_DAC_OVERRIDE kept). */
const otherUser = process.getuid?.() === 0 && spawnSync("setpriv", ["--version"]).status === 0 ? false : "needs root and setpriv to connect as another uid";

test(`control: a peer of another uid is refused and counted (${runtimeName})`, async () => {
  const cluster = await ClusterChild.start({ workers: 2 });
  try {
    cluster.command("control");
    const path = (await cluster.line((l) => l.startsWith("control "))).slice(8);
    const hello = JSON.stringify({ type: "hello", slot: 0, id: 0, generation: 1, pid: 1 });
    // node as uid 65534: prints what it read before the primary closed the connection.
    const script = `const s = require("net").connect(${JSON.stringify(path)}, () => s.write(${JSON.stringify(hello + "\n")}));
      let got = ""; s.on("data", (d) => (got += d)); s.on("error", (e) => console.log("error " + e.code)); s.on("close", () => console.log("closed " + got.length));`;
    const peer = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+dac_override", "--ambient-caps=+dac_override", "node", "-e", script], { encoding: "utf8", timeout: 20_000 });
    assert.match(peer.stdout, /closed 0|error ECONNRESET/, `${peer.stdout} ${peer.stderr}`);
    const stats = await cluster.statsUntil((s) => (s.control?.refusedPeers ?? 0) >= 1);
    assert.deepEqual(stats.control, { malformedLines: 0, refusedPeers: 1, pubsubDropped: 0 });
    assert.match(cluster.stderr, /refused a control connection from uid 65534/);
    assert.ok(allListening(2)(stats));
    assert.match(await oneShot(cluster.port), /^HTTP\/1.1 200/);
    await endCleanly(cluster);
  } finally {
    await cluster.stop();
  }
}, { timeoutMs: 40_000, skip: otherUser });

test(`control: the control socket is 0600 in a private 0700 directory (${runtimeName})`, async () => {
  const cluster = await ClusterChild.start({ workers: 2 });
  let path = "";
  try {
    cluster.command("control");
    path = (await cluster.line((l) => l.startsWith("control "))).slice(8);
    const socket = lstatSync(path);
    const dir = lstatSync(dirname(path));
    assert.ok(socket.isSocket() && dir.isDirectory());
    assert.equal(dir.mode & 0o777, 0o700, `directory mode ${(dir.mode & 0o777).toString(8)}`);
    assert.equal(socket.mode & 0o777, 0o600, `socket mode ${(socket.mode & 0o777).toString(8)}`);
    assert.equal(dir.uid, process.getuid?.());
    await endCleanly(cluster);
    assert.throws(() => statSync(dirname(path)), /ENOENT/, "the directory is removed at exit");
  } finally {
    await cluster.stop();
  }
}, { timeoutMs: 30_000 });

test(`control: a directory with a stale file's name in /dev/shm does not stop a cluster from starting (${runtimeName})`, async () => {
  const stale = `/dev/shm/reuseport-${deadPid()}-0000abcd`;
  mkdirSync(stale);
  try {
    const cluster = await ClusterChild.start({ workers: 2 });
    try {
      assert.match(await oneShot(cluster.port), /^HTTP\/1.1 200/);
      assert.equal(cluster.stderr.split("\n").filter((l) => l.includes(stale)).length, 1, `said once: ${cluster.stderr}`);
      await endCleanly(cluster);
    } finally {
      await cluster.stop();
    }
    assert.ok(lstatSync(stale).isDirectory(), "what the sweep may not remove is left alone");
  } finally {
    rmSync(stale, { recursive: true, force: true });
  }
}, { timeoutMs: 30_000 });

test(`control: reuseport stats reports a FIFO, a directory, a symlink and a wrong-size file and still prints the running cluster (${runtimeName})`, async () => {
  // Named with this live process's pid, so no primary's sweep removes them meanwhile.
  const base = `/dev/shm/reuseport-${process.pid}-`;
  const fifo = `${base}0000f1f0`, directory = `${base}0000d1d0`, wrongSize = `${base}00005153`, link = `${base}0000119c`;
  const cluster = await ClusterChild.start({ workers: 2 });
  try {
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0, "mkfifo");
    mkdirSync(directory);
    writeFileSync(wrongSize, new Uint8Array(100));
    const good = readdirSync("/dev/shm").find((name) => name.startsWith(`reuseport-${cluster.child.pid}-`))!;
    symlinkSync(`/dev/shm/${good}`, link);
    await Promise.all(Array.from({ length: 10 }, () => oneShot(cluster.port)));
    await cluster.statsUntil((s) => s.totals.requests >= 10);
    const result = spawnSync("node", [CLI, "stats"], {
      env: { ...process.env, REUSEPORT_RUNTIME: runtimeName, NO_COLOR: "1" },
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(result.signal, null, `stats hung: ${result.stdout} ${result.stderr}`);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^primary ${cluster.child.pid}: 2 workers, balance cv`, "m"));
    for (const bad of [fifo, directory, wrongSize, link]) assert.match(result.stderr, new RegExp(`skipping ${bad}: `), result.stderr);
    assert.equal(statSync(wrongSize).size, 100, "stats changed nothing");
    assert.equal(crashLine(result.stderr), null);
    await endCleanly(cluster);
  } finally {
    await cluster.stop();
    for (const path of [fifo, directory, wrongSize, link]) rmSync(path, { recursive: true, force: true });
  }
}, { timeoutMs: 40_000 });

/** Whether pid is gone (a zombie counts: it runs nothing, and its reaper may be slow). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

test(`control: process workers die with their primary on kill -9 (${runtimeName}${io})`, async () => {
  const cluster = await ClusterChild.start({ workers: 2, mode: "process" });
  let pids: number[] = [];
  try {
    pids = (await cluster.statsUntil(allListening(2))).workers.map((w) => w.pid);
    assert.ok(pids.every((pid) => pid > 0 && pid !== cluster.child.pid), `${pids}`);
    // Stopped workers cannot see the control socket close: only the parent-death signal ends them.
    for (const pid of pids) process.kill(pid, "SIGSTOP");
    const killed = Date.now();
    cluster.child.kill("SIGKILL");
    await cluster.exited;
    const deadline = Date.now() + 5_000;
    while (!pids.every(gone) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(pids.filter((pid) => !gone(pid)), [], "every worker is gone within 5 s");
    console.log(`pdeathsig: stopped workers gone ${Date.now() - killed} ms after kill -9 of the primary`);
  } finally {
    for (const pid of pids) {
      if (gone(pid)) continue;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await cluster.stop();
    // A primary killed with -9 leaves its stats file and socket directory; the next start sweeps them.
  }
}, { timeoutMs: 40_000 });

/** Thread workers share the primary's fd table: the modes where the primary reclaims a dead worker's handles. */
const THREAD_CONFIG = { workers: 1, balance: "hash", mode: "thread" };

test(`control: a thread worker that dies while retiring does not cost the new worker a connection (${runtimeName}${io})`, async () => {
  const dir = scratch();
  const crashFile = join(dir, "crash");
  const cluster = await ClusterChild.start(THREAD_CONFIG);
  const clients: RawClient[] = [];
  try {
    // The old worker holds one request open, so it is still retiring (its listener closed) when it dies.
    const held = await RawClient.open(cluster.port);
    await held.write(`GET /crash-when?file=${encodeURIComponent(crashFile)} HTTP/1.1\r\nHost: a\r\n\r\n`);
    await cluster.statsUntil((s) => s.totals.active === 1);
    cluster.command("reload");
    assert.equal(await cluster.line((l) => l.startsWith("reload-failed ") || l === "reloaded", 20_000), "reloaded");
    // New connections reach only the new worker, and take the lowest free fds: the old listener's among them.
    for (let i = 0; i < 20; i++) {
      const client = await RawClient.open(cluster.port);
      await client.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
      await client.until(() => client.responses() === 1);
      clients.push(client);
    }
    writeFileSync(crashFile, "");
    await held.closedByPeer(10_000); // the primary closed the dead worker's connection fds
    const answered = await Promise.all(clients.map(async (client) => {
      await client.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n").catch(() => {});
      await client.until(() => client.responses() === 2, 5_000).catch(() => "");
      return client.responses() === 2;
    }));
    assert.equal(answered.filter((ok) => !ok).length, 0, "every connection of the new worker still answers");
    await endCleanly(cluster);
  } finally {
    for (const client of clients) client.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, { timeoutMs: 60_000 });
