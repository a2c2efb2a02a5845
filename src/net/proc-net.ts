// The kernel's socket tables (/proc/net/{tcp,udp}{,6}), what `ss` reads, and its TCP counters
// (/proc/net/netstat, what `nstat` reads): parsed once here.
import { readFileSync } from "node:fs";

export interface ProcNetSocket {
  localPort: number;
  /** Hex TCP state as the kernel prints it ("0A" = LISTEN); "07" for unconnected UDP. */
  state: string;
  inode: string;
  /** Datagrams dropped before they were read (UDP tables only; 0 for TCP). */
  drops: number;
  /** A TCP LISTEN socket: connections waiting in its accept queue; otherwise bytes queued to read. */
  rxQueue: number;
}

/** Every socket in the IPv4 and IPv6 tables of a protocol (none without procfs). */
export function procNetSockets(protocol: "tcp" | "udp"): ProcNetSocket[] {
  const sockets: ProcNetSocket[] = [];
  for (const table of [`/proc/net/${protocol}`, `/proc/net/${protocol}6`]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue; // no procfs, or no IPv6: nothing to list
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
      const columns = line.trim().split(/\s+/);
      if (columns.length < 10) continue;
      const local = columns[1];
      sockets.push({
        localPort: parseInt(local.slice(local.lastIndexOf(":") + 1), 16),
        state: columns[3],
        inode: columns[9],
        drops: protocol === "udp" ? Number(columns[12] ?? 0) : 0,
        rxQueue: parseInt(columns[4].slice(columns[4].indexOf(":") + 1), 16), // tx_queue:rx_queue
      });
    }
  }
  return sockets;
}

/**
 * The TcpExt counters of /proc/net/netstat (ListenOverflows, ListenDrops, ...): totals since boot for
 * this network namespace, every socket in it. Null without procfs.
 */
export function tcpExtCounters(): Map<string, number> | null {
  let text: string;
  try {
    text = readFileSync("/proc/net/netstat", "utf8");
  } catch {
    return null;
  }
  // Pairs of lines: "TcpExt: <names...>" then "TcpExt: <values...>".
  const lines = text.split("\n");
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i].startsWith("TcpExt:") || !lines[i + 1].startsWith("TcpExt:")) continue;
    const names = lines[i].trim().split(/\s+/).slice(1);
    const values = lines[i + 1].trim().split(/\s+/).slice(1);
    return new Map(names.map((name, index) => [name, Number(values[index])]));
  }
  return null;
}
