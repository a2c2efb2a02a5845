// Contenders ours-bun and ours-deno: reuseport's serve() under bun and under deno (same file for
// both), serving bench/app.ts. Listens on 127.0.0.1, port 0 (or $PORT), and prints exactly one line
// `listening <port>` when ready. BENCH_WORKERS=N (default 1) starts a cluster of N workers in one
// reuseport group (the scaling table); the primary prints the line once every worker listens.
// BENCH_EXIT_AFTER_S=N: stop and exit normally after N seconds (for --cpu-prof, which writes on exit).
import { exitAfterIfAsked } from "./_exit-after.ts";
import process from "node:process";
import { serve } from "../../src/index.ts";
import { fetch } from "../app.ts";

const workers = Number(process.env.BENCH_WORKERS ?? 1);
const options = { port: Number(process.env.PORT ?? 0), hostname: "127.0.0.1", fetch };
const server = workers > 1 ? serve({ ...options, workers }) : serve(options);
if (server.role === "primary") {
  await server.listening;
  console.log(`listening ${server.port}`);
} else if (server.role === "single") {
  console.log(`listening ${server.port}`);
}

exitAfterIfAsked(() => server.stop({ graceful: false }));

export {}; // a module, so its top-level names stay its own
