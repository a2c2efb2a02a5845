// serve(): one engine on this thread, a cluster primary, or (inside a worker the primary
// started) that worker's engine. The same call covers all three, so a module that calls
// serve() works unchanged as the entry of every worker.
import { type ServeOptions, Server, serveSingle } from "./http/server.ts";
import { type ClusterOptions, ClusterServer, resolveWorkerCount } from "./cluster/supervisor.ts";
import { currentWorkerContext, startUdpWorker, startWorker } from "./cluster/worker.ts";
import { serveUdpSingle, UDP_CLUSTER_KEYS, type UdpServeOptions, type UdpServer } from "./udp/server.ts";
import { ConfigError } from "./errors.ts";

export type Options = ServeOptions & ClusterOptions;

const CLUSTER_KEYS = ["balance", "mode", "restartsMax", "restartWindowMs", "stopTimeoutMs", "signals", "metrics", "log"] as const;

type Handler = NonNullable<ServeOptions["fetch"]>;
type Clustered = Options & ({ workers: number | "auto" } | { balance: ClusterOptions["balance"] });

/** With workers (or cluster options): a ClusterServer in the primary, and in each worker (which
 * re-runs the module) that worker's Server; `server.role` tells them apart. */
export function serve(options: Clustered, handler?: Handler): ClusterServer | Server;
/** Without workers: one engine on this thread. */
export function serve(options: Options, handler?: Handler): Server;
export function serve(handler: Handler): Server;
export function serve(first: Options | Handler, second?: Handler): Server | ClusterServer {
  if (typeof first !== "function" && (typeof first !== "object" || first === null)) {
    throw new ConfigError("options", `must be an object or a handler function, got ${first === null ? "null" : typeof first}`);
  }
  const options: Options = typeof first === "function" ? { fetch: first } : { ...first };
  if (second !== undefined) {
    if (typeof second !== "function") throw new ConfigError("handler", "must be a function");
    options.handler = second;
  }
  const context = currentWorkerContext();
  const single: ServeOptions = { ...options };
  for (const key of CLUSTER_KEYS) delete (single as Record<string, unknown>)[key];
  delete single.workers;
  if (context) {
    if (context.kind !== "http") throw new ConfigError("serve", "called in a serveUdp() worker; a module starts one kind of cluster");
    return startWorker(single, context);
  }
  const workers = resolveWorkerCount(options.workers);
  const clustered = workers > 1 || CLUSTER_KEYS.some((key) => options[key] !== undefined);
  return clustered ? new ClusterServer(options, workers, single) : serveSingle(single);
}

export type UdpOptions = UdpServeOptions & Pick<ClusterOptions, "workers" | "mode" | "restartsMax" | "restartWindowMs" | "stopTimeoutMs" | "signals">;

/** serveUdp(): one UDP server on this thread, or with `workers` a cluster of them on one port
 * (the seed guide's UDP workers); inside a worker, that worker's server. */
export function serveUdp(options: UdpOptions & { workers: number | "auto" }): ClusterServer | UdpServer;
export function serveUdp(options: UdpOptions): UdpServer;
export function serveUdp(options: UdpOptions): ClusterServer | UdpServer {
  if (typeof options !== "object" || options === null) throw new ConfigError("options", "must be an object");
  const single: UdpServeOptions = { ...options };
  for (const key of UDP_CLUSTER_KEYS) delete (single as unknown as Record<string, unknown>)[key];
  const context = currentWorkerContext();
  if (context) {
    if (context.kind !== "udp") throw new ConfigError("serveUdp", "called in a serve() worker; a module starts one kind of cluster");
    return startUdpWorker(single, context);
  }
  const workers = resolveWorkerCount(options.workers);
  if (workers === 1 && options.mode === undefined) return serveUdpSingle(single);
  return new ClusterServer(options as unknown as Options, workers, single, "udp");
}
