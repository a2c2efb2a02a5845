// Test helpers over the net layer: open groups, connect clients, accept everything pending.
import { Listener, type ListenOptions } from "../src/net/listener.ts";
import { connect, closeFd, pendingError } from "../src/net/socket.ts";
import type { SocketAddress } from "../src/net/address.ts";
import { PollLoop } from "../src/net/poll-loop.ts";
import { EPOLLIN, EPOLLOUT } from "../src/net/constants.ts";
import { errnoName } from "../src/ffi/errno.ts";
import process from "node:process";

/** Opens n listeners on one port: the first on port 0, the rest on the port it got. */
export async function openGroup(n: number, options: ListenOptions = {}): Promise<Listener[]> {
  const first = await Listener.open({ hostname: "127.0.0.1", port: 0, ...options });
  const group = [first];
  for (let i = 1; i < n; i++) group.push(await Listener.open({ hostname: "127.0.0.1", ...options, port: first.port }));
  return group;
}

/** Connects count clients; returns their fds (the caller closes them). */
export function connectMany(target: SocketAddress, count: number): number[] {
  const fds: number[] = [];
  for (let i = 0; i < count; i++) fds.push(connect(target));
  return fds;
}

/** Accepts until `expected` connections arrived over the group (waiting on epoll, at most
 * 5 s); returns the count per listener and closes the accepted fds. */
export function acceptAll(group: Listener[], expected: number): number[] {
  const counts = group.map(() => 0);
  const loop = new PollLoop(64);
  group.forEach((listener, i) => loop.add(listener.fd, EPOLLIN, i));
  const deadline = Date.now() + 5000;
  let total = 0;
  try {
    while (total < expected && Date.now() < deadline) {
      const ready = loop.wait(100);
      for (let e = 0; e < ready; e++) {
        const i = loop.eventToken(e);
        for (let conn = group[i].accept(); conn; conn = group[i].accept()) {
          closeFd(conn.fd);
          counts[i]++;
          total++;
        }
      }
    }
  } finally {
    loop.close();
  }
  return counts;
}

export function closeAll(group: Listener[], fds: number[] = []): void {
  for (const listener of group) listener.close();
  for (const fd of fds) closeFd(fd);
}

export const isRoot = typeof process !== "undefined" && process.getuid?.() === 0;

/** Waits (at most 5 s) until a nonblocking connect finished; returns its errno name or "OK". */
export function connectOutcome(fd: number): string {
  const loop = new PollLoop(4);
  try {
    loop.add(fd, EPOLLOUT, 0);
    loop.wait(5000);
  } finally {
    loop.close();
  }
  const errno = pendingError(fd);
  return errno === 0 ? "OK" : errnoName(errno);
}

export { openFds } from "./_fds.ts";
