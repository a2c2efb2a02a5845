// Deno.dlopen loader: the only file that touches Deno.* FFI.
// Types: https://docs.deno.com/api/deno/~/Deno.dlopen ("buffer" is zero-copy; "pointer" is an object).
import type { SymbolSpec, Tag } from "./symbols.ts";
import { SyscallError } from "./errno.ts";
import { settings } from "../config.ts";
import type { NativeLib, NativePointer, Runtime, WakeReader, WorkerExit, WorkerHandle, WorkerMode } from "./types.ts";

/** The part of the Deno namespace this loader uses, typed here so the file also checks under
 * tsc (tsup's declaration build), which has no Deno lib. */
interface DenoApi {
  dlopen(path: string, symbols: Record<string, ForeignFunction>): { symbols: Record<string, unknown> };
  UnsafePointerView: { getArrayBuffer(pointer: unknown, byteLength: number): ArrayBuffer };
  permissions: { querySync(descriptor: { name: string }): { state: string } };
  Command: new (command: string, options: {
    args: string[]; env: Record<string, string>; stdin: "null"; stdout: "inherit"; stderr: "inherit";
  }) => { spawn(): { pid: number; status: Promise<{ code: number; signal: string | null }>; kill(signal: string): void } };
  execPath(): string;
  exit(code: number): never;
  readonly mainModule: string;
  readonly pid: number;
}

interface ForeignFunction {
  name: string;
  parameters: string[];
  result: string;
  nonblocking: boolean;
}

const Deno = (globalThis as unknown as { Deno: DenoApi }).Deno;

const TYPES: Record<Tag, string> = {
  i32: "i32",
  u32: "u32",
  buf: "buffer",
  ptr: "pointer",
  void: "void",
};

export function load(path: string, table: Record<string, SymbolSpec>): Runtime {
  const definitions: Record<string, ForeignFunction> = {};
  for (const [name, spec] of Object.entries(table)) {
    definitions[name] = {
      name: spec.native ?? name,
      parameters: spec.args.map((tag) => TYPES[tag]),
      result: TYPES[spec.ret],
      nonblocking: spec.nonblocking ?? false,
    };
  }
  const library = Deno.dlopen(path, definitions);
  return {
    name: "deno",
    lib: library.symbols as unknown as NativeLib,
    viewNative: (pointer: NativePointer, byteLength: number) =>
      Deno.UnsafePointerView.getArrayBuffer(pointer, byteLength),
    openWakeReader: (fd: number) => openWakeReader(fd, library.symbols as unknown as NativeLib),
    staticBody,
    impliedContentType: () => null, // Deno's headers name what Deno.serve sends
    fileBodyOf: () => null, // an FsFile's readable is a plain stream: file() is the sendfile path on Deno
    bareBody,
    isResponse: (value: unknown): value is Response => value instanceof DenoResponse,
    FastResponse: DenoResponse,
    mainModule: Deno.mainModule,
    defaultWorkerMode: "process",
    spawnWorker,
    workerContext,
    exitWorker,
    schedule: (callback: () => void) => void immediate(callback),
    unrefTimer: (timer) => (timer as unknown as { unref(): void }).unref(), // Deno 2's timers are node:timers Timeouts
    unrefServer: (server: { unref(): unknown }) => void server.unref(),
    routeUpgradeWebSocket,
  };
}

/** Deno.upgradeWebSocket for every request: ours to `upgrade`, the rest to Deno's own (once per process). */
function routeUpgradeWebSocket(ours: (request: Request) => boolean, upgrade: (request: Request, options?: object) => unknown): void {
  const deno = Deno as unknown as { upgradeWebSocket: (request: Request, options?: object) => unknown; [ROUTED]?: true };
  if (deno[ROUTED]) return;
  const native = deno.upgradeWebSocket;
  deno.upgradeWebSocket = (request: Request, options?: object) => (ours(request) ? upgrade(request, options) : native(request, options));
  deno[ROUTED] = true;
}
const ROUTED = Symbol("reuseport.routedUpgradeWebSocket");

/** Read once: the global is a lazy getter. */
const immediate = globalThis.setImmediate;

// Deno keeps a Response's inner state under symbols. A body given as a string or bytes stays
// there as `body.source` (what Deno.serve's own fast path reads); `new Response("text")` with no
// init keeps the string under "lazy static body" until the headers are first read. If a Deno
// release changes that shape, we fall back to reading the stream.
/** Read once: the global is a lazy getter (~35 ns per lookup). */
const DenoResponse = globalThis.Response;
const SYMBOLS = Object.getOwnPropertySymbols(new DenoResponse(null));
const INNER = SYMBOLS.find((s) => s.description === "response");
const LAZY_BODY = SYMBOLS.find((s) => s.description === "lazy static body");
/** Response.json() keeps its Content-Type beside the lazy body: such a response is not bare. */
const LAZY_CONTENT_TYPE = SYMBOLS.find((s) => s.description === "lazy static content type");

type Internals = Record<symbol, unknown>;

/** Deno keeps `new Response("text")` (no init) lazily: the string, no header list yet. */
function bareBody(response: Response): string | undefined {
  if (!LAZY_BODY) return undefined;
  if (LAZY_CONTENT_TYPE && typeof (response as unknown as Internals)[LAZY_CONTENT_TYPE] === "string") return undefined;
  const lazy = (response as unknown as Internals)[LAZY_BODY];
  return typeof lazy === "string" ? lazy : undefined;
}

function staticBody(response: Response): string | Uint8Array | null | undefined {
  if (LAZY_BODY) {
    const lazy = (response as unknown as Internals)[LAZY_BODY];
    if (typeof lazy === "string") return lazy;
  }
  const inner = INNER ? (response as unknown as Internals)[INNER] as { body?: { source?: unknown } | null } : undefined;
  if (!inner || inner.body === undefined) return undefined;
  if (inner.body === null) return null;
  if (response.bodyUsed) return undefined;
  const source = inner.body.source;
  if (typeof source === "string" || source instanceof Uint8Array) return source;
  return undefined;
}

/**
 * Deno cannot watch a raw fd with its own I/O (files are read on its blocking pool, and an eventfd cannot be
 * reopened through /proc), so the wait itself runs on that pool: a nonblocking FFI call polls the fd and
 * reads away what woke it. It waits on its own copy of the fd: closing the original (the ring's eventfd,
 * the wake pipe) can never leave it polling a number that was reused; whoever closes the original wakes it
 * first (the ring signals its eventfd, the poller's pipe hangs up), and the copy is closed when it returns.
 */
function openWakeReader(fd: number, lib: NativeLib): WakeReader {
  const copy = lib.rp_dup(fd);
  if (copy < 0) throw new SyscallError("fcntl(F_DUPFD_CLOEXEC)", -copy, `fd ${fd}`);
  let closed = false;
  let waiting = false;
  let released!: () => void;
  const whenReleased = new Promise<void>((resolve) => (released = resolve));
  return {
    async next() {
      if (closed) return false;
      waiting = true;
      const revents = await lib.rp_wait_input_async(copy, -1);
      waiting = false;
      if (closed) {
        lib.rp_close(copy);
        released();
        return false;
      }
      if (revents < 0) throw new SyscallError("poll", -revents, `wake fd ${fd}`); // our own copy: cannot happen quietly
      return true;
    },
    close() {
      if (closed) return whenReleased;
      closed = true;
      if (!waiting) {
        lib.rp_close(copy);
        released();
      }
      return whenReleased;
    },
  };
}

const CONTEXT_NAME_PREFIX = "reuseport:";
const PERMISSIONS = ["read", "write", "net", "env", "run", "ffi", "sys", "import"] as const;

/** The permission flags this process runs with, so a worker process gets the same ones. */
function permissionFlags(): string[] {
  const granted = PERMISSIONS.filter((name) => Deno.permissions.querySync({ name }).state === "granted");
  if (granted.length === PERMISSIONS.length) return ["--allow-all"];
  return granted.map((name) => `--allow-${name}`);
}

function spawnWorker(mode: WorkerMode, context: unknown, argv: string[]): WorkerHandle {
  if (mode === "thread") {
    const worker = new Worker(Deno.mainModule, { type: "module", name: CONTEXT_NAME_PREFIX + JSON.stringify({ context, argv }) });
    let settle!: (exit: WorkerExit) => void;
    const exited = new Promise<WorkerExit>((resolve) => (settle = resolve));
    worker.addEventListener("error", (event) => {
      event.preventDefault();
      console.error("reuseport: worker thread error:", event.message);
      worker.terminate();
      settle({ code: 1, signal: null });
    });
    // Deno has no close event for Workers: the worker posts "exit" before it ends itself.
    worker.addEventListener("message", (event) => {
      if ((event as MessageEvent).data === "reuseport:exit") {
        worker.terminate();
        settle({ code: 0, signal: null });
      }
    });
    return { mode, pid: Deno.pid, exited, kill: () => (worker.terminate(), settle({ code: null, signal: "SIGKILL" })) };
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissionFlags(), Deno.mainModule, ...argv],
    env: { [settings.worker.name]: JSON.stringify(context) },
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const exited = child.status.then((status) => ({ code: status.signal ? null : status.code, signal: status.signal ?? null }));
  return {
    mode,
    pid: child.pid,
    exited,
    kill: () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    },
  };
}

function workerContext(): unknown {
  const name = (globalThis as { name?: string }).name;
  if (typeof name === "string" && name.startsWith(CONTEXT_NAME_PREFIX)) return JSON.parse(name.slice(CONTEXT_NAME_PREFIX.length)).context;
  const env = settings.worker.read();
  return env ? JSON.parse(env) : null;
}

function exitWorker(code: number): void {
  const scope = globalThis as { name?: string; postMessage?: (m: unknown) => void; close?: () => void };
  if (typeof scope.name === "string" && scope.name.startsWith(CONTEXT_NAME_PREFIX)) {
    scope.postMessage!("reuseport:exit");
    scope.close!();
    return;
  }
  Deno.exit(code);
}
