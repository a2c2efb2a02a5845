// The environment variables reuseport reads, each declared once: its name, type, default and meaning.
// A setting is read when it is used, not at import (the CLI and tests set some first); unset or empty means
// the default, and a bad value is a ConfigError naming the variable and the value. README.md's table of them
// is generated from these declarations (scripts/env-table.ts). Imports nothing but errors.ts, so src/ffi may use it.
import process from "node:process";
import { ConfigError } from "./errors.ts";

/** One environment variable. */
export interface Setting<T> {
  readonly name: string;
  /** The values it takes, as the README's table shows them. */
  readonly type: string;
  /** The default, as the table shows it. */
  readonly defaultText: string;
  readonly meaning: string;
  /** Set by reuseport itself for its own children, not by hand. */
  readonly internal: boolean;
  /** Where it is read when that is not the library (the launcher, a script). */
  readonly readBy?: string;
  /** The value now: the default when the variable is unset or empty; a ConfigError when it is malformed. */
  read(): T;
}

interface Describe {
  meaning: string;
  internal?: boolean;
  readBy?: string;
}

/** "a", "b" or "c". */
function listed(values: readonly string[]): string {
  const quoted = values.map((value) => JSON.stringify(value));
  return quoted.length === 1 ? quoted[0] : `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
}

function raw(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === "" ? undefined : value;
}

function shown(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/** Checks that value is one of values; `option` names it in the error (a variable or an option). */
export function checkChoice<T extends string>(value: unknown, values: readonly T[], option: string): T {
  if (values.includes(value as T)) return value as T;
  throw new ConfigError(option, `must be ${listed(values)}, got ${shown(value)}`);
}

function choice<T extends string>(name: string, values: readonly T[], fallback: T, about: Describe): Setting<T> {
  const type = values.map((value) => `\`${value}\``).join(", ");
  return { name, type, defaultText: `\`${fallback}\``, internal: false, ...about, read: () => checkChoice(raw(name) ?? fallback, values, name) };
}

function flag(name: string, about: Describe): Setting<boolean> {
  return { name, type: "`0`, `1`", defaultText: "`0`", internal: false, ...about, read: () => checkChoice(raw(name) ?? "0", ["0", "1"], name) === "1" };
}

function integer(name: string, min: number, max: number, unit: string, fallback: number, about: Describe): Setting<number> {
  const range = `${min} to ${max}${unit ? ` (${unit})` : ""}`;
  const read = (): number => {
    const value = raw(name);
    if (value === undefined) return fallback;
    const number = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(number >= min && number <= max)) throw new ConfigError(name, `must be an integer from ${range}, got ${JSON.stringify(value)}`);
    return number;
  };
  return { name, type: `integer, ${range}`, defaultText: `\`${fallback}\``, internal: false, ...about, read };
}

function text(name: string, type: string, defaultText: string, about: Describe): Setting<string | undefined> {
  return { name, type, defaultText, internal: false, ...about, read: () => raw(name) };
}

/** How a poll loop reads its sockets: io_uring where the kernel allows it, always epoll, or io_uring required. */
export type IoMode = "auto" | "epoll" | "io_uring";
export const IO_MODES: readonly IoMode[] = ["auto", "epoll", "io_uring"];

/** An explicit read path (an option), checked like REUSEPORT_IO. */
export function checkIoMode(value: unknown, option = "io"): IoMode {
  return checkChoice(value, IO_MODES, option);
}

/** Every variable, in the order of the README's table. */
export const settings = {
  io: choice("REUSEPORT_IO", IO_MODES, "auto", {
    meaning: "How HTTP servers read their sockets: through io_uring where the kernel allows it, else epoll (`auto`); " +
      "always epoll; or io_uring, failing with a `SyscallError` where it cannot be set up. An explicit `io` option wins.",
  }),
  tickUs: integer("REUSEPORT_TICK_US", 0, 1_000_000, "µs", 1000, {
    meaning: "While traffic is dense, the longest an HTTP engine's thread sleeps in its ring before the runtime " +
      "gets a turn (timers, other I/O); `0`: it never sleeps there (docs/event-loop.md).",
  }),
  nativeResponse: flag("REUSEPORT_NATIVE_RESPONSE", {
    meaning: "Bun: `1` leaves the global `Response` alone; string and byte bodies are then read as streams.",
  }),
  library: text("REUSEPORT_LIBRARY", "a path", "the package's own build", {
    meaning: "The `libreuseport.so` to load instead of the one in `zig/zig-out/lib/`.",
  }),
  traceFfi: flag("REUSEPORT_TRACE_FFI", {
    meaning: "`1` logs every native call to stderr with its arguments, result and time.",
  }),
  port: integer("PORT", 0, 65535, "", 3000, {
    meaning: "The port of `serve()` when it is given no `port`.",
  }),
  runtime: choice("REUSEPORT_RUNTIME", ["bun", "deno"] as const, "bun", {
    meaning: "The runtime the `reuseport` command runs under.",
    readBy: "bin/reuseport.mjs",
  }),
  worker: text("REUSEPORT_WORKER", "JSON", "unset (the primary)", {
    meaning: "A process worker's context, set by its primary.",
    internal: true,
  }),
  cliEmbedded: flag("REUSEPORT_CLI_EMBEDDED", {
    meaning: "Set by the standalone binary, whose entry starts the CLI itself (scripts/compiled-cli.ts).",
    internal: true,
  }),
} as const;
