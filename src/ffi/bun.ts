// bun:ffi loader: the only file that imports bun:ffi.
// Types: https://bun.sh/reference/bun/ffi ("buffer" args are zero-copy; "ptr" returns a number).
import { dlopen, FFIType, toArrayBuffer } from "bun:ffi";
import type { SymbolSpec, Tag } from "./symbols.ts";
import { workerData } from "node:worker_threads";
import process from "node:process";
import { settings } from "../config.ts";
import type { NativeLib, NativePointer, Runtime, WakeReader, WorkerExit, WorkerHandle, WorkerMode } from "./types.ts";

// Names rather than FFIType numbers: bun 1.4.4's FFIType.buffer (20) is refused as "invalid ABI type".
/** The part of the Bun global this loader uses, typed here so the file also checks where Bun's
 * types are not loaded (deno check for JSR). */
interface BunApi {
  readonly main: string;
  file(fd: number): { stream(): ReadableStream<Uint8Array> };
  spawn(argv: string[], options: { env: Record<string, string | undefined>; stdio: ["ignore", "inherit", "inherit"] }): {
    readonly pid: number;
    readonly exited: Promise<number>;
    readonly exitCode: number | null;
    readonly signalCode: string | null;
    kill(signal: string): void;
  };
}

const Bun = (globalThis as unknown as { Bun: BunApi }).Bun;

const TYPES: Record<Tag, string> = {
  i32: "i32",
  u32: "u32",
  buf: "buffer",
  ptr: "ptr",
  void: "void",
};

export function load(path: string, table: Record<string, SymbolSpec>): Runtime {
  const definitions: Record<string, { args: FFIType[]; returns: FFIType }> = {};
  for (const [name, spec] of Object.entries(table)) {
    if (spec.nonblocking) continue; // Bun has no nonblocking FFI (oven-sh/bun#5490)
    definitions[name] = { args: spec.args.map((tag) => TYPES[tag] as unknown as FFIType), returns: TYPES[spec.ret] as unknown as FFIType };
  }
  const { symbols } = dlopen(path, definitions);
  return {
    name: "bun",
    lib: symbols as unknown as NativeLib,
    viewNative: (pointer: NativePointer, byteLength: number) =>
      toArrayBuffer(pointer as number, 0, byteLength) as ArrayBuffer,
    openWakeReader,
    staticBody,
    impliedContentType,
    fileBodyOf,
    bareBody,
    isResponse: (value: unknown): value is Response => value instanceof NativeResponse,
    FastResponse: RecordingResponse,
    mainModule: Bun.main,
    defaultWorkerMode: "thread",
    spawnWorker,
    workerContext,
    exitWorker: (code: number) => process.exit(code), // in a Worker this ends only that thread
    schedule: (callback: () => void) => void immediate(callback),
    unrefTimer: (timer) => (timer as unknown as { unref(): void }).unref(),
    unrefServer: (server: { unref(): unknown }) => void server.unref(),
    routeUpgradeWebSocket: () => {},
  };
}

const immediate = globalThis.setImmediate;

// Bun keeps a body given as a string or bytes in a Blob with no synchronous accessor, and
// reading it (arrayBuffer()) would also drain a stream body into memory. So that `new
// Response("Hello")` need not go through a stream reader (a promise round per response), importing
// the library makes the global Response a subclass that remembers a string or byte body as given
// (exported as FastResponse, as srvx does). Instances are real Responses; `x instanceof Response`
// holds for every Response, native ones from fetch() included. REUSEPORT_NATIVE_RESPONSE=1 leaves
// the global alone: handlers then get the fast path only from `new FastResponse(...)`.
const NativeResponse = globalThis.Response;
const STATIC_BODY = Symbol("reuseport.staticBody");
const BARE = Symbol("reuseport.bare");
const IMPLIED_TYPE = Symbol("reuseport.impliedType");
const FILE_BODY = Symbol("reuseport.fileBody");
type Recorded = Response & { [STATIC_BODY]?: string | Uint8Array; [BARE]?: boolean; [IMPLIED_TYPE]?: string; [FILE_BODY]?: BunFileLike };
/** What tells a Bun.file(path) from another Blob. */
interface BunFileLike extends Blob {
  name: string;
  exists(): Promise<boolean>;
}

class RecordingResponse extends NativeResponse {
  constructor(body?: BodyInit | null, init?: ResponseInit) {
    super(body, init);
    if (typeof body === "string") (this as Recorded)[STATIC_BODY] = body;
    else if (body instanceof Uint8Array || body instanceof ArrayBuffer) {
      (this as Recorded)[STATIC_BODY] = body instanceof Uint8Array ? body : new Uint8Array(body);
      (this as Recorded)[IMPLIED_TYPE] = "application/octet-stream"; // what Bun.serve sends for bytes
    } else if (body instanceof Blob && body.type === "") (this as Recorded)[IMPLIED_TYPE] = "text/plain;charset=utf-8";
    if (init === undefined) (this as Recorded)[BARE] = true; // status 200, no headers
    // Bun derives these bodies' Content-Type when the headers are first read, which must happen before the
    // body is: the sender reads the stream first (Bun.serve sends the same type).
    if (body instanceof Blob || body instanceof FormData || body instanceof URLSearchParams) void this.headers;
    // A Bun.file() is a Blob with a path for a name; a web File (instanceof File) holds its bytes.
    if (body instanceof Blob && !(body instanceof File) && typeof (body as BunFileLike).name === "string" && typeof (body as BunFileLike).exists === "function") {
      (this as Recorded)[FILE_BODY] = body as BunFileLike;
    }
  }

  /** Whoever reads the headers may change them: the response is no longer bare. */
  override get headers(): Headers {
    (this as Recorded)[BARE] = false;
    return super.headers;
  }

  /** Response.json with its string body remembered (the native one's body would be read as a stream). */
  static override json(data: unknown, init?: ResponseInit): Response {
    const body = JSON.stringify(data);
    if (body === undefined) return NativeResponse.json(data, init); // the native one says what is wrong
    const headers = new Headers(init?.headers);
    if (!headers.has("content-type")) headers.set("content-type", "application/json;charset=utf-8");
    return new RecordingResponse(body, { status: init?.status, statusText: init?.statusText, headers });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return value instanceof NativeResponse;
  }
}

Object.defineProperty(RecordingResponse, "name", { value: "Response" });

if (!settings.nativeResponse.read()) {
  Object.defineProperty(globalThis, "Response", { value: RecordingResponse, writable: true, configurable: true, enumerable: false });
}

function bareBody(response: Response): string | Uint8Array | undefined {
  const recorded = response as Recorded;
  if (recorded[BARE] !== true || recorded[STATIC_BODY] === undefined || response.bodyUsed) return undefined;
  return recorded[STATIC_BODY];
}

/** A Bun.file body; its size tells a slice (smaller than the file) from the whole file. */
function fileBodyOf(response: Response): { path: string; size: number } | null {
  const file = (response as Recorded)[FILE_BODY];
  if (file === undefined || response.bodyUsed) return null;
  return { path: file.name, size: file.size };
}

function impliedContentType(response: Response): string | null {
  return (response as Recorded)[IMPLIED_TYPE] ?? null;
}

function staticBody(response: Response): string | Uint8Array | null | undefined {
  const recorded = (response as Recorded)[STATIC_BODY];
  if (recorded !== undefined && !response.bodyUsed) return recorded;
  return response.body === null ? null : undefined;
}

/** Bun polls the fd (a pipe, or a ring's eventfd) in its own loop through Bun.file(fd).stream(). */
function openWakeReader(fd: number): WakeReader {
  const reader = Bun.file(fd).stream().getReader();
  let closing: Promise<void> | null = null;
  return {
    async next() {
      if (closing) return false;
      const { done } = await reader.read();
      return !done && !closing;
    },
    close() {
      closing ??= reader.cancel().then(() => {}, () => {}); // Bun closes its dup of the fd when this settles
      return closing;
    },
  };
}


function spawnWorker(mode: WorkerMode, context: unknown, argv: string[]): WorkerHandle {
  if (mode === "thread") {
    const worker = new Worker(Bun.main, { workerData: { reuseport: context }, argv } as WorkerOptions);
    let crashed = false;
    worker.addEventListener("error", (event) => {
      crashed = true;
      console.error("reuseport: worker thread error:", (event as ErrorEvent).message ?? event);
    });
    const exited = new Promise<WorkerExit>((resolve) => {
      worker.addEventListener("close", (event) => {
        const code = (event as CloseEvent & { code?: number }).code;
        resolve({ code: crashed ? 1 : (code ?? 0), signal: null });
      });
    });
    return { mode, pid: process.pid, exited, kill: () => worker.terminate() };
  }
  const child = Bun.spawn([process.execPath, Bun.main, ...argv], {
    env: { ...process.env, [settings.worker.name]: JSON.stringify(context) },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const exited = child.exited.then(() => ({ code: child.signalCode ? null : child.exitCode, signal: child.signalCode ? String(child.signalCode) : null }));
  return { mode, pid: child.pid, exited, kill: () => child.kill("SIGKILL") };
}

function workerContext(): unknown {
  const data = workerData as { reuseport?: unknown } | null;
  if (data && typeof data === "object" && data.reuseport) return data.reuseport;
  const env = settings.worker.read();
  return env ? JSON.parse(env) : null;
}
