// Privilege errors as an unprivileged user sees them: the suite runs as root, so a child of the
// same runtime runs test/fixtures/unprivileged.ts as uid 65534 with every capability dropped,
// or, where uid 65534 cannot read the checkout (a private clone directory), as a root with an
// empty capability bounding set: it lacks CAP_NET_BIND_SERVICE and CAP_BPF just the same.
import { spawn, spawnSync } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { assert, test } from "../_harness.ts";
import { runtimeName } from "../_runtime.ts";
import { libraryFile } from "../../src/ffi/index.ts";
import type { Outcome } from "../fixtures/unprivileged.ts";

const NOBODY = 65534;
const PRIVILEGED_PORT = 1023;
const CHILD_TIMEOUT_MS = 30_000;
const DROP_CAPS = ["--inh-caps=-all", "--bounding-set=-all"];
const AS_NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups", ...DROP_CAPS];
const fixture = fileURLToPath(new URL("../fixtures/unprivileged.ts", import.meta.url));
const repository = fileURLToPath(new URL("../../", import.meta.url));

interface ChildReport {
  uid: number;
  gid: number;
  capEff: string;
  listen: Outcome;
  bpf: Outcome;
}

function sysctl(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined; // no procfs: the caller states what it assumes
  }
}

/** Why the suite cannot run here, or false. Decided before registering, so a skip names its reason. */
function skipReason(): string | false {
  if (process.getuid?.() !== 0) return "needs root to drop privileges in a child; this process is not root";
  const probe = spawnSync("setpriv", ["--version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) return "setpriv (util-linux) is not installed";
  return false;
}

/** uid 65534 when it can reach what the child needs (no chmod: that is the machine owner's call). */
function childUid(): number {
  const needs: [string, string][] = [["-x", process.execPath], ["-r", fixture], ["-r", libraryFile], ["-r", join(repository, "src/index.ts")]];
  const script = needs.map(([flag, path]) => `test ${flag} '${path}' || exit 1`).join("; ");
  return spawnSync("setpriv", [...AS_NOBODY, "sh", "-c", script]).status === 0 ? NOBODY : 0;
}

const skip = skipReason();
const uid = skip ? NOBODY : childUid();
const SETPRIV = uid === NOBODY ? AS_NOBODY : DROP_CAPS;
let cached: ChildReport | undefined;

/** Runs the fixture once as nobody with the same runtime binary and library; later tests reuse the report. */
function childReport(): ChildReport {
  if (cached) return cached;
  const home = mkdtempSync(join(tmpdir(), "reuseport-nobody-"));
  chownSync(home, uid, uid); // DENO_DIR, HOME and TMPDIR must be writable by the child
  try {
    const runtimeArgs = runtimeName === "deno" ? ["run", "-A", "--no-check", fixture] : [fixture];
    const child = spawnSync("setpriv", [...SETPRIV, process.execPath, ...runtimeArgs, String(PRIVILEGED_PORT)], {
      cwd: repository,
      encoding: "utf8",
      timeout: CHILD_TIMEOUT_MS,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: home,
        TMPDIR: home,
        DENO_DIR: home,
        NO_COLOR: "1",
        REUSEPORT_LIBRARY: libraryFile,
      },
    });
    const line = child.stdout.split("\n").find((text) => text.startsWith("{"));
    assert.ok(line, `child printed no JSON (status ${child.status}, signal ${child.signal}):\n${child.stdout}\n${child.stderr}`);
    cached = JSON.parse(line) as ChildReport;
    return cached;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

test("privileges: the child runs without capabilities (as uid 65534 where it can read the checkout)", () => {
  const report = childReport();
  assert.equal(report.uid, uid);
  assert.equal(report.gid, uid);
  assert.equal(report.capEff, "0000000000000000");
}, { skip, timeoutMs: CHILD_TIMEOUT_MS + 10_000 });

test(`privileges: unprivileged listen on 127.0.0.1:${PRIVILEGED_PORT} fails with bind EACCES naming the address`, () => {
  const { listen } = childReport();
  const start = Number(sysctl("/proc/sys/net/ipv4/ip_unprivileged_port_start") ?? "1024");
  if (start <= PRIVILEGED_PORT) {
    // net.ipv4.ip_unprivileged_port_start lowered: the kernel lets anyone bind this port.
    assert.deepEqual(listen, { ok: true }, `ip_unprivileged_port_start is ${start}, so the bind should succeed`);
    return;
  }
  assert.equal(listen.ok, false);
  assert.equal(listen.name, "SyscallError");
  assert.equal(listen.code, "EACCES");
  assert.equal(listen.syscall, "bind");
  assert.equal(listen.address, `127.0.0.1:${PRIVILEGED_PORT}`);
  assert.match(listen.message ?? "", new RegExp(`^bind EACCES 127\\.0\\.0\\.1:${PRIVILEGED_PORT} .*CAP_NET_BIND_SERVICE`));
}, { skip, timeoutMs: CHILD_TIMEOUT_MS + 10_000 });

test("privileges: unprivileged BPF load fails with BpfError EPERM saying it needs privilege", () => {
  const { bpf } = childReport();
  const disabled = sysctl("/proc/sys/kernel/unprivileged_bpf_disabled");
  if (disabled === "0") {
    // kernel.unprivileged_bpf_disabled=0 lets any user load SOCKET_FILTER programs.
    assert.deepEqual(bpf, { ok: true }, "unprivileged_bpf_disabled is 0, so the load should succeed");
    return;
  }
  assert.equal(bpf.ok, false, `unprivileged_bpf_disabled is ${disabled ?? "unreadable"}, so the load must fail`);
  assert.equal(bpf.name, "BpfError");
  assert.equal(bpf.code, "EPERM");
  assert.match(bpf.message ?? "", /^bpf\(BPF_PROG_LOAD\) EPERM: .*needs root or CAP_BPF/);
}, { skip, timeoutMs: CHILD_TIMEOUT_MS + 10_000 });

test("privileges: a cluster asked for balance cpu without BPF privilege falls back to hash with one warning", async () => {
  if (sysctl("/proc/sys/kernel/unprivileged_bpf_disabled") === "0") return; // then unprivileged BPF works: nothing to fall back from
  const home = mkdtempSync(join(tmpdir(), "reuseport-nobody-"));
  chownSync(home, uid, uid);
  const clusterFixture = fileURLToPath(new URL("../fixtures/cluster-app.ts", import.meta.url));
  const runtimeArgs = runtimeName === "deno" ? ["run", "-A", "--no-check", clusterFixture] : [clusterFixture];
  const child = spawn("setpriv", [...SETPRIV, process.execPath, ...runtimeArgs], {
    cwd: repository,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, TMPDIR: home, DENO_DIR: home, NO_COLOR: "1",
      REUSEPORT_LIBRARY: libraryFile, REUSEPORT_TEST_CONFIG: JSON.stringify({ workers: 2, balance: "cpu" }),
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready line; stderr: ${stderr}`)), CHILD_TIMEOUT_MS);
      child.stdout!.on("data", (chunk) => {
        stdout += chunk;
        const match = /^ready (\d+)/m.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      child.on("exit", (code) => reject(new Error(`cluster exited ${code}: ${stderr}`)));
    });
    assert.equal((stderr.match(/balance "cpu" needs BPF privilege \(root or CAP_BPF\); falling back to "hash"/g) ?? []).length, 1, stderr);
    assert.match(await (await fetch(`http://127.0.0.1:${port}/`)).text(), /^v1 /);
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
    rmSync(home, { recursive: true, force: true });
  }
}, { skip, timeoutMs: CHILD_TIMEOUT_MS + 10_000 });
