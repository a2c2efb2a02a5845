// Contender deno-serve: Deno.serve under deno, the runtime's own HTTP server, serving bench/app.ts.
// Listens on 127.0.0.1, port 0 (or $PORT), and prints exactly one line `listening <port>` when ready.
// BENCH_EXIT_AFTER_S=N: stop and exit normally after N seconds (for --cpu-prof, which writes on exit).
import { exitAfterIfAsked } from "./_exit-after.ts";
import { fetch } from "../app.ts";
declare const Deno: any;

const server = Deno.serve(
  {
    port: Number(Deno.env.get("PORT") ?? 0),
    hostname: "127.0.0.1",
    onListen: ({ port }: { port: number }) => console.log(`listening ${port}`),
  },
  fetch,
);

exitAfterIfAsked(() => server.shutdown());

export {}; // a module, so its top-level names stay its own
