// What a cluster primary sets up on the host: the kernel's request migration, and the removal of
// files that primaries killed with -9 left behind.
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { randomUUID } from "node:crypto";

/** Names of a primary's files: /dev/shm/<name> (stats) and <tmpdir>/<name>.sock (control).
 * The primary's pid is in the name, so leftovers of a dead primary can be told apart. */
export const RUNTIME_FILE = /^reuseport-(\d+)-[0-9a-f]{8}(\.sock)?$/;

export function runtimeFileName(): string {
  return `reuseport-${process.pid}-${randomUUID().slice(0, 8)}`;
}

/** Removes stats files and control sockets left by primaries that died without cleaning up
 * (kill -9): each name carries its primary's pid. */
export function sweepStaleFiles(): void {
  for (const dir of ["/dev/shm", tmpdir()]) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const pid = Number(RUNTIME_FILE.exec(name)?.[1] ?? 0);
      if (pid === 0 || pid === process.pid || processAlive(pid)) continue;
      rmSync(join(dir, name), { force: true });
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"; // alive, someone else's
  }
}

/** Sets net.ipv4.tcp_migrate_req (Linux >= 5.14) so a closing listener hands its queue on. */
export function enableRequestMigration(): "on" | "unavailable" {
  const path = "/proc/sys/net/ipv4/tcp_migrate_req";
  try {
    if (readFileSync(path, "utf8").trim() === "1") return "on";
    writeFileSync(path, "1");
    return "on";
  } catch {
    return "unavailable";
  }
}

