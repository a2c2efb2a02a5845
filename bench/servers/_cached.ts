// Contenders (2) and (4): reuseport's serve() under bun and under deno (same file for both).
// Listens on 127.0.0.1, port 0 (or $PORT), answers every request "Hello", and prints exactly one
// line `listening <port>` when ready.
// BENCH_EXIT_AFTER_S=N: stop and exit normally after N seconds (for --cpu-prof, which writes on exit).
import { exitAfterIfAsked } from "./_exit-after.ts";
import process from "node:process";
import { serve } from "../../src/index.ts";

const cached = new Response("Hello");
const server = serve({
  port: Number(process.env.PORT ?? 0),
  hostname: "127.0.0.1",
  fetch: () => cached,
});
console.log(`listening ${server.port}`);

exitAfterIfAsked(() => server.stop({ graceful: false }));

export {}; // a module, so its top-level names stay its own
