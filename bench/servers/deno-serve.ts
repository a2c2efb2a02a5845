// Contender (3): Deno.serve under deno, the runtime's own HTTP server. Listens on 127.0.0.1, port 0
// (or $PORT), answers every request "Hello", and prints exactly one line `listening <port>` when ready.
// BENCH_EXIT_AFTER_S=N: stop and exit normally after N seconds (for --cpu-prof, which writes on exit).
import { exitAfterIfAsked } from "./_exit-after.ts";
declare const Deno: any;

const server = Deno.serve(
  {
    port: Number(Deno.env.get("PORT") ?? 0),
    hostname: "127.0.0.1",
    onListen: ({ port }: { port: number }) => console.log(`listening ${port}`),
  },
  () => new Response("Hello"),
);

exitAfterIfAsked(() => server.shutdown());

export {}; // a module, so its top-level names stay its own
