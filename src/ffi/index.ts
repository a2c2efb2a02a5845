// The one runtime switch: loads bun.ts or deno.ts (never both), checks the ABI, and
// exports the runtime-neutral `runtime`. REUSEPORT_TRACE_FFI=1 logs and times every call.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { ABI_VERSION, LAYOUT, symbols } from "./symbols.ts";
import type { Runtime } from "./types.ts";

export type { NativeLib, NativePointer, Runtime, WakeReader } from "./types.ts";

declare const Bun: unknown;

function libraryPath(): string {
  if (process.platform !== "linux") {
    throw new Error(`reuseport runs on Linux only (SO_REUSEPORT, epoll, BPF); this is ${process.platform}`);
  }
  const override = process.env.REUSEPORT_LIBRARY;
  if (override) return override;
  const built = fileURLToPath(new URL("../../zig/zig-out/lib/libreuseport.so", import.meta.url));
  if (existsSync(built)) return built;
  throw new Error(
    `reuseport: native library not found at ${built}; run \`npm run bootstrap\` (installs zig and builds it)`,
  );
}

function checkAbi(rt: Runtime, path: string): void {
  const version = rt.lib.rp_abi_version();
  if (version !== ABI_VERSION) {
    throw new Error(`reuseport: ${path} has ABI ${version}, this code expects ${ABI_VERSION}; rebuild it (npm run bootstrap)`);
  }
  const sizes = [LAYOUT.epollEventSlotBytes, LAYOUT.sockaddrStorageBytes, LAYOUT.udpSlotMetaBytes];
  sizes.forEach((expected, which) => {
    const actual = rt.lib.rp_layout_size(which);
    if (actual !== expected) throw new Error(`reuseport: layout ${which} is ${actual} bytes natively, ${expected} in symbols.ts`);
  });
}

function traced(rt: Runtime): Runtime {
  const lib: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(rt.lib as Record<string, (...a: unknown[]) => unknown>)) {
    lib[name] = (...args: unknown[]) => {
      const started = performance.now();
      const result = fn(...args);
      const shown = args.map((a) => (a instanceof Uint8Array ? `<${a.byteLength}B>` : String(a)));
      console.error(`[ffi] ${name}(${shown.join(", ")}) = ${String(result)} ${(performance.now() - started).toFixed(3)}ms`);
      return result;
    };
  }
  return { ...rt, lib: lib as unknown as Runtime["lib"] };
}

async function load(): Promise<Runtime> {
  const path = libraryPath();
  const loader = typeof Bun !== "undefined" ? await import("./bun.ts") : await import("./deno.ts");
  const rt = loader.load(path, symbols);
  checkAbi(rt, path);
  return process.env.REUSEPORT_TRACE_FFI === "1" ? traced(rt) : rt;
}

export const runtime: Runtime = await load();
export const lib = runtime.lib;
