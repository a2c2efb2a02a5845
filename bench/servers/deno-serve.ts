// Contender (3): Deno.serve under deno, the runtime's own HTTP server. Listens on 127.0.0.1, port 0
// (or $PORT), answers every request "Hello", and prints exactly one line `listening <port>` when ready.
// BENCH_EXIT_AFTER_S=N: stop and exit normally after N seconds (for --cpu-prof, which writes on exit).
declare const Deno: any;

const server = Deno.serve(
  {
    port: Number(Deno.env.get("PORT") ?? 0),
    hostname: "127.0.0.1",
    onListen: ({ port }: { port: number }) => console.log(`listening ${port}`),
  },
  () => new Response("Hello"),
);

const exitAfter = Number(Deno.env.get("BENCH_EXIT_AFTER_S") ?? 0);
if (exitAfter > 0) {
  setTimeout(async () => {
    await server.shutdown();
    Deno.exit(0);
  }, exitAfter * 1000);
}

export {}; // a module, so its top-level names stay its own
