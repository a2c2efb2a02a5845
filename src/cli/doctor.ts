// `reuseport doctor [--json]`: what this machine gives a reuseport server (kernel, limits, sysctls, BPF,
// io_uring), as lines for people or one JSON document for scripts (keys documented in the command's help).
import { readFileSync } from "node:fs";
import { release } from "node:os";
import { allowedCpus, autoWorkerCount, cpuQuota, getFileLimit } from "../os.ts";
import { constantProgram, loadProgram, PROG_TYPE_SOCKET_FILTER } from "../net/bpf.ts";
import { lib } from "../ffi/index.ts";
import { errnoName } from "../ffi/errno.ts";
import { probeRing } from "../net/poll-loop.ts";
import { ConfigError } from "../errors.ts";

function sysctl(name: string): string {
  try {
    return readFileSync(`/proc/sys/${name.replaceAll(".", "/")}`, "utf8").trim();
  } catch {
    return "unavailable";
  }
}

interface Capability {
  available: boolean;
  detail: string;
}

function bpfAvailable(): Capability {
  try {
    lib.rp_close(loadProgram(PROG_TYPE_SOCKET_FILTER, constantProgram(0)));
    return { available: true, detail: "cpu and least-connections steering available" };
  } catch (error) {
    return { available: false, detail: `${(error as Error).message.split("\n")[0]} (balance falls back to hash)` };
  }
}

/** Whether HTTP servers here read through io_uring (src/net/poll-loop.ts) or fall back to epoll. */
function ringAvailable(): Capability {
  const rc = probeRing();
  if (rc < 0) return { available: false, detail: `io_uring_setup ${errnoName(-rc)} (HTTP reads use epoll; kernel 6.1+ without a seccomp block needed)` };
  return { available: true, detail: "HTTP reads use multishot recv; REUSEPORT_IO=epoll turns it off" };
}

const SYSCTLS = ["net.core.somaxconn", "net.ipv4.tcp_migrate_req", "net.ipv4.ip_unprivileged_port_start", "kernel.unprivileged_bpf_disabled"];

/** The machine as one document (the --json output; its keys are what the help lists). */
export function doctorReport() {
  const limit = getFileLimit();
  return {
    kernel: release(),
    cpusAllowed: allowedCpus().length,
    cpuQuota: cpuQuota(),
    autoWorkers: autoWorkerCount(),
    fileLimit: { soft: limit.soft, hard: limit.hard },
    sysctls: Object.fromEntries(SYSCTLS.map((name) => [name, sysctl(name)])),
    bpf: bpfAvailable(),
    ioUring: ringAvailable(),
  };
}

const said = (c: Capability) => `${c.available ? "yes" : "no"}: ${c.detail}`;

export function doctor(args: string[] = []): void {
  for (const arg of args) if (arg !== "--json") throw new ConfigError(arg, "is not a reuseport doctor option (--json)");
  const report = doctorReport();
  if (args.includes("--json")) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const { sysctls } = report;
  const rows: [string, string][] = [
    ["kernel", report.kernel],
    ["cpus allowed", String(report.cpusAllowed)],
    ["cgroup CPU quota", `${report.cpuQuota === null ? "none" : `${report.cpuQuota} CPUs`} (workers: "auto" starts ${report.autoWorkers})`],
    ["RLIMIT_NOFILE", `soft ${report.fileLimit.soft}, hard ${report.fileLimit.hard} (the primary raises soft to min(hard, 100000))`],
    ["net.core.somaxconn", `${sysctls["net.core.somaxconn"]} (listen backlog cap; default backlog 4096)`],
    ["net.ipv4.tcp_migrate_req", `${sysctls["net.ipv4.tcp_migrate_req"]} (1: a closing listener hands its queue on; needed for zero-drop reloads with hash balance)`],
    ["net.ipv4.ip_unprivileged_port_start", sysctls["net.ipv4.ip_unprivileged_port_start"]],
    ["kernel.unprivileged_bpf_disabled", sysctls["kernel.unprivileged_bpf_disabled"]],
    ["BPF program load", said(report.bpf)],
    ["io_uring", said(report.ioUring)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [key, value] of rows) console.log(`${key.padEnd(width)}  ${value}`);
  // The seed guide's first look when connections go missing: socket counts per protocol.
  try {
    console.log(`\n/proc/net/sockstat:\n${readFileSync("/proc/net/sockstat", "utf8").trimEnd()}`);
  } catch {
    // no procfs: nothing more to show
  }
}
