// Contender bun-serve: Bun.serve under bun, the runtime's own HTTP server, serving bench/app.ts.
// Listens on 127.0.0.1, port 0 (or $PORT), and prints exactly one line `listening <port>` when ready.
// BENCH_PROCESSES=N (default 1): N processes, each a Bun.serve with reusePort on the same port (the
// scaling table); this one starts the other N-1, prints the line once all listen, and stops them on
// SIGTERM/SIGINT. BENCH_EXIT_AFTER_S=N: stop and exit normally after N seconds (for --cpu-prof).
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { exitAfterIfAsked } from "./_exit-after.ts";
import { fetch } from "../app.ts";
declare const Bun: any;

const LISTEN_TIMEOUT_MS = 20_000;
const processes = Number(process.env.BENCH_PROCESSES ?? 1);
const member = process.env.BENCH_GROUP_MEMBER === "1"; // started by the first process of a group

const server = Bun.serve({
  port: Number(process.env.PORT ?? 0),
  hostname: "127.0.0.1",
  reusePort: processes > 1,
  fetch,
});

/** Starts one more group member on our port; resolves once it listens (bounded wait). */
function startMember(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [import.meta.path], {
    env: { ...process.env, PORT: String(port), BENCH_GROUP_MEMBER: "1" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`group member ${child.pid} did not listen within ${LISTEN_TIMEOUT_MS} ms`)), LISTEN_TIMEOUT_MS);
    child.once("exit", (code) => reject(new Error(`group member exited (${code}) before listening`)));
    createInterface({ input: child.stdout! }).once("line", () => {
      clearTimeout(timer);
      resolve(child);
    });
  });
}

const members: ChildProcess[] = [];
if (!member && processes > 1) {
  for (let i = 1; i < processes; i++) members.push(await startMember(server.port));
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      for (const child of members) child.kill("SIGTERM");
      server.stop(true);
      process.exit(0);
    });
  }
}
console.log(`listening ${server.port}`);

exitAfterIfAsked(() => server.stop(true));

export {}; // a module, so its top-level names stay its own
