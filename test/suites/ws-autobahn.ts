// The Autobahn testsuite's fuzzingclient (RFC 6455, RFC 7692) against our WebSocket echo server
// (test/fixtures/ws-echo.ts) in both idioms on this runtime: no case may come out FAILED and the server may
// not crash. The cases are scripts/autobahn.mjs's quick set, so that the suite stays within minutes on a
// small machine; `npm run autobahn` runs every case, beside the runtimes' own servers. The suite is Python 2:
// without a Python 2.7 the tests are skipped and say so.
import process from "node:process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, test } from "../_harness.ts";
import { runtimeName } from "../_runtime.ts";

interface CaseResult { behavior: string; behaviorClose: string; reason: string | null }
interface Stopped { crashed: boolean; reason: string | null; output: string }
/** What this suite uses of scripts/autobahn.mjs (plain JavaScript, so typed here). */
interface Autobahn {
  QUICK_CASES: string[];
  findPython2(): string | null;
  ensureAutobahn(): Promise<{ skip?: string }>;
  runFuzzing(options: { url: string; cases: string[]; outDir: string; wstest: unknown; timeoutMs: number }): Promise<{ cases: Record<string, CaseResult> }>;
  startEcho(options: { executable: string; runtimeArgs: string[]; idiom: string; impl: string }): Promise<{ port: number; stop(): Promise<Stopped> }>;
  isFailed(result: CaseResult): boolean;
  caseOrder(a: string, b: string): number;
}

// Imported by URL: the script has no type declarations, and a literal specifier would make tsc ask for one.
const SCRIPT = new URL("../../scripts/autobahn.mjs", import.meta.url).href;
const autobahn: Autobahn = await import(SCRIPT);

/** The whole fuzzingclient run of one idiom; the quick set takes well under a minute. */
const FUZZING_TIMEOUT_MS = 150_000;
/** Each test: the run, the server's start and stop, and a first install (pip, bounded by the script). */
const TEST_TIMEOUT_MS = 300_000;
const RUNTIME_ARGS = runtimeName === "deno" ? ["run", "-A", "--no-check"] : [];
const skip = autobahn.findPython2() === null ? "no Python 2.7 for the Autobahn testsuite (~/.pyenv/versions/2.7.x or python2.7 on PATH)" : false;

for (const idiom of ["bun", "deno"]) {
  test(`ws autobahn: ${idiom} idiom on ${runtimeName}, fuzzingclient quick set: no FAILED case, no crash`, async () => {
    const wstest = await autobahn.ensureAutobahn();
    assert.equal(wstest.skip, undefined, "findPython2 found a Python 2.7 but ensureAutobahn did not");
    const outDir = mkdtempSync(join(tmpdir(), `reuseport-autobahn-${idiom}-`));
    const echo = await autobahn.startEcho({ executable: process.execPath, runtimeArgs: RUNTIME_ARGS, idiom, impl: "reuseport" });
    let cases: Record<string, CaseResult>;
    try {
      cases = (await autobahn.runFuzzing({ url: `ws://127.0.0.1:${echo.port}`, cases: autobahn.QUICK_CASES, outDir, wstest, timeoutMs: FUZZING_TIMEOUT_MS })).cases;
    } finally {
      const stopped = await echo.stop();
      rmSync(outDir, { recursive: true, force: true });
      assert.ok(!stopped.crashed, `the echo server crashed: ${stopped.reason}\n${stopped.output.slice(-2000)}`);
    }
    const ids = Object.keys(cases).sort(autobahn.caseOrder);
    assert.ok(ids.length > 200, `the fuzzingclient ran ${ids.length} cases`);
    const failed = ids.filter((id) => autobahn.isFailed(cases[id]));
    const listed = failed.slice(0, 40).map((id) => `  ${id} (${cases[id].behavior}/${cases[id].behaviorClose}): ${cases[id].reason}`);
    assert.equal(failed.length, 0, `${failed.length} of ${ids.length} cases FAILED:\n${listed.join("\n")}`);
    // Bun's idiom asks for perMessageDeflate, so its 12.x/13.x cases must negotiate it; Deno's has no option for it.
    const undeflated = ids.filter((id) => /^1[23]\./.test(id) && cases[id].behavior === "UNIMPLEMENTED");
    if (idiom === "bun") assert.deepEqual(undeflated, [], "permessage-deflate was not negotiated");
  }, { skip, timeoutMs: TEST_TIMEOUT_MS });
}
