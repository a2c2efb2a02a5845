// The command line (bin/reuseport.mjs, and the standalone binary Bun compiles from it): `serve` runs a module's
// default export with N workers, `stats <pid>` reads a running cluster from outside, bad arguments exit 2.
import { assert, test } from "../_harness.ts";
import { announcedPort, listenersOn, oneShot, withCluster } from "../_cluster.ts";
import { runtimeName } from "../_runtime.ts";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { balanceOf } from "../../src/cluster/cluster-stats.ts";
import { cpuQuota } from "../../src/os.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const CLI = fileURLToPath(new URL("../../bin/reuseport.mjs", import.meta.url));
const APP = fileURLToPath(new URL("../../examples/app.ts", import.meta.url));
const COMPILE = fileURLToPath(new URL("../../scripts/compile.mjs", import.meta.url));

test("cli: reuseport serve app.ts runs the module's default export with N workers", async () => {
  const child = spawn("node", [CLI, "serve", APP, "--port", "0", "--workers", "2", "--hostname", "127.0.0.1"], {
    env: { ...process.env, REUSEPORT_RUNTIME: runtimeName, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const port = await announcedPort(child);
    assert.equal(listenersOn(port), 2);
    const body = await (await fetch(`http://127.0.0.1:${port}/hello/cli`)).json();
    assert.equal(body.hello, "cli");
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
}, { timeoutMs: 40_000 });

/** The CLI through its launcher, on this runtime. */
const cli = (...args: string[]) =>
  spawnSync("node", [CLI, ...args], { env: { ...process.env, REUSEPORT_RUNTIME: runtimeName, NO_COLOR: "1" }, encoding: "utf8", timeout: 30_000 });

test("cli: bad arguments get a clear error and exit 2; one message per kind of bad value", () => {
  for (const workers of ["lots", "-1", "0", "1.5"]) {
    const result = cli("serve", APP, "--workers", workers);
    assert.equal(result.status, 2, workers);
    assert.match(result.stderr, new RegExp(`--workers must be a positive integer or auto, got "${workers.replace(".", "\\.")}"`), result.stderr);
  }
  for (const [args, message] of [
    [["launch"], /launch is not a command/],
    [["stats", "--jsn"], /--jsn is not a reuseport stats option/],
    [["stats", "abc"], /pid must be a process id, got "abc"/],
    [["stats", "--port", "x"], /--port must be a port number, got "x"/],
    [["doctor", "--verbose"], /--verbose is not a reuseport doctor option/],
    [["help", "nothing"], /nothing is not a command/],
  ] as const) {
    const result = cli(...args);
    assert.equal(result.status, 2, args.join(" "));
    assert.match(result.stderr, message, args.join(" "));
  }
}, { timeoutMs: 60_000 });

test("cli: version, help, and --help on every command exit 0; the help names the environment and exit codes", () => {
  const version = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version;
  for (const args of [["version"], ["--version"], ["-V"]]) {
    const result = cli(...args);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), `reuseport ${version}`);
  }
  const help = cli("help");
  assert.equal(help.status, 0);
  for (const text of ["serve <module>", "stats", "doctor", "version", "REUSEPORT_RUNTIME", "REUSEPORT_IO", "exit codes: 0"]) assert.ok(help.stdout.includes(text), text);
  assert.equal(cli("--help").stdout, help.stdout);
  for (const command of ["serve", "stats", "doctor"]) {
    for (const args of [[command, "--help"], [command, "-h"], ["help", command]]) {
      const result = cli(...args);
      assert.equal(result.status, 0, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stdout, new RegExp(`^usage: reuseport ${command}`), args.join(" "));
    }
  }
}, { timeoutMs: 90_000 });

test("cli: doctor --json is one document with the documented keys", () => {
  const result = cli("doctor", "--json");
  assert.equal(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assert.deepEqual(Object.keys(report), ["kernel", "cpusAllowed", "cpuQuota", "autoWorkers", "fileLimit", "sysctls", "bpf", "ioUring"]);
  assert.ok(report.cpuQuota === null || report.cpuQuota > 0);
  assert.ok(report.autoWorkers >= 1 && report.autoWorkers <= report.cpusAllowed);
  assert.equal(typeof report.kernel, "string");
  assert.ok(Number.isInteger(report.cpusAllowed) && report.cpusAllowed > 0);
  assert.ok(report.fileLimit.soft > 0 && report.fileLimit.hard >= report.fileLimit.soft);
  assert.equal(typeof report.sysctls["net.core.somaxconn"], "string");
  for (const capability of [report.bpf, report.ioUring]) assert.deepEqual(Object.keys(capability), ["available", "detail"]);
}, { timeoutMs: 30_000 });

test("cli: workers \"auto\" honours the cgroup CPU quota: v2 cpu.max up the tree (the tightest wins), else v1 cfs", () => {
  const files = (entries: Record<string, string>) => (path: string) => entries[path] ?? null;
  assert.equal(cpuQuota(files({ "/proc/self/cgroup": "0::/\n" })), null, "no limit anywhere");
  assert.equal(cpuQuota(files({ "/proc/self/cgroup": "0::/a/b\n", "/sys/fs/cgroup/a/b/cpu.max": "max 100000\n", "/sys/fs/cgroup/a/cpu.max": "150000 100000\n" })), 2, "1.5 CPUs on the parent: 2");
  assert.equal(cpuQuota(files({ "/proc/self/cgroup": "0::/a/b\n", "/sys/fs/cgroup/a/b/cpu.max": "100000 100000", "/sys/fs/cgroup/a/cpu.max": "400000 100000" })), 1, "the child's is tighter");
  assert.equal(cpuQuota(files({ "/proc/self/cgroup": "4:cpu,cpuacct:/docker/x\n", "/sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_quota_us": "300000", "/sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000" })), 3, "cgroup v1");
  assert.equal(cpuQuota(files({ "/proc/self/cgroup": "1:cpu:/\n", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000" })), null, "v1 without a quota");
});

test("cli: the balance alert waits for 400 accepted connections per worker", () => {
  assert.equal(balanceOf([1, 3]).alert, false, "3 requests: far apart, but chance");
  assert.equal(balanceOf([300, 700]).alert, true);
  assert.equal(balanceOf([380, 420]).alert, false, "within 15 %");
  assert.equal(balanceOf([100, 300]).alert, false, "200 per worker: too few to tell");
});

test("cli: the standalone binary (bun build --compile) serves a module with 2 worker threads", async () => {
  const dir = mkdtempSync(join(tmpdir(), "reuseport-compiled-"));
  const binary = join(dir, "reuseport");
  const app = join(dir, "app.ts");
  writeFileSync(app, "export default { fetch: () => new Response('compiled') };\n");
  const built = spawnSync("node", [COMPILE, "--outfile", binary], { encoding: "utf8" });
  assert.equal(built.status, 0, built.stderr);
  const child = spawn(binary, ["serve", app, "--port", "0", "--workers", "2", "--hostname", "127.0.0.1"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  try {
    const port = await announcedPort(child);
    assert.equal(listenersOn(port), 2);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "compiled");
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}, { timeoutMs: 60_000, skip: runtimeName === "bun" ? false : "bun build --compile is Bun's; deno compile needs denort from the network" });

test("cli: reuseport stats <pid> reads a running cluster's counters from outside, as lines or --json, found by pid or --port", () =>
  withCluster({ workers: 2 }, async (cluster) => {
    await Promise.all(Array.from({ length: 10 }, () => oneShot(cluster.port)));
    await cluster.statsUntil((s) => s.totals.requests >= 10);
    const result = cli("stats", String(cluster.child.pid));
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^primary ${cluster.child.pid}: 2 workers, balance cv [0-9.]+ max deviation [0-9.]+$`, "m"), "no alert after 10 requests");
    const rows = result.stdout.split("\n").filter((line) => /^\s+[01]\s+\d+/.test(line));
    assert.equal(rows.length, 2);
    const requests = rows.map((row) => Number(row.trim().split(/\s+/)[8]));
    assert.equal(requests.reduce((a, b) => a + b, 0), 10);
    assert.ok(rows.every((row) => /^-|^\d+$/.test(row.trim().split(/\s+/)[3])), `an unpinned worker's cpu is "-": ${rows}`);
    for (const args of [["stats", "--json", String(cluster.child.pid)], ["stats", "--port", String(cluster.port), "--json"]]) {
      const json = cli(...args);
      assert.equal(json.status, 0, json.stderr);
      const { clusters } = JSON.parse(json.stdout);
      assert.equal(clusters.length, 1, args.join(" "));
      const [only] = clusters;
      assert.equal(only.primaryPid, cluster.child.pid);
      assert.equal(only.workers.length, 2);
      assert.equal(only.totals.requests, 10);
      assert.ok(only.workers.every((w: { cpu: number | null }) => w.cpu === null || w.cpu >= 0));
      assert.equal(only.balance.alert, false);
      assert.match(only.balance.rule, /max deviation > 0.15 with at least 400 accepted connections per worker/);
    }
    const other = cli("stats", "--port", "1");
    assert.equal(other.status, 2);
    assert.match(other.stderr, /found no reuseport cluster serving port 1/);
  }), { timeoutMs: 60_000 });
