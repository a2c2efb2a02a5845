// The primary of a cluster: holds no listener and touches no request. It reserves the port,
// creates the steering maps and the shared stats, starts N workers (threads or processes) that
// each open their own socket in the port's reuseport group, replaces crashed ones with
// backoff, rolls them over on reload, and stops them gracefully.
import { join } from "node:path";
import process from "node:process";
import { lib, runtime, type WorkerHandle, type WorkerMode } from "../ffi/index.ts";
import { BpfError, ConfigError } from "../errors.ts";
import { Listener } from "../net/listener.ts";
import { allowedCpus, autoWorkerCount, raiseFileLimit } from "../os.ts";
import { normalizeOptions, type ServeOptions } from "../http/server.ts";
import { CLUSTER_PERMISSIONS, requirePermissions } from "../ffi/permissions.ts";
import { Health } from "../http/health.ts";
import { type ActivatedSocket, activatedFor, takeActivatedSockets } from "../net/activation.ts";
import { checkPort } from "../net/address.ts";
import { checkUdpOptions, portKernelDrops, type UdpServeOptions } from "../udp/server.ts";
import { ControlServer, type ToPrimary } from "./control.ts";
import { PubSubRelay, relayPath } from "./pubsub.ts";
import { COUNTER_NAMES, F, HEARTBEAT_MS, SharedStats, SlotState } from "./shared-stats.ts";
import { type ClusterStats, collectStats, kernelListenStats } from "./cluster-stats.ts";
import { checkClusterSteering, closeSteering, type ClusterSteering, createSteering, LoadCounters, type SteeringSetup } from "./steering.ts";
import type { WorkerContext } from "./worker.ts";
import { startMetrics } from "./metrics.ts";
import { enableRequestMigration, privateDirectory, runtimeFileName, sweepStaleFiles } from "./host.ts";

export interface ClusterOptions {
  workers?: number | "auto";
  balance?: ClusterSteering;
  mode?: WorkerMode;
  /** Crashes per worker within restartWindowMs before the cluster gives up (default 5). */
  restartsMax?: number;
  restartWindowMs?: number;
  /** How long a graceful stop or a retiring worker may take before connections are cut (default 30 s). */
  stopTimeoutMs?: number;
  /** Handle SIGTERM/SIGINT (graceful stop) and SIGHUP (reload) in the primary (default true). */
  signals?: boolean;
  /** One stderr line per lifecycle event (reload started and finished, each worker replaced, stop begun and
   * finished); default true. Crashes and failures are said either way. */
  log?: boolean;
  /** Prometheus exposition: { port } serves /metrics from the primary on its own port;
   * { path } makes every worker answer that path on the server's own port. */
  metrics?: { port?: number; hostname?: string; path?: string };
}

const BACKOFF_MS_MIN = 100;
const BACKOFF_MS_MAX = 5_000;
const IDLE_GRACE_MS = 250;
/** A heartbeat older than this marks a worker stalled (least-connections steers around it). */
const STALL_MS = 50;
const STALL_PENALTY = 1 << 24;

export class CrashLoopError extends Error {
  override readonly name = "CrashLoopError";
}

/** A reload that could not replace every worker; the workers that served before it keep serving. */
export class ReloadError extends Error {
  override readonly name = "ReloadError";
}

function exitText(code: number | null, signal: string | null): string {
  return signal ? `signal ${signal}` : `code ${code}`;
}

function checkMetrics(metrics: ClusterOptions["metrics"]): void {
  if (metrics === undefined) return;
  if (typeof metrics !== "object" || metrics === null) throw new ConfigError("metrics", "must be { port } or { path }");
  const { port, path } = metrics;
  if (port === undefined && path === undefined) throw new ConfigError("metrics", "needs a port or a path");
  if (path !== undefined && (typeof path !== "string" || !path.startsWith("/"))) {
    throw new ConfigError("metrics.path", `must start with "/", got ${JSON.stringify(path)}`);
  }
}

/**
 * systemd's sockets for an HTTP cluster, checked against it: one socket that every worker accepts from, or
 * (ReusePort=yes) one socket per worker; the kernel's hash then balances them, so no other balance applies.
 */
function activatedSockets(workers: number, balance: unknown): ActivatedSocket[] | null {
  const sockets = takeActivatedSockets();
  if (sockets === null) return null;
  activatedFor(sockets, "tcp", "serve()");
  if (sockets.length > 1 && sockets.length !== workers) {
    throw new ConfigError("workers", `must be ${sockets.length} with the ${sockets.length} sockets systemd passed (one per worker), got ${workers}`);
  }
  if (balance !== undefined && balance !== "hash") throw new ConfigError("balance", `must be "hash" with systemd's sockets, got ${JSON.stringify(balance)}`);
  return sockets;
}

export function resolveWorkerCount(workers: unknown): number {
  if (workers === undefined) return 1;
  if (workers === "auto") return autoWorkerCount();
  if (typeof workers !== "number" || !Number.isInteger(workers) || workers <= 0) {
    throw new ConfigError("workers", `must be a positive integer or "auto", got ${JSON.stringify(workers)}`);
  }
  return workers;
}

interface Member {
  id: number;
  slot: number;
  generation: number;
  handle: WorkerHandle;
  state: "starting" | "listening" | "retiring";
  /** Started by a reload: becomes its id's current worker only once it listens. */
  candidate: boolean;
  listening: Promise<void>;
  resolveListening: () => void;
  rejectListening: (error: Error) => void;
  /** Our copy of the predecessor's listening socket offered to this worker (closed once it listens or exits), or -1. */
  offeredListener: number;
  /** It listens on the predecessor's socket: the predecessor must leave that open when it retires. */
  inheritedListener: boolean;
}

export class ClusterServer {
  readonly role = "primary" as const;
  readonly hostname: string;
  readonly port: number;
  readonly url: URL;
  readonly workerCount: number;
  readonly mode: WorkerMode;
  readonly balance: ClusterSteering;
  /** "on" when the kernel migrates a closing listener's queued connections (zero-drop reloads). */
  readonly requestMigration: "on" | "unavailable";
  readonly listening: Promise<void>;
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;
  private rejectFinished!: (error: Error) => void;
  private readonly members = new Map<number, Member>(); // by slot
  private readonly current = new Map<number, Member>(); // by worker id
  private readonly crashTimes = new Map<number, number[]>();
  private readonly generations = new Map<number, number>();
  private readonly freeSlots: number[];
  private readonly shared: SharedStats;
  private control!: ControlServer;
  /** Forwards WebSocket publishes between the workers (pubsub.ts). */
  private relay: PubSubRelay | null = null;
  private steering: SteeringSetup | null = null;
  private reservation: Listener | null;
  private stopping = false;
  /** systemd's sockets (socket activation), kept open for the cluster's life: each worker serves a copy. */
  private readonly activated: ActivatedSocket[] | null;
  /** How long a stop lets the workers' health endpoints answer 503 before their listeners close. */
  private readonly drainDelayMs: number;
  private metricsServer: { stop(): Promise<void>; port: number } | null = null;
  private readonly signalHandlers: [string, () => void][] = [];
  /** Resolvers for "worker id has listened at least once" (what `listening` waits for). */
  private readonly firstListen = new Map<number, () => void>();
  /** least-connections: slots whose worker looks stalled and carries the load penalty. */
  private readonly penalized = new Set<number>();
  private stallMonitor: ReturnType<typeof setInterval> | null = null;
  /** The last reload started or queued; the next one runs after it. */
  private reloadTail: Promise<void> = Promise.resolve();
  /** A reload queued behind a running one: later calls join it rather than queue more. */
  private reloadWaiting: Promise<void> | null = null;

  /** `single` is options without the cluster's own keys (what each worker's server takes). */
  constructor(
    private readonly options: ServeOptions & ClusterOptions,
    workers: number,
    single: ServeOptions | UdpServeOptions,
    readonly kind: "http" | "udp" = "http",
  ) {
    // The same checks a worker will make, before anything starts.
    requirePermissions(CLUSTER_PERMISSIONS, "to run a cluster");
    if (kind === "udp") checkUdpOptions(single as UdpServeOptions);
    if (options.log !== undefined && typeof options.log !== "boolean") throw new ConfigError("log", `must be a boolean, got ${JSON.stringify(options.log)}`);
    this.drainDelayMs = kind === "http" ? (Health.from((single as ServeOptions).health)?.drainDelayMs ?? 0) : 0;
    const port = kind === "udp" ? checkPort((single as UdpServeOptions).port ?? 0) : normalizeOptions(single as ServeOptions).port;
    this.activated = kind === "http" ? activatedSockets(workers, options.balance) : null;
    this.workerCount = workers;
    this.mode = options.mode ?? runtime.defaultWorkerMode;
    if (this.mode !== "thread" && this.mode !== "process") throw new ConfigError("mode", `must be "thread" or "process", got ${JSON.stringify(this.mode)}`);
    this.balance = checkClusterSteering(options.balance);
    checkMetrics(options.metrics);
    if (options.unix !== undefined || options.path !== undefined) throw new ConfigError("workers", "greater than 1 needs a TCP port, not a unix socket");
    if (kind === "udp" && this.balance !== "hash") throw new ConfigError("balance", `must be "hash" for serveUdp, got ${JSON.stringify(this.balance)}`);
    // A bound, non-listening SO_REUSEPORT TCP socket reserves the port (port 0 gets its number
    // now) without taking connections: only listening sockets join the kernel's lookup. A UDP
    // socket would take its share of datagrams, so for UDP the port is only looked up.
    // Socket activation: systemd's sockets are the port; nothing is reserved or bound here.
    const reserved = this.activated ? null : Listener.reserve({ hostname: options.hostname ?? "0.0.0.0", port, ipv6Only: options.ipv6Only }, kind === "udp" ? "udp" : "tcp");
    const address = this.activated ? this.activated[0].address : reserved!.address;
    this.hostname = address.address;
    this.port = address.port;
    if (kind === "udp") reserved?.close();
    this.reservation = kind === "udp" ? null : reserved;
    const scheme = kind === "udp" ? "udp" : "http";
    this.url = new URL(`${scheme}://${this.hostname === "0.0.0.0" ? "localhost" : this.hostname}:${this.port}/`);
    const files = raiseFileLimit(100_000);
    this.requestMigration = enableRequestMigration();
    this.steering = this.createSteering();
    const slotCount = 4 * workers + 8;
    this.freeSlots = Array.from({ length: slotCount }, (_, i) => slotCount - 1 - i);
    sweepStaleFiles();
    const name = runtimeFileName();
    const controlDirectory = privateDirectory(name);
    // Thread workers share our fd table: if one dies, we close its fds (tracked as bits).
    const fdBitmapBytes = this.mode === "thread" ? Math.ceil(Math.min(files.soft, 1 << 20) / 8) : 0;
    this.shared = SharedStats.map(join("/dev/shm", name), slotCount, fdBitmapBytes);
    this.finished = new Promise<void>((resolve, reject) => {
      this.resolveFinished = resolve;
      this.rejectFinished = reject;
    });
    this.listening = this.start(controlDirectory);
  }

  private createSteering(): SteeringSetup | null {
    if (this.balance === "hash") return null;
    try {
      return createSteering(this.balance, this.workerCount);
    } catch (error) {
      if (typeof this.balance === "object" || !(error instanceof BpfError) || error.code !== "EPERM") throw error;
      console.warn(`reuseport: balance "${this.balance}" needs BPF privilege (root or CAP_BPF); falling back to "hash"`);
      return null;
    }
  }

  private async start(controlDirectory: string): Promise<void> {
    // A worker's end is learnt from its exit promise, so a closed control connection needs no action.
    this.control = await ControlServer.listen(controlDirectory, this.shared.slotCount, (message) => this.onMessage(message), () => {});
    if (this.kind === "http") this.relay = await PubSubRelay.listen(relayPath(this.control.path));
    if (this.options.signals !== false) this.installSignals();
    if (this.options.metrics?.port !== undefined) {
      this.metricsServer = startMetrics({ port: this.options.metrics.port, hostname: this.options.metrics.hostname }, () => this.stats());
    }
    if (this.steering?.kind === "least-connections") this.watchStalls(new LoadCounters(this.steering.loadFd, this.workerCount));
    // Every worker id listening once, whichever generation made it (a worker that crashes while
    // starting is replaced); this rejects only if the cluster gives up.
    const started = Array.from({ length: this.workerCount }, (_, id) => new Promise<void>((resolve) => this.firstListen.set(id, resolve)));
    for (let id = 0; id < this.workerCount; id++) this.spawn(id);
    await Promise.race([Promise.all(started), this.finished.then(() => {
      throw new Error("reuseport: the cluster stopped before every worker listened");
    })]);
  }

  /**
   * least-connections: a worker whose heartbeat is older than STALL_MS gets a large penalty
   * added to its count, so the program picks the others until it beats again. Connections the
   * program gave it before the penalty wait for it; nothing new does.
   */
  private watchStalls(load: LoadCounters): void {
    this.stallMonitor = setInterval(() => {
      const now = Date.now();
      for (const member of this.current.values()) {
        if (member.state !== "listening") continue;
        const beat = this.shared.slot(member.slot)[F.heartbeatMs];
        const stalled = beat > 0 && now - beat > STALL_MS;
        if (stalled && !this.penalized.has(member.slot)) {
          this.penalized.add(member.slot);
          this.shared.slot(member.slot)[F.stalled] = 1;
          load.set(member.id, load.get(member.id) + STALL_PENALTY);
        } else if (!stalled && this.penalized.has(member.slot)) {
          this.penalized.delete(member.slot);
          this.shared.slot(member.slot)[F.stalled] = 0;
          load.set(member.id, load.get(member.id) - STALL_PENALTY);
        }
      }
    }, HEARTBEAT_MS);
    runtime.unrefTimer(this.stallMonitor);
  }

  /** Starts a worker for `id`: its current one at once, or (candidate) once it listens. Throws when
   * every stats slot is taken (workers still retiring). */
  private spawn(id: number, candidate = false, predecessor?: Member): Member {
    const slot = this.freeSlots.pop();
    if (slot === undefined) throw new Error(`no free stats slot (all ${this.shared.slotCount} taken: workers still retiring)`);
    this.foldSlot(slot);
    const generation = (this.generations.get(id) ?? 0) + 1;
    this.generations.set(id, generation);
    const cpus = allowedCpus();
    const context: WorkerContext = {
      id, slot, generation,
      primaryPid: process.pid,
      hostname: this.hostname,
      port: this.port,
      controlPath: this.control.path,
      statsPath: this.shared.path,
      slotCount: this.shared.slotCount,
      fdBitmapBytes: this.shared.fdBitmapBytes,
      workerCount: this.workerCount,
      metricsPath: this.options.metrics?.path ?? null,
      cpu: this.balance === "cpu" && this.steering ? cpus[id % cpus.length] : null,
      steering: this.steering,
      sameProcess: this.mode === "thread",
      kind: this.kind,
      inheritListenerFd: null,
      externalListener: this.activated !== null,
    };
    const offeredListener = predecessor ? this.copyListener(predecessor) : this.activatedCopy(id);
    if (offeredListener >= 0) context.inheritListenerFd = offeredListener;
    let handle: WorkerHandle;
    try {
      handle = runtime.spawnWorker(this.mode, context, process.argv.slice(2));
    } catch (error) {
      if (offeredListener >= 0) lib.rp_close(offeredListener);
      throw error;
    }
    let resolveListening!: () => void;
    let rejectListening!: (error: Error) => void;
    const listening = new Promise<void>((resolve, reject) => {
      resolveListening = resolve;
      rejectListening = reject;
    });
    listening.catch(() => {}); // a failed start is handled by onExit
    const member: Member = {
      id, slot, generation, handle, state: "starting", candidate, listening, resolveListening, rejectListening, offeredListener, inheritedListener: false,
    };
    this.members.set(slot, member);
    if (!candidate) this.makeCurrent(member);
    handle.exited.then((exit) => this.onExit(member, exit.code, exit.signal));
    return member;
  }

  /**
   * A copy, here, of a listening HTTP worker's socket for its successor: serving the same socket, a rolling
   * reload never closes one of the group's listeners, so no connection can be reset by a close (the kernel
   * resets a handshake that completes while its listener closes). -1 when it cannot be had: a process
   * worker whose fds we may not copy (pidfd_getfd needs ptrace rights), one that is gone; the successor then
   * opens its own socket and the predecessor's retires (Listener.retire).
   */
  private copyListener(predecessor: Member): number {
    if (this.kind !== "http" || predecessor.state !== "listening") return -1;
    const fd = this.shared.slot(predecessor.slot)[F.listenerFd] - 1;
    if (fd < 0) return -1;
    const copy = this.mode === "thread" ? lib.rp_dup(fd) : lib.rp_pidfd_getfd(predecessor.handle.pid, fd);
    return copy >= 0 ? copy : -1;
  }

  /** A copy of systemd's socket for worker `id` (one shared by all, or one each with ReusePort=yes), or -1. */
  private activatedCopy(id: number): number {
    if (this.activated === null) return -1;
    const copy = lib.rp_dup(this.activated[id % this.activated.length].fd);
    return copy >= 0 ? copy : -1;
  }

  private releaseOffer(member: Member): void {
    if (member.offeredListener >= 0) lib.rp_close(member.offeredListener);
    member.offeredListener = -1;
  }

  private makeCurrent(member: Member): void {
    member.candidate = false;
    const previous = this.current.get(member.id);
    if (previous && previous !== member) this.shared.slot(previous.slot)[F.current] = 0;
    this.shared.slot(member.slot)[F.current] = 1;
    this.current.set(member.id, member);
  }

  private onMessage(message: ToPrimary): void {
    const member = this.members.get(message.slot);
    if (!member) return;
    // A worker told to stop before it listened stays retiring.
    if (message.type === "listening" && member.state === "starting") {
      member.state = "listening";
      member.inheritedListener = message.inherited;
      this.releaseOffer(member); // the worker made its own copy, or did not take it
      if (member.candidate) this.makeCurrent(member);
      member.resolveListening();
      this.firstListen.get(member.id)?.();
    }
  }

  /** A thread worker that died (crash, terminate) left its fds open in our process: close them. */
  private reclaimThreadResources(member: Member): void {
    const fields = this.shared.slot(member.slot);
    if (member.handle.mode !== "thread" || fields[F.state] === SlotState.Exited || fields[F.state] === SlotState.Free) return;
    const bitmap = this.shared.fdBitmap(member.slot);
    for (let byte = 0; byte < bitmap.byteLength; byte++) {
      if (bitmap[byte] === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (bitmap[byte] & (1 << bit)) lib.rp_close(byte * 8 + bit);
      bitmap[byte] = 0;
    }
    // Only what the thread still owned: a worker zeroes each field before it closes that one itself,
    // and the number may since belong to another worker.
    if (fields[F.pollerHandle] > 0) lib.rp_poller_destroy(fields[F.pollerHandle]); // joins its wake thread, closes its epoll fd
    if (fields[F.listenerFd] > 0) lib.rp_close(fields[F.listenerFd] - 1); // out of the reuseport group, or it would take connections
    // The dead thread's ring: the kernel cancelled its requests when the thread ended; this closes it and frees its buffers.
    if (fields[F.ringHandle] > 0) lib.rp_ring_destroy(fields[F.ringHandle] - 1);
    fields[F.pollerHandle] = 0;
    fields[F.listenerFd] = 0;
    fields[F.ringHandle] = 0;
  }

  private onExit(member: Member, code: number | null, signal: string | null): void {
    this.members.delete(member.slot);
    this.penalized.delete(member.slot);
    this.releaseOffer(member);
    this.reclaimThreadResources(member);
    const slotFields = this.shared.slot(member.slot);
    slotFields[F.state] = SlotState.Exited;
    slotFields[F.active] = 0;
    this.foldSlot(member.slot);
    this.freeSlots.push(member.slot);
    const wasCurrent = this.current.get(member.id) === member;
    const planned = this.stopping || member.state === "retiring";
    if (planned || !wasCurrent) {
      // A retiring worker ends with 0 once its connections are done; anything else (a crash while it drained,
      // or the kill at the stop deadline) is said, since no restart will tell.
      if (member.state === "retiring" && (code !== 0 || signal !== null)) {
        console.error(`reuseport: retiring worker ${member.id} (generation ${member.generation}) exited (${exitText(code, signal)})`);
      }
      // A reload's candidate that died before listening is that reload's failure, not a crash to restart.
      member.rejectListening(new Error(planned ? "worker stopped" : `exited (${exitText(code, signal)}) before listening`));
      this.checkFinished();
      return;
    }
    this.current.delete(member.id);
    member.rejectListening(new Error(`worker ${member.id} exited before listening`));
    this.onCrash(member, code, signal);
  }

  private onCrash(member: Member, code: number | null, signal: string | null): void {
    const now = Date.now();
    const windowMs = this.options.restartWindowMs ?? 60_000;
    const limit = this.options.restartsMax ?? 5;
    const times = (this.crashTimes.get(member.id) ?? []).filter((t) => now - t < windowMs);
    times.push(now);
    this.crashTimes.set(member.id, times);
    const how = exitText(code, signal);
    if (times.length > limit) {
      const error = new CrashLoopError(`reuseport: worker ${member.id} crashed ${times.length} times within ${windowMs} ms (last: ${how}); giving up`);
      console.error(error.message);
      this.failure = error;
      // Supervision has failed: stop what is left and end the process with a non-zero code.
      void this.stop({ graceful: false }).finally(() => process.exit(1));
      return;
    }
    this.shared.retired(member.id)[F.restarts]++;
    const delay = Math.min(BACKOFF_MS_MAX, BACKOFF_MS_MIN * 2 ** (times.length - 1));
    console.error(`reuseport: worker ${member.id} exited (${how}); restarting in ${delay} ms`);
    this.respawnAfter(member.id, delay);
  }

  /** Replaces a crashed worker after `delay` ms, unless a reload's candidate took its place meanwhile. */
  private respawnAfter(id: number, delay: number): void {
    setTimeout(() => {
      if (this.stopping || this.current.has(id)) return;
      try {
        this.spawn(id);
      } catch (error) {
        console.error(`reuseport: worker ${id} cannot be restarted yet: ${(error as Error).message}; retrying in ${BACKOFF_MS_MAX} ms`);
        this.respawnAfter(id, BACKOFF_MS_MAX);
      }
    }, delay);
  }

  /** Adds a dead slot's counters to its worker's retired totals, so sums never go backwards. */
  private foldSlot(slot: number): void {
    const fields = this.shared.slot(slot);
    if (fields[F.state] === SlotState.Free) return;
    const id = fields[F.workerId];
    const retired = this.shared.retired(id);
    for (const name of COUNTER_NAMES) retired[F[name]] += fields[F[name]];
    fields.fill(0); // state Free
  }

  private checkFinished(): void {
    if (this.stopping && this.members.size === 0) this.cleanup();
  }

  private failure: Error | null = null;

  private cleanup(): void {
    if (this.stallMonitor !== null) clearInterval(this.stallMonitor);
    for (const [signal, handler] of this.signalHandlers) process.off(signal, handler);
    this.relay?.close();
    this.control.close();
    if (this.steering) closeSteering(this.steering);
    this.reservation?.close();
    for (const socket of this.activated ?? []) lib.rp_close(socket.fd); // systemd keeps its own copies
    this.shared.remove();
    void this.metricsServer?.stop();
    if (this.failure) this.rejectFinished(this.failure);
    else this.resolveFinished();
  }

  /**
   * Rolling restart: each worker is replaced by a fresh one (re-importing the module), the new one
   * listening before the old one stops accepting. Reloads run one at a time: a call while one runs
   * queues one more, and calls while that one waits join it (a SIGHUP storm is two reloads). Rejects
   * with a ReloadError when a new worker fails to listen (the old ones keep serving, the rest of the
   * roll is not tried), when no stats slot is free, or when the cluster stops meanwhile.
   */
  reload(): Promise<void> {
    if (this.stopping) return Promise.reject(new ReloadError("reuseport: reload refused: the cluster is stopping"));
    if (this.reloadWaiting) return this.reloadWaiting;
    const run = this.reloadTail.catch(() => {}).then(() => {
      this.reloadWaiting = null;
      return this.rollOver();
    });
    this.reloadWaiting = run;
    this.reloadTail = run;
    return run;
  }

  /** A lifecycle line (the log option). */
  private say(line: string): void {
    if (this.options.log !== false) console.error(`reuseport: ${line}`);
  }

  private async rollOver(): Promise<void> {
    const started = Date.now();
    this.say(`reload started: ${this.workerCount} worker${this.workerCount === 1 ? "" : "s"}, one at a time`);
    await this.rollEach();
    this.say(`reload finished in ${Date.now() - started} ms`);
  }

  private async rollEach(): Promise<void> {
    for (let id = 0; id < this.workerCount; id++) {
      if (this.stopping) throw new ReloadError("reuseport: reload cancelled: the cluster is stopping");
      const old = this.current.get(id);
      let fresh: Member;
      try {
        fresh = this.spawn(id, true, old && this.members.get(old.slot) === old ? old : undefined);
      } catch (error) {
        throw this.reloadFailed(`worker ${id} could not start: ${(error as Error).message}`);
      }
      try {
        await fresh.listening;
      } catch (error) {
        if (this.stopping) throw new ReloadError("reuseport: reload cancelled: the cluster is stopping");
        throw this.reloadFailed(`worker ${id} (generation ${fresh.generation}) ${(error as Error).message}`);
      }
      this.say(`worker ${id}: pid ${old?.handle.pid ?? "-"} (generation ${old?.generation ?? "-"}) replaced by pid ${fresh.handle.pid} (generation ${fresh.generation})${fresh.inheritedListener ? ", listening socket handed over" : ""}`);
      if (old && this.members.get(old.slot) === old) this.retire(old, true, fresh.inheritedListener);
    }
  }

  /** The one line a failed reload logs, and the error reload() rejects with. */
  private reloadFailed(why: string): ReloadError {
    const error = new ReloadError(`reuseport: reload failed: ${why}; the workers already serving keep serving`);
    console.error(error.message);
    return error;
  }

  /** drain: the cluster stops (not a reload): the workers' health endpoints drain first. */
  private retire(member: Member, graceful: boolean, handedOver = false, drain = false): void {
    member.state = "retiring";
    this.shared.slot(member.slot)[F.state] = SlotState.Retiring;
    const sent = this.control.send(member.slot, {
      type: "stop", graceful, idleGraceMs: IDLE_GRACE_MS, timeoutMs: this.options.stopTimeoutMs ?? 30_000, handedOver,
      drainMs: drain && graceful ? this.drainDelayMs : 0,
    });
    if (!sent) member.handle.kill(); // never reached its control socket
  }

  /** Stops every worker (gracefully by default) and resolves when all have exited. */
  async stop(options: { graceful?: boolean } | boolean = {}): Promise<void> {
    const graceful = typeof options === "boolean" ? !options : options.graceful ?? true;
    const first = !this.stopping;
    const started = Date.now();
    if (first) this.say(`stopping ${this.workerCount} worker${this.workerCount === 1 ? "" : "s"} (${graceful ? `graceful${this.drainDelayMs > 0 ? `, health draining ${this.drainDelayMs} ms first` : ""}` : "now"})`);
    this.stopping = true;
    for (const member of this.members.values()) this.retire(member, graceful, false, true);
    this.checkFinished();
    const deadline = setTimeout(() => {
      for (const member of this.members.values()) member.handle.kill();
    }, (this.options.stopTimeoutMs ?? 30_000) + (graceful ? this.drainDelayMs : 0) + 1000);
    await this.finished.catch(() => {});
    clearTimeout(deadline);
    if (first) this.say(`stopped in ${Date.now() - started} ms`);
  }

  shutdown(): Promise<void> {
    return this.stop({ graceful: true });
  }

  /** The Prometheus endpoint (metrics option), e.g. http://127.0.0.1:9090/metrics. */
  get metricsUrl(): string | null {
    return this.metricsServer ? `http://127.0.0.1:${this.metricsServer.port}/metrics` : null;
  }

  get addr(): { hostname: string; port: number; transport: "tcp" } {
    return { hostname: this.hostname, port: this.port, transport: "tcp" };
  }

  /** Killing a worker for tests and operators: it is replaced like any crash. */
  killWorker(id: number): number {
    const member = this.current.get(id);
    if (!member) throw new ConfigError("id", `no worker ${id}`);
    member.handle.kill();
    return member.handle.pid;
  }

  /**
   * How the workers read their sockets, as Server.io ("io_uring" or "epoll": one kernel and one REUSEPORT_IO,
   * so one answer for all); null for serveUdp and until a worker listens (await `listening`).
   */
  get io(): "io_uring" | "epoll" | null {
    if (this.kind !== "http") return null;
    for (const member of this.members.values()) {
      if (member.state === "listening") return this.shared.slot(member.slot)[F.ringHandle] > 0 ? "io_uring" : "epoll";
    }
    return null;
  }

  /**
   * Bun's server.publish from the primary: to the subscribers of topic in every worker. Returns 0 (no bytes are
   * sent here); before the cluster listens, or for a UDP cluster, there is nobody to send to.
   */
  publish(topic: string, data: string | ArrayBufferView | ArrayBuffer): number {
    if (typeof topic !== "string" || topic.length === 0) throw new TypeError(`a topic must be a non-empty string, got ${JSON.stringify(topic)}`);
    const bytes = typeof data === "string" ? data : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
    this.relay?.publish(topic, bytes);
    return 0;
  }

  /** The control socket workers report to (0600, in a 0700 directory of this primary's own). */
  get controlPath(): string {
    return this.control?.path ?? "";
  }

  /** Per-worker counters (live slots plus retired generations), totals and balance, and what the
   * control socket refused. */
  stats(): ClusterStats {
    const stats = collectStats(this.shared, this.workerCount);
    if (this.kind === "udp") stats.kernelDrops = portKernelDrops(this.port);
    else stats.kernel = kernelListenStats(this.port); // accept-queue drops: the kernel counts them, no worker sees them
    stats.control = { ...(this.control?.counters ?? { malformedLines: 0, refusedPeers: 0 }), pubsubDropped: this.relay?.dropped ?? 0 };
    return stats;
  }

  private installSignals(): void {
    const graceful = () => {
      void this.stop({ graceful: true }).then(() => process.exit(process.exitCode ?? 0));
    };
    const reload = () => void this.reload().catch(() => {}); // a failure is logged by reload()
    for (const [signal, handler] of [["SIGTERM", graceful], ["SIGINT", graceful], ["SIGHUP", reload]] as const) {
      process.on(signal, handler);
      this.signalHandlers.push([signal, handler]);
    }
  }
}
