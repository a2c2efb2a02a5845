// The runtime-neutral interface that loaders implement; the rest of src/ sees only this.
import type { SymbolName, symbols, Tag } from "./symbols.ts";

/** A native pointer returned by the library: a number on Bun, a PointerObject on Deno. Opaque. */
export type NativePointer = { readonly __native: unique symbol } | number | null;

type ArgOf<T extends Tag> = T extends "buf" ? Uint8Array : T extends "ptr" ? NativePointer : number;
type RetOf<T extends Tag> = T extends "ptr" ? NativePointer : T extends "void" ? void : number;
type Args<A extends readonly Tag[]> = { [K in keyof A]: A[K] extends Tag ? ArgOf<A[K]> : never };
type Fn<S> = S extends { args: infer A extends readonly Tag[]; ret: infer R extends Tag; nonblocking: true }
  ? (...args: Args<A>) => Promise<RetOf<R>>
  : S extends { args: infer A extends readonly Tag[]; ret: infer R extends Tag }
    ? (...args: Args<A>) => RetOf<R>
    : never;

/** Every symbol of the table; a nonblocking symbol is present only where the runtime has it. */
export type NativeLib = { [K in SymbolName]: Fn<(typeof symbols)[K]> };

/** Waits for input on a wake fd (the poller's pipe, or a ring's eventfd) with the runtime's own async machinery. */
export interface WakeReader {
  /** Resolves when the fd had input (taken away); false once the reader is closed. */
  next(): Promise<boolean>;
  /**
   * Stops reading; resolves once the runtime holds nothing of the fd any more (Bun's reader keeps a dup of
   * it until its cancel settles; Deno's copy is closed when the pending wait returns). The fd itself is
   * closed by its owner (the poller or the ring).
   */
  close(): Promise<void>;
}

export type WorkerMode = "thread" | "process";

export interface WorkerExit {
  /** Exit code (a thread that ended cleanly reports 0; a crashed one 1). */
  code: number | null;
  /** The signal that ended a process, e.g. "SIGKILL". */
  signal: string | null;
}

export interface WorkerHandle {
  readonly mode: WorkerMode;
  /** The process the worker runs in (the primary's own pid for a thread). */
  readonly pid: number;
  readonly exited: Promise<WorkerExit>;
  /** Ends the worker at once: SIGKILL for a process, terminate() for a thread. */
  kill(): void;
}

export interface Runtime {
  readonly name: "bun" | "deno";
  readonly lib: NativeLib;
  /** An ArrayBuffer aliasing native memory; create once and keep it. */
  viewNative(pointer: NativePointer, byteLength: number): ArrayBuffer;
  openWakeReader(fd: number): WakeReader;
  /** A Response's body when the runtime can hand it over synchronously (a string or bytes given
   * to the constructor), null for no body, undefined when it must be read as a stream. */
  staticBody(response: Response): string | Uint8Array | null | undefined;
  /** The body of a Response made as `new Response(body)` with a string or bytes and no init
   * (so status 200 and no headers), read without touching its headers; undefined otherwise. */
  bareBody(response: Response): string | Uint8Array | undefined;
  /** The Content-Type the runtime's own server sends for this Response when its headers name none (Bun:
   * application/octet-stream for bytes, text/plain for a Blob without a type), else null. */
  impliedContentType(response: Response): string | null;
  /** A file body's path and the size the body has (Bun: `new Response(Bun.file(path))`; a slice is smaller
   * than its file), else null. */
  fileBodyOf(response: Response): { path: string; size: number } | null;
  /** `value instanceof Response`, for any Response (fetch's included), at the cost of a plain instanceof:
   * Bun's global is our recording subclass (its hasInstance hook costs ~35 ns), Deno's a lazy global getter. */
  isResponse(value: unknown): value is Response;
  /**
   * The Response class whose string and byte bodies are sent without a stream read (Bun: a subclass that
   * remembers its body; Deno: the global, whose body the loader reads). On Bun it is also the global
   * `Response` unless REUSEPORT_NATIVE_RESPONSE=1.
   */
  readonly FastResponse: typeof Response;
  /** The entry module that workers re-run (path or URL). */
  readonly mainModule: string;
  /** Where workers live by default: Bun threads (Workers), Deno subprocesses. */
  readonly defaultWorkerMode: WorkerMode;
  /** Starts a worker that re-runs mainModule with `context` readable via workerContext(). */
  spawnWorker(mode: WorkerMode, context: unknown, argv: string[]): WorkerHandle;
  /** The context this thread or process was started with as a worker, or null in the primary. */
  workerContext(): unknown;
  /** Ends this worker (thread or process) once its work is done. */
  exitWorker(code: number): void;
  /**
   * Runs callback once the runtime's timers, I/O callbacks and promise continuations have had a turn
   * (setImmediate). Holds no global lookup per call: on Deno the global is a lazy getter.
   */
  schedule(callback: () => void): void;
  /** Lets the process exit while timer (from setTimeout or setInterval) is still pending. */
  unrefTimer(timer: ReturnType<typeof setTimeout> | ReturnType<typeof setInterval>): void;
  /** Lets the process exit while a listening node:net server is open. */
  unrefServer(server: { unref(): unknown }): void;
  /**
   * Deno: makes Deno.upgradeWebSocket(request) take our requests too (`ours` says which, `upgrade` does it);
   * others go to Deno's own. Bun has no such function: nothing to do.
   */
  routeUpgradeWebSocket(ours: (request: Request) => boolean, upgrade: (request: Request, options?: object) => unknown): void;
}
