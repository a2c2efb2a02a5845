// The accept path when the process runs out of file descriptors: the listener rests and the connections wait
// in the kernel's queue (nothing is rejected), and they are taken once fds are free again. The server runs
// in a child with a low RLIMIT_NOFILE, so that only it runs out.
import process from "node:process";
import { spawn } from "node:child_process";
import { connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { assert, test } from "../_harness.ts";
import { ClusterChild } from "../_cluster.ts";
import { crashLine } from "../_load.ts";
import { runtimeName } from "../_runtime.ts";

const SERVER = fileURLToPath(new URL("../fixtures/slow-server.ts", import.meta.url));
const FILES_MAX = 512;
const CLIENTS = 640;

interface Counters {
  accepted: number;
  active: number;
  acceptErrors: number;
  rejectedConnections: number;
}

test("accept: out of fds, connections wait in the queue, none is counted rejected, all are taken later", async () => {
  const args = runtimeName === "deno" ? ["run", "-A", "--no-check", SERVER] : [SERVER];
  const child = spawn("bash", ["-c", `ulimit -n ${FILES_MAX} && exec "$0" "$@"`, process.execPath, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  const server = new ClusterChild(child);
  const sockets: Socket[] = [];
  try {
    const port = Number((await server.line((l) => l.startsWith("ready "), 20_000)).split(" ")[1]);
    const stats = async (): Promise<Counters> => {
      server.command("stats");
      return JSON.parse((await server.line((l) => l.startsWith("stats "))).slice(6));
    };
    /** Stats round trips until predicate holds (at most 10 s). */
    const until = async (predicate: (s: Counters) => boolean): Promise<Counters> => {
      const deadline = Date.now() + 10_000;
      let s = await stats();
      while (!predicate(s) && Date.now() < deadline) s = await stats();
      return s;
    };
    for (let i = 0; i < CLIENTS; i++) {
      const socket = connect({ host: "127.0.0.1", port });
      socket.on("error", () => {});
      sockets.push(socket);
    }
    // The accepts fail (EMFILE) and rest several times while the rest of the clients wait.
    const starved = await until((s) => s.acceptErrors >= 3);
    assert.ok(starved.acceptErrors >= 3, JSON.stringify(starved));
    assert.ok(starved.accepted < CLIENTS, JSON.stringify(starved));
    assert.equal(starved.rejectedConnections, 0, `nothing was rejected: ${JSON.stringify(starved)}`);
    // Half the clients leave: their fds free up, and the waiting connections are accepted.
    for (const socket of sockets.splice(0, CLIENTS / 2)) socket.destroy();
    const recovered = await until((s) => s.accepted === CLIENTS);
    assert.equal(recovered.accepted, CLIENTS, JSON.stringify(recovered));
    assert.equal(recovered.rejectedConnections, 0, JSON.stringify(recovered));
    assert.equal(crashLine(server.stderr), null, server.stderr.slice(-1500));
  } finally {
    for (const socket of sockets) socket.destroy();
    server.signal("SIGKILL");
    await server.exited;
  }
}, { timeoutMs: 60_000 });
