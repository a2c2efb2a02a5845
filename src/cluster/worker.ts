// The worker side of a cluster: the same serve() call that started the cluster in the primary
// lands here in each worker (which re-ran the entry module). It opens its own listener in the
// port's reuseport group, joins steering, counts into its shared-memory slot, and follows the
// primary's lifecycle messages.
import process from "node:process";
import { lib, runtime } from "../ffi/index.ts";
import { check } from "../ffi/errno.ts";
import { Listener } from "../net/listener.ts";
import { pinToCpu } from "../os.ts";
import { Engine } from "../http/engine.ts";
import type { Handler } from "../http/answers.ts";
import { requestTarget } from "../http/request.ts";
import { collectStats } from "./cluster-stats.ts";
import { exposition } from "./metrics.ts";
import { type ServeOptions, Server, normalizeOptions } from "../http/server.ts";
import { PubSubClient, relayPath } from "./pubsub.ts";
import type { Health } from "../http/health.ts";
import { serveUdpSingle, type UdpServeOptions, type UdpServer } from "../udp/server.ts";
import { ControlClient, type ToWorker } from "./control.ts";
import { F, HEARTBEAT_MS, SharedStats, SlotState } from "./shared-stats.ts";
import { joinSteering, LoadCounters, type SteeringSetup } from "./steering.ts";

/** What the primary tells each worker (JSON: crosses thread and process boundaries). */
export interface WorkerContext {
  id: number;
  slot: number;
  generation: number;
  primaryPid: number;
  hostname: string;
  port: number;
  controlPath: string;
  statsPath: string;
  slotCount: number;
  fdBitmapBytes: number;
  workerCount: number;
  /** Serve the cluster's Prometheus exposition at this path in every worker, or null. */
  metricsPath: string | null;
  /** Pin this worker's thread to this CPU (balance "cpu"), or null. */
  cpu: number | null;
  /** Steering fds in the primary (a process worker copies them with pidfd_getfd). */
  steering: SteeringSetup | null;
  /** Whether the worker shares the primary's fd table (a thread). */
  sameProcess: boolean;
  /** Which server the worker runs: serve() (HTTP) or serveUdp(). */
  kind: "http" | "udp";
  /** The primary's copy of the listening socket of the worker this one replaces: serve that one (copied with
   * dup or pidfd_getfd) rather than open a new one; null, or a copy that fails, opens a new one. */
  inheritListenerFd: number | null;
  /** The offered socket is systemd's (socket activation): it outlives the cluster, so no stop retires it. */
  externalListener: boolean;
}

export function currentWorkerContext(): WorkerContext | null {
  return (runtime.workerContext() as WorkerContext | null) ?? null;
}

/** Copies the primary's steering fds into this process when it is a separate one. */
function localSteering(context: WorkerContext): SteeringSetup | null {
  const setup = context.steering;
  if (!setup || context.sameProcess) return setup;
  const copy = (fd: number) => (fd < 0 ? -1 : check(lib.rp_pidfd_getfd(context.primaryPid, fd), "pidfd_getfd", `fd ${fd} of pid ${context.primaryPid}`));
  return { ...setup, sockarrayFd: copy(setup.sockarrayFd), programFd: copy(setup.programFd), loadFd: copy(setup.loadFd) };
}

/** Answers GET <path> with the cluster's exposition before the user's handler sees it. */
function withMetrics(fetch: Handler, path: string, render: () => string): Handler {
  const headers = { "content-type": "text/plain; version=0.0.4; charset=utf-8" };
  return (request, info) => {
    const target = requestTarget(request);
    if (target === path || target.startsWith(path + "?")) return new Response(render(), { headers });
    return fetch(request, info);
  };
}

const SIGKILL = 9;

/**
 * A process worker gets SIGKILL when its primary dies, even while its thread is stuck in a handler
 * and cannot see the control socket close; one whose primary is already gone ends now.
 */
function dieWithPrimary(context: WorkerContext): void {
  if (context.sameProcess) return;
  check(lib.rp_set_pdeathsig(SIGKILL), "prctl(PR_SET_PDEATHSIG)");
  if (process.ppid !== context.primaryPid) {
    console.error(`reuseport: worker ${context.id}: its primary (pid ${context.primaryPid}) is gone; exiting`);
    runtime.exitWorker(1);
  }
}

/** Shared memory and identity of this worker: maps the stats file, fills the slot, pins the CPU. */
function attachSlot(context: WorkerContext): { stats: SharedStats; slot: Float64Array } {
  dieWithPrimary(context);
  const stats = SharedStats.map(context.statsPath, context.slotCount, context.fdBitmapBytes);
  const slot = stats.slot(context.slot); // zeroed by the primary when it handed the slot out
  slot[F.state] = SlotState.Starting;
  slot[F.workerId] = context.id;
  slot[F.generation] = context.generation;
  slot[F.pid] = process.pid;
  slot[F.startedAtMs] = Date.now();
  if (context.cpu !== null) {
    pinToCpu(context.cpu);
    slot[F.cpu] = context.cpu;
  } else slot[F.cpu] = -1;
  slot[F.threadId] = lib.rp_gettid();
  return { stats, slot };
}

/** What the lifecycle below needs of a worker's server, HTTP or UDP. */
interface Service {
  /** Stops taking new work; graceful lets in-flight work finish (see Engine.stop). */
  stop(graceful: boolean, idleGraceMs: number, handedOver?: boolean): void;
  /** Resolves once everything is closed. */
  readonly closed: Promise<void>;
}

/**
 * Follows the primary's lifecycle messages over the control socket: reports "listening", stops
 * on request (forced after the deadline), ends when the primary goes away, then releases the
 * slot and ends this worker (thread or process).
 */
function superviseWorker(context: WorkerContext, stats: SharedStats, slot: Float64Array, service: Service, port: number, inherited: boolean, release: () => void, health: Health | null = null): void {
  let stopping = false;
  let control: ControlClient | null = null;
  const finish = () => {
    release();
    slot[F.state] = SlotState.Exited;
    slot[F.active] = 0;
    stats.unmap();
    control?.close();
    runtime.exitWorker(0);
  };
  const stopNow = () => {
    if (stopping) return;
    stopping = true;
    service.stop(false, 0);
    service.closed.then(finish);
  };
  const onMessage = (message: ToWorker) => {
    if (message.type !== "stop" || stopping) return;
    stopping = true;
    slot[F.state] = SlotState.Retiring;
    const stop = () => {
      service.stop(message.graceful, message.idleGraceMs, message.handedOver);
      const force = setTimeout(() => service.stop(false, 0), message.timeoutMs);
      service.closed.then(() => {
        clearTimeout(force);
        finish();
      });
    };
    // The cluster stops: the health endpoint answers 503 for the drain delay while everything still serves.
    if (health !== null && message.drainMs > 0) {
      health.draining = true;
      setTimeout(stop, message.drainMs);
    } else stop();
  };
  // A closed control socket means the primary is gone (crashed or killed): nobody supervises us.
  ControlClient.connect(context.controlPath, onMessage, stopNow).then((client) => {
    control = client;
    slot[F.state] = SlotState.Listening;
    client.send({ type: "hello", slot: context.slot, id: context.id, generation: context.generation, pid: process.pid });
    client.send({ type: "listening", slot: context.slot, port, inherited });
  }, (failure) => {
    console.error(`reuseport: worker ${context.id} cannot reach the primary at ${context.controlPath}: ${failure}`);
    stopNow();
  });
}

/** The predecessor's listening socket (WorkerContext.inheritListenerFd), or null: then this worker opens its own. */
function inheritListener(context: WorkerContext, backlog: number | undefined): Listener | null {
  const offered = context.inheritListenerFd;
  if (offered === null) return null;
  const fd = context.sameProcess ? lib.rp_dup(offered) : lib.rp_pidfd_getfd(context.primaryPid, offered);
  if (fd < 0) return null; // no ptrace rights on the primary, or it closed the copy already: a new socket
  try {
    return Listener.inherit(fd, backlog, context.port, context.externalListener);
  } catch {
    lib.rp_close(fd);
    return null;
  }
}

/** Runs this worker's HTTP engine; returns a Server for the code that called serve(). */
export function startWorker(options: ServeOptions, context: WorkerContext): Server {
  const normalized = normalizeOptions({ ...options, workers: undefined, port: context.port });
  const { error, limits } = normalized;
  const { stats, slot } = attachSlot(context);
  const inherited = inheritListener(context, options.backlog);
  const listener = inherited ?? Listener.openSync({
    hostname: context.hostname,
    port: context.port,
    backlog: options.backlog,
    ipv6Only: options.ipv6Only,
    reusePort: true,
  });
  const steering = localSteering(context);
  if (steering) joinSteering(steering, context.id, listener.fd);
  const fetch = context.metricsPath === null ? normalized.fetch : withMetrics(normalized.fetch, context.metricsPath, () => exposition(collectStats(stats, context.workerCount)));
  const engine = new Engine(listener, { limits, fetch, error, io: normalized.io }, slot);
  // What the primary closes if this thread dies holding it; each is zeroed before the engine closes it.
  slot[F.listenerFd] = listener.fd + 1;
  slot[F.pollerHandle] = engine.loop.handle;
  slot[F.ringHandle] = engine.loop.ring + 1;
  engine.onClosing = (what) => {
    if (what === "listener") slot[F.listenerFd] = 0;
    else {
      slot[F.pollerHandle] = 0;
      slot[F.ringHandle] = 0;
    }
  };
  if (context.sameProcess) engine.fdBitmap = stats.fdBitmap(context.slot);
  let heartbeat: ReturnType<typeof setInterval> | null = null;
  if (steering?.kind === "least-connections") {
    const load = new LoadCounters(steering.loadFd, steering.workers);
    load.set(context.id, 0); // a fresh socket: nothing counted against it yet
    engine.onConnectionClosed = () => load.release(context.id);
    // The primary reads this to see a stalled worker (a handler blocking the thread) and
    // steers new connections away from it until it beats again.
    slot[F.heartbeatMs] = Date.now();
    heartbeat = setInterval(() => (slot[F.heartbeatMs] = Date.now()), HEARTBEAT_MS);
  }
  let bus: PubSubClient | null = null;
  superviseWorker(context, stats, slot, engine, listener.port, inherited !== null, () => {
    if (heartbeat !== null) clearInterval(heartbeat);
    bus?.close();
    if (steering && !context.sameProcess) {
      for (const fd of [steering.sockarrayFd, steering.programFd, steering.loadFd]) if (fd >= 0) lib.rp_close(fd);
    }
  }, normalized.health);
  const server = new Server(engine, listener, "worker", { ...options, healthEndpoint: normalized.health, webSocketSettings: normalized.websocket });
  // Publishes reach the other workers through the primary's relay; theirs come back here.
  const topics = server.webSockets.topics;
  topics.bus = bus = new PubSubClient(relayPath(context.controlPath), (topic, data) => topics.deliver(topic, data), () => engine.stats.wsDropped++);
  // One cluster id for all its workers: the primary's control socket path is unique to it.
  if (options.pubsub !== undefined) server.webSockets.bridge(options.pubsub, context.controlPath);
  options.onListen?.(server.addr);
  return server;
}

/** Runs this worker's UDP server (serveUdp with workers). */
export function startUdpWorker(options: UdpServeOptions, context: WorkerContext): UdpServer {
  const { stats, slot } = attachSlot(context);
  const server = serveUdpSingle({ ...options, hostname: context.hostname, port: context.port, reusePort: true }, slot);
  slot[F.listenerFd] = server.fd + 1;
  slot[F.pollerHandle] = server.pollerHandle;
  // close() (stop() ends in it) closes both: zero them first, as for HTTP.
  const close = server.close.bind(server);
  server.close = () => {
    slot[F.listenerFd] = 0;
    slot[F.pollerHandle] = 0;
    close();
  };
  superviseWorker(context, stats, slot, server, server.port, false, () => {});
  return server;
}
