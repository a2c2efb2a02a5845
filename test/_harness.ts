// The one place tests ask "Bun or Deno?": suites import `test` from here and stay runtime-neutral.
// Assertions come from node:assert/strict, which both runtimes ship.
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

/** Registers a test on the current runtime; every suite calls only this. */
export function test(name: string, fn: TestFn, options: TestOptions = {}): void {
  const shown = options.skip ? `${name} (skipped: ${options.skip})` : name;
  const timeoutMs = options.timeoutMs ?? 20_000;
  if (bunTest) {
    if (options.skip) bunTest.skip(shown, fn);
    else bunTest(shown, fn, timeoutMs);
    return;
  }
  Deno.test({
    name: shown,
    ignore: Boolean(options.skip),
    // Servers keep pipe reads and timers of their own; each test closes what it opens.
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () => withTimeout(fn, timeoutMs, name),
  });
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
