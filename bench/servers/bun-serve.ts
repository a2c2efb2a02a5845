// Contender (1): Bun.serve under bun, the runtime's own HTTP server. Listens on 127.0.0.1, port 0
// (or $PORT), answers every request "Hello", and prints exactly one line `listening <port>` when ready.
// BENCH_EXIT_AFTER_S=N: stop and exit normally after N seconds (for --cpu-prof, which writes on exit).
import { exitAfterIfAsked } from "./_exit-after.ts";
declare const Bun: any;

const server = Bun.serve({
  port: Number(process.env.PORT ?? 0),
  hostname: "127.0.0.1",
  fetch: () => new Response("Hello"),
});
console.log(`listening ${server.port}`);

exitAfterIfAsked(() => server.stop(true));

export {}; // a module, so its top-level names stay its own
