// Prometheus text exposition (version 0.0.4) of the cluster's counters, per worker label,
// served by the primary on its own port: scrapes never touch the workers' request path.
import { serveSingle } from "../http/server.ts";
import { COUNTER_NAMES, type CounterName } from "./shared-stats.ts";
import type { ClusterStats } from "./cluster-stats.ts";

const HELP: Record<CounterName, string> = {
  accepted: "Connections accepted",
  requests: "Requests dispatched to the handler",
  bytesIn: "Bytes read from clients",
  bytesOut: "Bytes written to clients",
  handlerErrors: "Handler throws, rejections and non-Response results (answered 500)",
  protocolErrors: "Malformed or over-limit requests (answered 4xx and closed)",
  rejectedConnections: "Connections closed at accept (maxConnections, shutdown, fd exhaustion)",
  acceptErrors: "accept4 failures",
  readErrors: "Connections lost to a read error (reset by the peer)",
  writeErrors: "Connections lost while writing",
  timeouts: "Connections ended by the header or idle timeout",
  bytesDiscarded: "Request body bytes read and dropped after the response",
  sendTimeouts: "Responses cut because the client read nothing for sendTimeoutMs",
  bodyTimeouts: "Request bodies answered 408 because no byte came for bodyTimeoutMs",
  outputPauses: "Times a connection stopped dispatching pipelined requests until its unsent output drained",
  wsOpened: "WebSocket connections opened (upgraded)",
  wsClosed: "WebSocket connections ended",
  wsMessagesIn: "WebSocket messages received",
  wsMessagesOut: "WebSocket messages sent (a published one once per subscriber)",
  wsBytesIn: "WebSocket message payload bytes received",
  wsBytesOut: "WebSocket message payload bytes sent",
  wsDropped: "WebSocket messages dropped (over backpressureLimit, to a closed socket, a lost cluster publish)",
  wsClosesNormal: "WebSocket closes with code 1000 or 1001",
  wsClosesError: "WebSocket closes for a protocol fault (1002, 1003, 1007, 1008, 1009, 1011)",
  wsClosesAbnormal: "WebSocket connections that ended without a close frame (1006)",
  wsClosesOther: "WebSocket closes with any other code",
};

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function exposition(stats: ClusterStats): string {
  const lines: string[] = [];
  for (const name of COUNTER_NAMES) {
    const metric = `reuseport_${snake(name)}_total`;
    lines.push(`# HELP ${metric} ${HELP[name]}.`, `# TYPE ${metric} counter`);
    for (const w of stats.workers) lines.push(`${metric}{worker="${w.id}"} ${w.counters[name]}`);
  }
  lines.push("# HELP reuseport_active_connections Open connections.", "# TYPE reuseport_active_connections gauge");
  for (const w of stats.workers) lines.push(`reuseport_active_connections{worker="${w.id}"} ${w.active}`);
  lines.push("# HELP reuseport_websockets_open WebSockets open in live workers.", "# TYPE reuseport_websockets_open gauge");
  lines.push(`reuseport_websockets_open ${stats.webSockets.open}`);
  lines.push("# HELP reuseport_websockets_lost_total WebSockets a worker held when it died.", "# TYPE reuseport_websockets_lost_total counter");
  lines.push(`reuseport_websockets_lost_total ${stats.webSockets.lost}`);
  // A gauge: the current thread's CPU time restarts from 0 with a replaced worker.
  lines.push("# HELP reuseport_worker_cpu_seconds CPU time of the worker's current thread or process.", "# TYPE reuseport_worker_cpu_seconds gauge");
  for (const w of stats.workers) lines.push(`reuseport_worker_cpu_seconds{worker="${w.id}"} ${w.cpuSeconds}`);
  lines.push("# HELP reuseport_worker_restarts_total Worker replacements after a crash.", "# TYPE reuseport_worker_restarts_total counter");
  for (const w of stats.workers) lines.push(`reuseport_worker_restarts_total{worker="${w.id}"} ${w.restarts}`);
  lines.push(
    "# HELP reuseport_balance_cv Coefficient of variation of accepted connections per worker.",
    "# TYPE reuseport_balance_cv gauge",
    `reuseport_balance_cv ${stats.balance.coefficientOfVariation}`,
    "# HELP reuseport_balance_max_deviation Largest relative deviation of a worker from the mean (alert above 0.15).",
    "# TYPE reuseport_balance_max_deviation gauge",
    `reuseport_balance_max_deviation ${stats.balance.maxDeviation}`,
  );
  return lines.join("\n") + "\n";
}

export function startMetrics(options: { port: number; hostname?: string }, read: () => ClusterStats) {
  return serveSingle({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port,
    reusePort: false,
    onListen() {}, // the primary's own endpoint: the cluster says where it is (metricsUrl), no startup line
    fetch: (request) => {
      if (new URL(request.url).pathname !== "/metrics") return new Response("Not Found\n", { status: 404 });
      return new Response(exposition(read()), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
    },
  });
}
