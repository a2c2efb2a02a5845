// The example `npm start` runs: one worker per CPU in one SO_REUSEPORT group on $PORT (default
// 3000). Every worker re-runs this file, and the same serve() call becomes a worker there.
//   curl http://127.0.0.1:3000/          -> Hello
//   curl http://127.0.0.1:3000/pid       -> which worker process answered
//   curl http://127.0.0.1:9090/metrics   -> Prometheus exposition of every worker (primary)
//   kill -HUP <primary pid>              -> rolling restart; kill -TERM -> graceful stop
import process from "node:process";
import { serve } from "../src/index.ts";

const server = serve({
  workers: "auto",
  metrics: { port: Number(process.env.METRICS_PORT ?? 9090) },
  fetch: (request) => {
    const { pathname } = new URL(request.url);
    if (pathname === "/") return new Response("Hello");
    if (pathname === "/pid") return new Response(`${process.pid}\n`);
    return new Response("Not Found\n", { status: 404 });
  },
});

if (server.role === "primary") {
  await server.listening;
  console.log(`reuseport: ${server.workerCount} workers (${server.mode === "thread" ? "threads" : "processes"}) on ${server.url} (primary pid ${process.pid}); metrics on ${server.metricsUrl}`);
}
