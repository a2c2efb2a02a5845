// What a cluster primary sets up on the host: the kernel's request migration, the private directory
// of its control socket, and the removal of files that primaries killed with -9 left behind.
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { randomUUID } from "node:crypto";
import { SyscallError } from "../ffi/errno.ts";

/** Names of a primary's files: /dev/shm/<name> (stats) and <tmpdir>/<name>/ (the 0700 directory of
 * its control socket; <name>.sock there is an earlier version's socket). The primary's pid is in
 * the name, so leftovers of a dead primary can be told apart. */
export const RUNTIME_FILE = /^reuseport-(\d+)-[0-9a-f]{8}(\.sock)?$/;

export function runtimeFileName(): string {
  return `reuseport-${process.pid}-${randomUUID().slice(0, 8)}`;
}

/** Creates <tmpdir>/<name> with mode 0700 (never one that already exists: whoever made it could
 * reach what is inside); returns its path. */
export function privateDirectory(name: string): string {
  const path = join(tmpdir(), name);
  try {
    mkdirSync(path, { mode: 0o700 });
    chmodSync(path, 0o700); // the umask can only have narrowed it; this makes it exact
  } catch (error) {
    throw fsError(error, "mkdir", path);
  }
  return path;
}

/**
 * Removes stats files and control directories left by primaries that died without cleaning up
 * (kill -9): each name carries its primary's pid. Never throws: what it may not remove (another
 * user's, or not the kind of entry a primary makes there) is left alone and named once on stderr.
 */
export function sweepStaleFiles(): void {
  const uid = process.getuid?.() ?? -1;
  const tmp = tmpdir();
  const skipped: string[] = [];
  for (const dir of new Set(["/dev/shm", tmp])) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const pid = Number(RUNTIME_FILE.exec(name)?.[1] ?? 0);
      if (pid === 0 || pid === process.pid || processAlive(pid)) continue;
      const path = join(dir, name);
      try {
        const entry = lstatSync(path);
        const made = (dir === "/dev/shm" && entry.isFile()) || (dir === tmp && (entry.isDirectory() || entry.isSocket()));
        if (entry.uid !== uid) skipped.push(`${path} (owned by uid ${entry.uid})`);
        else if (!made) skipped.push(`${path} (not what a primary makes there)`);
        else rmSync(path, { recursive: entry.isDirectory(), force: true });
      } catch (error) {
        skipped.push(`${path} (${(error as { code?: string }).code ?? error})`);
      }
    }
  }
  if (skipped.length > 0) console.warn(`reuseport: left stale entries it may not remove: ${skipped.join(", ")}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"; // alive, someone else's
  }
}

/** A node:fs error as a SyscallError (its errno is negative on every runtime). */
function fsError(error: unknown, syscall: string, path: string): Error {
  const errno = (error as { errno?: number }).errno;
  return typeof errno === "number" ? new SyscallError(syscall, Math.abs(errno), path) : (error as Error);
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
