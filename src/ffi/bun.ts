// bun:ffi loader: the only file that imports bun:ffi.
// Types: https://bun.sh/reference/bun/ffi ("buffer" args are zero-copy; "ptr" returns a number).
import { dlopen, FFIType, toArrayBuffer } from "bun:ffi";
import type { SymbolSpec, Tag } from "./symbols.ts";
import type { NativeLib, NativePointer, Runtime, WakeReader } from "./types.ts";

// Names rather than FFIType numbers: bun 1.4.4's FFIType.buffer (20) is refused as "invalid ABI type".
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
    hasAsyncWait: false,
    viewNative: (pointer: NativePointer, byteLength: number) =>
      toArrayBuffer(pointer as number, 0, byteLength) as ArrayBuffer,
    openWakeReader,
    staticBody,
  };
}

/** Bun keeps static bodies as Blobs with no synchronous accessor; only "no body" is known. */
function staticBody(response: Response): null | undefined {
  return response.body === null ? null : undefined;
}

/** Bun polls a pipe fd in its own loop through Bun.file(fd).stream(). */
function openWakeReader(fd: number): WakeReader {
  const reader = Bun.file(fd).stream().getReader();
  let closed = false;
  return {
    async next() {
      if (closed) return false;
      const { done } = await reader.read();
      return !done && !closed;
    },
    close() {
      closed = true;
      reader.cancel().catch(() => {}); // the native poller closes the fd itself
    },
  };
}
