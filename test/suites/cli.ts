// The command line (bin/reuseport.mjs, and the standalone binary Bun compiles from it): `serve` runs a module's
// default export with N workers, `stats <pid>` reads a running cluster from outside, bad arguments exit 2.
import { assert, test } from "../_harness.ts";
import { announcedPort, listenersOn, oneShot, withCluster } from "../_cluster.ts";
import { runtimeName } from "../_runtime.ts";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
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

test("cli: bad arguments get a clear error and exit 2", () => {
  const result = spawnSync("node", [CLI, "serve", APP, "--workers", "lots"], {
    env: { ...process.env, REUSEPORT_RUNTIME: runtimeName, NO_COLOR: "1" },
    encoding: "utf8",
  });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /--workers must be a non-negative integer, got "lots"/);
}, { timeoutMs: 30_000 });

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

test("cli: reuseport stats <pid> reads a running cluster's counters from outside", () =>
  withCluster({ workers: 2 }, async (cluster) => {
    await Promise.all(Array.from({ length: 10 }, () => oneShot(cluster.port)));
    await cluster.statsUntil((s) => s.totals.requests >= 10);
    const result = spawnSync("node", [CLI, "stats", String(cluster.child.pid)], {
      env: { ...process.env, REUSEPORT_RUNTIME: runtimeName, NO_COLOR: "1" },
      encoding: "utf8",
    });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^primary ${cluster.child.pid}: 2 workers, balance cv`, "m"));
    const rows = result.stdout.split("\n").filter((line) => /^\s+[01]\s+\d+/.test(line));
    assert.equal(rows.length, 2);
    const requests = rows.map((row) => Number(row.trim().split(/\s+/)[8]));
    assert.equal(requests.reduce((a, b) => a + b, 0), 10);
  }), { timeoutMs: 30_000 });
