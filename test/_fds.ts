// The open fds of a process, read from /proc/<pid>/fd, and the per-suite leak check that the harness runs
// after each suite (STYLE.md habit 8: a suite fails on leaked fds).
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

export interface OpenFd {
  fd: number;
  /** What the fd names: `socket:[123]`, `anon_inode:[eventfd]`, `pipe:[45]`, a path. */
  target: string;
}

/** The open fds of a process (this one by default) with what each names. */
export function openFds(pid: number | "self" = "self"): OpenFd[] {
  const fds: OpenFd[] = [];
  for (const entry of readdirSync(`/proc/${pid}/fd`)) {
    try {
      fds.push({ fd: Number(entry), target: readlinkSync(`/proc/${pid}/fd/${entry}`) });
    } catch {
      // closed meanwhile (the directory's own fd, among others)
    }
  }
  return fds;
}

/** The sockets of the kernel's tables by inode, as `tcp 127.0.0.1:80 -> 127.0.0.1:5000 ESTABLISHED` or `unix /path`. */
function socketsByInode(): Map<string, string> {
  const byInode = new Map<string, string>();
  const states: Record<string, string> = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT",
    "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
  };
  const address = (hex: string) => {
    const [host, port] = hex.split(":");
    const ip = host.length === 8 ? host.match(/../g)!.reverse().map((byte) => parseInt(byte, 16)).join(".") : `[${host}]`;
    return `${ip}:${parseInt(port, 16)}`;
  };
  for (const table of ["tcp", "tcp6", "udp", "udp6"]) {
    let text = "";
    try {
      text = readFileSync(`/proc/net/${table}`, "utf8");
    } catch {
      continue; // no such table (no IPv6)
    }
    for (const line of text.split("\n").slice(1)) {
      const columns = line.trim().split(/\s+/);
      if (columns.length < 10) continue;
      const state = table.startsWith("tcp") ? ` ${states[columns[3]] ?? columns[3]}` : "";
      byInode.set(columns[9], `${table} ${address(columns[1])} -> ${address(columns[2])}${state}`);
    }
  }
  const tables = [["unix", 6, 7], ["netlink", 9, -1]] as const; // [table, inode column, path column]
  for (const [table, inodeColumn, pathColumn] of tables) {
    let text = "";
    try {
      text = readFileSync(`/proc/net/${table}`, "utf8");
    } catch {
      continue; // no such table
    }
    for (const line of text.split("\n").slice(1)) {
      const columns = line.trim().split(/\s+/);
      if (columns.length <= inodeColumn) continue;
      byInode.set(columns[inodeColumn], `${table}${pathColumn >= 0 && columns[pathColumn] ? ` ${columns[pathColumn]}` : ""}`);
    }
  }
  return byInode;
}

/** One line per fd, with what a socket is connected to where the kernel's tables say. */
export function describeFds(fds: OpenFd[]): string {
  const sockets = socketsByInode();
  return fds.map(({ fd, target }) => {
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    const socket = inode === undefined ? undefined : sockets.get(inode);
    const where = socket ? ` (${socket})` : inode ? " (in no table: a closed TCP socket, or another protocol)" : "";
    return `fd ${fd} ${target}${where}`;
  }).join("\n");
}
