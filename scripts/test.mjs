#!/usr/bin/env node
// `npm test`: the architecture check (scripts/check-architecture.mjs), README's env table, the native checks, the
// shared suites under Bun (on both read paths) and under Deno, then a short soak. Each check counts as one result.
// Ends with one line of its own, `N passed, N failed` (totals), and exits non-zero on any failure.
import { spawn, spawnSync } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { findZig } from "./bootstrap.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules/.bin", name);
const filter = process.argv.slice(2); // optional: a name filter passed through to both runners

/** Runs a command, streams its output, and returns {code, output}. */
function run(label, command, args, cwd = root, env = {}) {
  console.log(`\n=== ${label}: ${[command, ...args].join(" ")}`);
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", ...env } });
    let output = "";
    const take = (chunk) => { output += chunk; process.stdout.write(chunk); };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("close", (code, signal) => resolve({ code: code ?? 128, signal, output }));
  });
}

function count(regex, output) {
  let total = 0;
  for (const match of output.matchAll(regex)) total = Number(match[1]);
  return total;
}

/** Totals from a runner's summary; a runner that died without one counts as one failure. */
function tally(label, { code, signal, output }, passRegex, failRegex) {
  const passed = count(passRegex, output);
  let failed = count(failRegex, output);
  if (code !== 0 && failed === 0) {
    console.log(`!!! ${label} exited with ${signal ?? code} without reporting a failure; counting it as one`);
    failed = 1;
  }
  return { passed, failed };
}

const results = [];
/** Runs a command that passes or fails as a whole, counted as one check; returns whether it passed. */
async function check(label, command, args, cwd = root, env = {}) {
  const ok = (await run(label, command, args, cwd, env)).code === 0;
  results.push({ passed: ok ? 1 : 0, failed: ok ? 0 : 1 });
  return ok;
}
/** Prints the totals line and exits: non-zero on any failure. */
function finish() {
  const passed = results.reduce((sum, r) => sum + r.passed, 0);
  const failed = results.reduce((sum, r) => sum + r.failed, 0);
  console.log(`\n${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

if (filter.length === 0) {
  // Import cycles, runtime names outside src/ffi/, function bodies over 70 lines: one check, failed by any offender.
  await check("architecture", "node", [join(root, "scripts/check-architecture.mjs")]);
}
// Cheap, and the suites would not mean much without it: README.md's table of environment variables must match
// src/config.ts. A mismatch stops the run here.
if (!(await check("README env table", bin("bun"), [join(root, "scripts/env-table.ts"), "--check"]))) finish();

// Tools some suites drive (each of those suites says it is skipped, and why, where one is missing): installed with
// apt where this runs as root, bounded, and never counted as a check.
for (const [tool, pkg] of [["systemd-socket-activate", "systemd"]]) {
  if (spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0 || process.getuid?.() !== 0) continue;
  console.log(`\n=== installing ${tool} (apt package ${pkg})`);
  const apt = (args) => spawnSync("apt-get", args, { stdio: "inherit", timeout: 240_000, env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } }).status === 0;
  if (!apt(["install", "-y", "--no-install-recommends", pkg])) apt(["update"]) && apt(["install", "-y", "--no-install-recommends", pkg]);
}

const zig = findZig();
if (filter.length === 0) {
  for (const [label, step] of [["zig unit tests", "test"], ["zig cross builds (x86_64/aarch64, gnu/musl)", "cross"]]) {
    await check(label, zig, ["build", step, "-Doptimize=ReleaseSafe"], join(root, "zig"));
  }
}
const bunArgs = ["test", "test/bun.test.ts", ...(filter.length ? ["-t", filter.join(" ")] : [])];
const bunPass = /^\s*(\d+) pass$/gm, bunFail = /^\s*(\d+) fail$/gm;
results.push(tally("bun", await run("bun", bin("bun"), bunArgs), bunPass, bunFail));
// The default read path is io_uring where the kernel allows it: Bun's suite once more on the epoll path.
const epoll = await run("bun, REUSEPORT_IO=epoll", bin("bun"), bunArgs, root, { REUSEPORT_IO: "epoll" });
results.push(tally("bun (epoll)", epoll, bunPass, bunFail));
const denoArgs = ["test", "-A", "--no-check", "--config", "deno.json", ...(filter.length ? ["--filter", filter.join(" ")] : []), "test/deno.test.ts"];
results.push(tally("deno", await run("deno", bin("deno"), denoArgs), /\| (\d+) passed/gm, /\| \d+ passed \| (\d+) failed/gm));

if (filter.length === 0) {
  // A short soak (npm run soak is the long one): rolling reloads under saturating load on each runtime's default path.
  await check("soak (short)", "node", [join(root, "scripts/soak.mjs")], root, { SOAK_RELOADS: "10", SOAK_REQUESTS: "100000", SOAK_MAX_S: "60" });
}
finish();
