// `reuseport doctor`: what this machine gives a reuseport server (kernel, limits, sysctls, BPF).
import { readFileSync } from "node:fs";
import { release } from "node:os";
import { allowedCpus, getFileLimit } from "../os.ts";
import { constantProgram, loadProgram, PROG_TYPE_SOCKET_FILTER } from "../net/bpf.ts";
import { lib } from "../ffi/index.ts";
import { errnoName } from "../ffi/errno.ts";
import { probeRing } from "../net/poll-loop.ts";

function sysctl(name: string): string {
  try {
    return readFileSync(`/proc/sys/${name.replaceAll(".", "/")}`, "utf8").trim();
  } catch {
    return "unavailable";
  }
}

function bpfAvailable(): string {
  try {
    lib.rp_close(loadProgram(PROG_TYPE_SOCKET_FILTER, constantProgram(0)));
    return "yes (cpu and least-connections steering available)";
  } catch (error) {
    return `no: ${(error as Error).message.split("\n")[0]} (balance falls back to hash)`;
  }
}

/** Whether HTTP servers here read through io_uring (src/net/poll-loop.ts) or fall back to epoll. */
function ringAvailable(): string {
  const rc = probeRing();
  if (rc < 0) return `no: io_uring_setup ${errnoName(-rc)} (HTTP reads use epoll; kernel 6.1+ without a seccomp block needed)`;
  return "yes (HTTP reads use multishot recv; REUSEPORT_IO=epoll turns it off)";
}

export function doctor(): void {
  const limit = getFileLimit();
  const rows: [string, string][] = [
    ["kernel", release()],
    ["cpus allowed", String(allowedCpus().length)],
    ["RLIMIT_NOFILE", `soft ${limit.soft}, hard ${limit.hard} (the primary raises soft to min(hard, 100000))`],
    ["net.core.somaxconn", `${sysctl("net.core.somaxconn")} (listen backlog cap; default backlog 4096)`],
    ["net.ipv4.tcp_migrate_req", `${sysctl("net.ipv4.tcp_migrate_req")} (1: a closing listener hands its queue on; needed for zero-drop reloads with hash balance)`],
    ["net.ipv4.ip_unprivileged_port_start", sysctl("net.ipv4.ip_unprivileged_port_start")],
    ["kernel.unprivileged_bpf_disabled", sysctl("kernel.unprivileged_bpf_disabled")],
    ["BPF program load", bpfAvailable()],
    ["io_uring", ringAvailable()],
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
