// The one runtime switch: loads bun.ts or deno.ts (never both), checks the ABI, and
// exports the runtime-neutral `runtime`. REUSEPORT_TRACE_FFI=1 logs and times every call.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { ABI_VERSION, LAYOUT, symbols } from "./symbols.ts";
import { settings } from "../config.ts";
import type { Runtime } from "./types.ts";
import { LOAD_PERMISSIONS, requirePermissions } from "./permissions.ts";

export type { NativeLib, NativePointer, Runtime, WakeReader, WorkerExit, WorkerHandle, WorkerMode } from "./types.ts";

declare const Bun: unknown;

const ARCH_NAMES: Record<string, string> = { x64: "x86_64", arm64: "aarch64" };

/** "musl" or "gnu": the libc this process runs on, read from its own mappings (no process.report in Deno). */
function hostLibc(arch: string): "musl" | "gnu" {
  try {
    const maps = readFileSync("/proc/self/maps", "utf8");
    if (/\/ld-musl-|libc\.musl/.test(maps)) return "musl";
    if (/\/libc\.so\.6|\/ld-linux/.test(maps)) return "gnu";
  } catch {
    // no procfs (some sandboxes): fall back to the loader on disk
  }
  return existsSync(`/lib/ld-musl-${arch}.so.1`) ? "musl" : "gnu";
}

/** The package root: src/ffi/index.ts sits two levels down, the bundled dist/index.js one. */
function packageRoots(): string[] {
  return ["../../", "../"]
    .map((up) => fileURLToPath(new URL(up, import.meta.url)))
    .filter((root) => existsSync(`${root}zig/build.zig`) || existsSync(`${root}zig/zig-out/lib`));
}

/** REUSEPORT_LIBRARY, then the host build (development), then the prebuilt library for this arch and libc. */
function libraryPath(): string {
  if (process.platform !== "linux") {
    throw new Error(`reuseport runs on Linux only (SO_REUSEPORT, epoll, BPF); this is ${process.platform}`);
  }
  const override = settings.library.read();
  if (override) return override;
  const arch = ARCH_NAMES[process.arch];
  const target = arch ? `${arch}-linux-${hostLibc(arch)}` : undefined;
  const tried: string[] = [];
  for (const root of packageRoots()) {
    tried.push(`${root}zig/zig-out/lib/libreuseport.so`);
    if (target) tried.push(`${root}zig/zig-out/lib/${target}/libreuseport.so`);
  }
  const found = tried.find((path) => existsSync(path));
  if (found) return found;
  const why = target ? `no library for ${target}` : `no prebuilt library for arch ${process.arch} (x64 and arm64 are shipped)`;
  throw new Error(
    `reuseport: native library not found (${why}). Tried:\n  REUSEPORT_LIBRARY (unset)\n${tried.map((path) => `  ${path}`).join("\n") || `  (no package root next to ${import.meta.url})`}\n` +
      "Set REUSEPORT_LIBRARY to a libreuseport.so, or build one with `npm run bootstrap` (installs zig and builds it).",
  );
}

function checkAbi(rt: Runtime, path: string): void {
  const version = rt.lib.rp_abi_version();
  if (version !== ABI_VERSION) {
    throw new Error(`reuseport: ${path} has ABI ${version}, this code expects ${ABI_VERSION}; rebuild it (npm run bootstrap)`);
  }
  Object.entries(LAYOUT).forEach(([name, expected], which) => {
    const actual = rt.lib.rp_layout_size(which);
    if (actual !== expected) throw new Error(`reuseport: layout ${which} (${name}) is ${actual} bytes natively, ${expected} in symbols.ts; rebuild ${path}`);
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
  const path = libraryFile;
  const loader = typeof Bun !== "undefined" ? await import("./bun.ts") : await import("./deno.ts");
  const rt = loader.load(path, symbols);
  checkAbi(rt, path);
  return settings.traceFfi.read() ? traced(rt) : rt;
}

requirePermissions(LOAD_PERMISSIONS, "to load its native library");

/** The path of the native library this process loaded (children can be given it as REUSEPORT_LIBRARY). */
export const libraryFile: string = libraryPath();
export const runtime: Runtime = await load();
export const lib = runtime.lib;
