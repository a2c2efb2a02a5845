#!/usr/bin/env node
// The Autobahn testsuite (RFC 6455 and RFC 7692 conformance) against our WebSocket echo server
// (test/fixtures/ws-echo.ts), on both runtimes, in both idioms, beside the runtimes' own servers as the
// reference. The suite is Python 2: it runs with the pyenv Python 2.7 of these machines, installed with
// `pip install --target .tools/autobahn` (git-ignored); without a Python 2.7 it is skipped, never faked.
//
// Usage: node scripts/autobahn.mjs [--quick] [filter...]   (`npm run autobahn`)
//   --quick   the case set of `npm test` (test/suites/ws-autobahn.ts) instead of every case;
//   filter    only configurations whose name (e.g. "bun/deno/reuseport": runtime/idiom/impl) contains one.
// Prints one table per configuration and exits non-zero on any FAILED case or a server that crashed.
// The test suite imports findPython2(), ensureAutobahn(), runFuzzing() and startEcho() from here.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const TARGET = join(root, ".tools/autobahn");
const MARKER = join(TARGET, "installed.json");
const ECHO = join(root, "test/fixtures/ws-echo.ts");
const INSTALL_TIMEOUT_MS = 600_000;
const CHECK_TIMEOUT_MS = 60_000;
const LISTEN_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
/** The whole fuzzingclient run of one configuration; the full case set takes minutes on 2 vCPUs. */
export const FUZZING_TIMEOUT_MS = 1_200_000;

/**
 * The last versions that install and run under Python 2.7 (autobahn 0.10.x is what autobahntestsuite 0.8.2
 * was written against; the others are their last Python 2 releases). Pinned, so that a new release of any
 * of them cannot break the install.
 */
const PINS = [
  "autobahntestsuite==0.8.2", "autobahn==0.10.9", "txaio==2.1.0", "Twisted==20.3.0", "zope.interface==5.5.2",
  "klein==20.6.0", "Werkzeug==1.0.1", "Tubes==0.2.1", "hyperlink==21.0.0", "idna==2.10", "incremental==22.10.0",
  "Automat==22.10.0", "constantly==15.1.0", "attrs==21.4.0", "PyHamcrest==1.10.1", "six==1.17.0", "typing==3.10.0.0",
  "jinja2==2.11.3", "markupsafe==1.1.1", "pyopenssl==21.0.0", "cryptography==3.3.2", "cffi==1.15.1", "pycparser==2.21",
  "enum34==1.1.10", "ipaddress==1.0.23", "service-identity==21.1.0", "pyasn1==0.5.1", "pyasn1-modules==0.3.0",
  "unittest2==1.1.0", "traceback2==1.4.0", "linecache2==1.0.0", "argparse==1.4.0", "setuptools==44.1.1",
  "wsaccel==0.6.6", "ujson==2.0.3",
];

/**
 * Runs wstest from the target folder: addsitedir (not PYTHONPATH) so that the .pth files of namespace
 * packages (zope.*) are read.
 */
const WSTEST_BOOT = "import os, site, sys; site.addsitedir(os.environ['AUTOBAHN_SITE']); sys.argv[0] = 'wstest'; " +
  "from autobahntestsuite.wstest import run; sys.exit(run())";

/** Every case of groups 1-7, 9.1-9.2, 10, and the deflate groups 12.1/13.1. */
export const FULL_CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.1.*", "9.2.*", "10.*", "12.1.*", "13.1.*"];
/** The set `npm test` runs: every case of groups 1-7 and 10, the smaller sizes of 9.1/9.2, 12.1 and 13.1. */
export const QUICK_CASES = [
  "1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.1.1", "9.1.2", "9.1.3", "9.2.1", "9.2.2", "9.2.3", "10.*",
  "12.1.1", "12.1.2", "12.1.3", "12.1.4", "12.1.5", "13.1.1", "13.1.2", "13.1.3", "13.1.4", "13.1.5",
];

/** The pyenv Python 2.7 (the newest 2.7.x under $PYENV_ROOT or ~/.pyenv), else python2.7 on PATH, else null. */
export function findPython2() {
  const versions = join(process.env.PYENV_ROOT ?? join(homedir(), ".pyenv"), "versions");
  if (existsSync(versions)) {
    const found = readdirSync(versions).filter((name) => /^2\.7(\.\d+)?$/.test(name))
      .sort((a, b) => Number(a.split(".")[2] ?? 0) - Number(b.split(".")[2] ?? 0))
      .map((name) => join(versions, name, "bin/python2.7")).filter((path) => existsSync(path));
    if (found.length > 0) return found.at(-1);
  }
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && existsSync(join(dir, "python2.7"))) return join(dir, "python2.7");
  }
  return null;
}

/** Runs a command to its end (killed after timeoutMs); resolves {code, output} with stdout and stderr together. */
function runBounded(command, args, { timeoutMs, env = {}, cwd = root, echo = false }) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const take = (chunk) => {
      output += chunk;
      if (echo) process.stderr.write(chunk);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => (output += `\n${error.message}`));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal === "SIGKILL" ? 124 : 128), output });
    });
  });
}

/**
 * Installs autobahntestsuite (once: a marker records the pins and the Python it was installed for) and
 * returns how to run wstest: {command, args, env}, to which the caller appends wstest's own arguments;
 * or {skip: reason} where no Python 2.7 exists. Throws when the install or the check run fails.
 */
export async function ensureAutobahn() {
  const python = findPython2();
  if (python === null) return { skip: "no Python 2.7 (looked in $PYENV_ROOT/versions, ~/.pyenv/versions and PATH)" };
  const wstest = { command: python, args: ["-c", WSTEST_BOOT], env: { AUTOBAHN_SITE: TARGET } };
  const wanted = JSON.stringify({ python, pins: PINS });
  if (existsSync(MARKER) && readFileSync(MARKER, "utf8") === wanted) return wstest;
  // Into a fresh folder beside the target, renamed once it works: an interrupted install leaves no half target.
  mkdirSync(dirname(TARGET), { recursive: true });
  const staging = mkdtempSync(`${TARGET}.staging-`);
  try {
    const pip = await runBounded(python, ["-m", "pip", "install", "--disable-pip-version-check", "--no-warn-script-location",
      "--target", staging, ...PINS], { timeoutMs: INSTALL_TIMEOUT_MS });
    if (pip.code !== 0) throw new Error(`pip install autobahntestsuite failed (exit ${pip.code}):\n${pip.output.slice(-3000)}`);
    const check = await runBounded(python, [...wstest.args, "--help"], { timeoutMs: CHECK_TIMEOUT_MS, env: { AUTOBAHN_SITE: staging } });
    if (check.code !== 0 || !check.output.includes("fuzzingclient")) {
      throw new Error(`wstest --help failed after the install (exit ${check.code}):\n${check.output.slice(-3000)}`);
    }
    rmSync(TARGET, { recursive: true, force: true });
    renameSync(staging, TARGET);
    writeFileSync(MARKER, wanted);
    return wstest;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** A case whose outcome (or its closing handshake's) the suite calls a failure. */
export function isFailed({ behavior, behaviorClose }) {
  return behavior === "FAILED" || behaviorClose === "FAILED";
}

/**
 * Runs the fuzzingclient against url for the case patterns (wstest's "1.*" form) and returns
 * {cases: {id: {behavior, behaviorClose, remoteCloseCode, duration, reason}}, output}; reason is the case
 * report's result for a FAILED case, else null. outDir receives spec.json and the reports.
 */
export async function runFuzzing({ url, cases, excludeCases = [], outDir, wstest, timeoutMs = FUZZING_TIMEOUT_MS }) {
  wstest ??= await ensureAutobahn();
  if (wstest.skip) throw new Error(`autobahn: ${wstest.skip}`);
  const reports = join(outDir, "reports/servers");
  rmSync(reports, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const spec = { outdir: reports, servers: [{ agent: "testee", url }], cases, "exclude-cases": excludeCases, "exclude-agent-cases": {} };
  writeFileSync(join(outDir, "spec.json"), JSON.stringify(spec, null, 2));
  const run = await runBounded(wstest.command, [...wstest.args, "-m", "fuzzingclient", "-s", join(outDir, "spec.json")],
    { timeoutMs, env: wstest.env, cwd: outDir });
  const index = join(reports, "index.json");
  if (run.code !== 0 || !existsSync(index)) {
    throw new Error(`wstest fuzzingclient ${url} exited ${run.code}${run.code === 124 ? ` (killed after ${timeoutMs} ms)` : ""}` +
      `${existsSync(index) ? "" : ", no report"}:\n${run.output.slice(-3000)}`);
  }
  const results = {};
  for (const [id, entry] of Object.entries(JSON.parse(readFileSync(index, "utf8")).testee ?? {})) {
    const { behavior, behaviorClose, remoteCloseCode, duration, reportfile } = entry;
    results[id] = { behavior, behaviorClose, remoteCloseCode, duration, reason: isFailed(entry) ? failureReason(join(reports, reportfile)) : null };
  }
  return { cases: results, output: run.output };
}

/** The case report's own words: its result, its closing handshake's where that one failed, and the server's close code. */
function failureReason(reportPath) {
  try {
    const report = JSON.parse(readFileSync(reportPath, "utf8"));
    const close = report.behaviorClose === "FAILED" ? ` | close: ${report.resultClose}` : "";
    const closedWith = report.remoteCloseCode === null ? "" : ` (the server closed with ${report.remoteCloseCode} "${report.remoteCloseReason ?? ""}")`;
    return `${report.result}${close}${closedWith}`;
  } catch (error) {
    return `(no case report: ${error.message})`;
  }
}

/** Case ids in the suite's order (1.1.2 before 1.1.10). */
export function caseOrder(a, b) {
  const x = a.split(".").map(Number);
  const y = b.split(".").map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? -1) !== (y[i] ?? -1)) return (x[i] ?? -1) - (y[i] ?? -1);
  return 0;
}

/**
 * Starts test/fixtures/ws-echo.ts under a runtime ({executable, args: what precedes the file}) and waits
 * for its `PORT n` line. Returns {port, stop()}; stop() ends it and resolves {crashed, reason, output}:
 * crashed when it exited before stop() or printed a panic or a segmentation fault.
 */
export async function startEcho({ executable, runtimeArgs = [], idiom, impl }) {
  const child = spawn(executable, [...runtimeArgs, ECHO, idiom, impl], { cwd: root, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let exit = null;
  const exited = new Promise((resolve) => child.on("close", (code, signal) => resolve((exit = { code, signal }))));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ws-echo ${idiom} ${impl}: no PORT line within ${LISTEN_TIMEOUT_MS} ms:\n${output.slice(-2000)}`)), LISTEN_TIMEOUT_MS);
    const take = (chunk) => {
      output += chunk;
      const match = /^PORT (\d+)$/m.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`ws-echo ${idiom} ${impl} exited (${exit.code ?? exit.signal}) before listening:\n${output.slice(-2000)}`));
    });
  }).catch((error) => {
    child.kill("SIGKILL");
    throw error;
  });
  const stop = async () => {
    const before = exit;
    if (before === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    const crashText = /panic|Segmentation fault/i.exec(output);
    const reason = before !== null ? `exited (${before.code ?? before.signal}) during the run` : crashText ? `printed "${crashText[0]}"` : null;
    return { crashed: reason !== null, reason, output };
  };
  return { port, stop };
}

/** The runtimes' executables from node_modules/.bin, and what precedes the file in their command line. */
const RUNTIMES = {
  bun: { executable: join(root, "node_modules/.bin/bun"), runtimeArgs: [] },
  deno: { executable: join(root, "node_modules/.bin/deno"), runtimeArgs: ["run", "-A", "--no-check"] },
};

/** Every configuration: each runtime's own server in its own idiom, and ours in both idioms on both runtimes. */
export const CONFIGURATIONS = [
  { runtime: "bun", idiom: "bun", impl: "native" },
  { runtime: "bun", idiom: "bun", impl: "reuseport" },
  { runtime: "bun", idiom: "deno", impl: "reuseport" },
  { runtime: "deno", idiom: "deno", impl: "native" },
  { runtime: "deno", idiom: "bun", impl: "reuseport" },
  { runtime: "deno", idiom: "deno", impl: "reuseport" },
];

const BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"];

/** One configuration's table: counts per behavior, then each FAILED case with its reason; returns whether it passed. */
function printTable(name, cases, crash) {
  const ids = Object.keys(cases).sort(caseOrder);
  const counts = Object.fromEntries(BEHAVIORS.map((b) => [b, 0]));
  for (const id of ids) {
    const shown = isFailed(cases[id]) ? "FAILED" : cases[id].behavior;
    counts[shown] = (counts[shown] ?? 0) + 1;
  }
  console.log(`\n== ${name}: ${ids.length} cases`);
  console.log(Object.entries(counts).map(([b, n]) => `${b.padStart(13)} ${String(n).padStart(4)}`).join("\n"));
  for (const id of ids.filter((i) => isFailed(cases[i]))) {
    console.log(`  FAILED ${id} (${cases[id].behavior}/${cases[id].behaviorClose}): ${cases[id].reason}`);
  }
  if (crash.crashed) console.log(`  SERVER CRASHED: ${crash.reason}\n${crash.output.slice(-2000)}`);
  return counts.FAILED === 0 && !crash.crashed;
}

/** One configuration end to end; returns whether it passed (a server that does not start fails it). */
async function runConfiguration(configuration, cases, wstest, outRoot) {
  const name = `${configuration.runtime}/${configuration.idiom}/${configuration.impl}`;
  const started = Date.now();
  let echo;
  try {
    echo = await startEcho({ ...RUNTIMES[configuration.runtime], idiom: configuration.idiom, impl: configuration.impl });
  } catch (error) {
    console.log(`\n== ${name}: the server did not start\n${error.message}`);
    return false;
  }
  let result;
  try {
    result = await runFuzzing({ url: `ws://127.0.0.1:${echo.port}`, cases, outDir: join(outRoot, name.replaceAll("/", "-")), wstest });
  } catch (error) {
    const crash = await echo.stop();
    console.log(`\n== ${name}: ${error.message}${crash.crashed ? `\n  SERVER CRASHED: ${crash.reason}` : ""}`);
    return false;
  }
  const passed = printTable(name, result.cases, await echo.stop());
  console.log(`  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return passed;
}

async function main() {
  const args = process.argv.slice(2);
  const cases = args.includes("--quick") ? QUICK_CASES : FULL_CASES;
  const filters = args.filter((a) => !a.startsWith("--"));
  const wstest = await ensureAutobahn();
  if (wstest.skip) {
    console.log(`autobahn: skipped: ${wstest.skip}`);
    return;
  }
  const outRoot = join(tmpdir(), "reuseport-autobahn");
  console.log(`autobahn: cases ${cases.join(" ")}; reports under ${outRoot}`);
  let failed = 0;
  for (const configuration of CONFIGURATIONS) {
    const name = `${configuration.runtime}/${configuration.idiom}/${configuration.impl}`;
    if (filters.length > 0 && !filters.some((f) => name.includes(f))) continue;
    if (!(await runConfiguration(configuration, cases, wstest, outRoot))) failed++;
  }
  console.log(failed === 0 ? "\nautobahn: no FAILED case, no crash" : `\nautobahn: ${failed} configuration(s) failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
