// Deno.dlopen loader: the only file that touches Deno.* FFI.
// Types: https://docs.deno.com/api/deno/~/Deno.dlopen ("buffer" is zero-copy; "pointer" is an object).
import type { SymbolSpec, Tag } from "./symbols.ts";
import type { NativeLib, NativePointer, Runtime, WakeReader } from "./types.ts";

const TYPES: Record<Tag, Deno.NativeType | "void"> = {
  i32: "i32",
  u32: "u32",
  buf: "buffer",
  ptr: "pointer",
  void: "void",
};

export function load(path: string, table: Record<string, SymbolSpec>): Runtime {
  const definitions: Record<string, Deno.ForeignFunction> = {};
  for (const [name, spec] of Object.entries(table)) {
    definitions[name] = {
      name: spec.native ?? name,
      parameters: spec.args.map((tag) => TYPES[tag] as Deno.NativeType),
      result: TYPES[spec.ret] as Deno.NativeResultType,
      nonblocking: spec.nonblocking ?? false,
    };
  }
  const library = Deno.dlopen(path, definitions);
  return {
    name: "deno",
    lib: library.symbols as unknown as NativeLib,
    hasAsyncWait: true,
    viewNative: (pointer: NativePointer, byteLength: number) =>
      Deno.UnsafePointerView.getArrayBuffer(pointer as Deno.PointerObject, byteLength),
    openWakeReader,
    staticBody,
  };
}

// Deno keeps a Response's inner state under symbols. A body given as a string or bytes stays
// there as `body.source` (what Deno.serve's own fast path reads); `new Response("text")` with no
// init keeps the string under "lazy static body" until the headers are first read. If a Deno
// release changes that shape, we fall back to reading the stream.
const SYMBOLS = Object.getOwnPropertySymbols(new Response(null));
const INNER = SYMBOLS.find((s) => s.description === "response");
const LAZY_BODY = SYMBOLS.find((s) => s.description === "lazy static body");

type Internals = Record<symbol, unknown>;

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

/** Deno cannot wrap a raw fd; re-opening the pipe through /proc gives an FsFile it reads on its pool. */
function openWakeReader(fd: number): WakeReader {
  const file = Deno.openSync(`/proc/self/fd/${fd}`, { read: true });
  const scratch = new Uint8Array(64);
  let closed = false;
  return {
    async next() {
      if (closed) return false;
      const n = await file.read(scratch).catch(() => null);
      return n !== null && !closed;
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        file.close();
      } catch {
        // already closed by a failed pending read
      }
    },
  };
}
