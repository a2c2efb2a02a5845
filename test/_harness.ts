// The one place tests ask "Bun or Deno?": suites import `test` from here and stay runtime-neutral.
// Assertions come from node:assert/strict, which both runtimes ship. suite() registers a suite's tests and,
// after them, a check that they left no fd open.
import { describeFds, openFds, type OpenFd } from "./_fds.ts";
export { default as assert } from "node:assert/strict";

export type TestFn = () => void | Promise<void>;
export interface TestOptions {
  /** Skip with a stated reason (printed in the test name). */
  skip?: string | false;
  timeoutMs?: number;
}

declare const Bun: unknown;
declare const Deno: {
  test(o: { name: string; fn: TestFn; ignore?: boolean; sanitizeOps?: boolean; sanitizeResources?: boolean }): void;
};

const bunTest = typeof Bun !== "undefined" ? (await import("bun:test")).test : null;

export interface SuiteOptions {
  /**
   * Deno's op and resource sanitizers for every test of the suite: a timer, an async op or a resource that a
   * test leaves behind fails it (Bun has none; the fd check covers both runtimes).
   */
  sanitizers?: boolean;
}

/** One suite: its file, and the fds open when its first test started (null until then). */
interface SuiteState {
  file: string;
  before: OpenFd[] | null;
  sanitizers: boolean;
}

/** The suite whose tests are being registered (see suite()); null outside one. */
let registering: SuiteState | null = null;
const FD_SETTLE_MS = 2000;

/** Registers a test on the current runtime; every suite calls only this. */
export function test(name: string, fn: TestFn, options: TestOptions = {}): void {
  const shown = options.skip ? `${name} (skipped: ${options.skip})` : name;
  const timeoutMs = options.timeoutMs ?? 20_000;
  const suite = registering;
  const run: TestFn = suite === null ? fn : () => {
    suite.before ??= openFds();
    return fn();
  };
  if (bunTest) {
    if (options.skip) bunTest.skip(shown, run);
    else bunTest(shown, run, timeoutMs);
    return;
  }
  Deno.test({
    name: shown,
    ignore: Boolean(options.skip),
    sanitizeOps: suite?.sanitizers ?? false,
    sanitizeResources: suite?.sanitizers ?? false,
    fn: () => withTimeout(run, timeoutMs, name),
  });
}

/**
 * Registers the tests of one suite (`load` imports its module), then one more test that compares this
 * process's open fds with those open when the suite's first test started.
 */
export async function suite(file: string, load: () => Promise<unknown>, options: SuiteOptions = {}): Promise<void> {
  const state: SuiteState = { file, before: null, sanitizers: options.sanitizers ?? false };
  registering = state;
  try {
    await load();
  } finally {
    registering = null;
  }
  test(`fds: ${file} closes every fd its tests opened`, () => checkFds(state));
}

/**
 * Fails when fds are open now that were not when the suite's first test started. Two kinds are the runtime's
 * own and allowed: dups of stdin/stdout/stderr (Bun makes them for children with inherited stdio), and what
 * the runtime's fetch pool still holds of connections the servers closed; the pool drops those within tens
 * of milliseconds and tells no one, so this waits for it (at most FD_SETTLE_MS) before it fails.
 */
async function checkFds(state: SuiteState): Promise<void> {
  if (state.before === null) return; // none of its tests ran (a name filter)
  const key = ({ fd, target }: OpenFd) => `${fd} ${target}`;
  const before = new Set(state.before.map(key));
  const stdio = new Set(openFds().filter(({ fd }) => fd <= 2).map(({ target }) => target));
  const opened = () => openFds().filter((entry) => !before.has(key(entry)) && !stdio.has(entry.target));
  const deadline = Date.now() + FD_SETTLE_MS;
  let left = opened();
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    left = opened();
  }
  if (left.length > 0) throw new Error(`${state.file} left ${left.length} fd(s) open:\n${describeFds(left)}`);
}

async function withTimeout(fn: TestFn, timeoutMs: number, name: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([fn(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
