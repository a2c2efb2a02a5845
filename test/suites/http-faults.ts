// A handler cannot take a worker down: every failure while a response is sent stays with that request. Before
// the head is written it becomes a 500 (or the error handler's answer) and the keep-alive connection goes on;
// after, the connection is cut. Handlers here are synchronous, so failures come in the middle of a poll round.
import { assert, test } from "../_harness.ts";
import { type RawClient, rawExchange, startServer, statusOf, withClient } from "../_http.ts";
import { ClusterChild } from "../_cluster.ts";
import { crashLine, LoadClient } from "../_load.ts";
import { BEFORE_HEAD_PATHS, CUT_CHUNKS, CUT_PATH, faultyResponse } from "../fixtures/faulty-responses.ts";
import { ErrorLog } from "../../src/http/error-log.ts";
import type { Server, ServeOptions } from "../../src/index.ts";

const ok = () => new Response("ok");
const faulty = (request: Request) => faultyResponse(new URL(request.url).pathname) ?? ok();
const GET_OK = "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n";
const INTERNAL_ERROR = "Internal Server Error";

/** Runs body with console.error captured (the engine logs every failure), and a fresh server. */
async function withFaultServer(
  options: Omit<ServeOptions, "fetch">,
  body: (server: Server, errors: string[]) => Promise<void>,
  fetch: (request: Request) => Response = faulty,
): Promise<void> {
  const original = console.error;
  const errors: string[] = [];
  console.error = (...args: unknown[]) => void errors.push(args.map((a) => (a instanceof Error ? a.message : String(a))).join(" "));
  const server = startServer(fetch, options);
  try {
    await body(server, errors);
  } finally {
    await server.stop(false);
    console.error = original;
  }
}

/** The responses in `text` as [status, body] (fixed-length bodies only). */
function parseResponses(text: string): [number, string][] {
  const out: [number, string][] = [];
  let rest = text;
  while (rest.length > 0) {
    const headEnd = rest.indexOf("\r\n\r\n");
    const length = /\r\ncontent-length: *(\d+)/i.exec(rest.slice(0, headEnd));
    if (headEnd < 0 || !length) throw new Error(`not a fixed-length response: ${JSON.stringify(rest.slice(0, 300))}`);
    const end = headEnd + 4 + Number(length[1]);
    out.push([statusOf(rest), rest.slice(headEnd + 4, end)]);
    rest = rest.slice(end);
  }
  return out;
}

/**
 * `path` pipelined between two good requests on one connection: 200, 500, 200 in order and nothing else
 * (a half-written head left in the batch would show), and the connection stays open.
 */
async function expect500Between(client: RawClient, path: string): Promise<void> {
  const before = client.text.length;
  await client.write(`${GET_OK}GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n${GET_OK}`);
  const text = await client.until((t) => (t.slice(before).match(/\r\n\r\n(ok|Internal Server Error)/g) ?? []).length === 3);
  assert.deepEqual(parseResponses(text.slice(before)), [[200, "ok"], [500, INTERNAL_ERROR], [200, "ok"]], path);
  assert.ok(!client.closed, `${path}: the keep-alive connection stays open`);
}

for (const path of BEFORE_HEAD_PATHS) {
  const what = {
    "/big-head": "a response head over 64 KiB",
    "/bad-value": "a header value the writer rejects (a control character)",
    "/locked-body": "a locked body stream",
    "/first-pull": "a body stream that fails on its first pull",
    "/missing-open": "a body stream whose start fails opening a missing file (Deno.open / fs.open)",
  }[path];
  test(`faults: ${what} becomes a 500, counted; the connection and the server go on`, () =>
    withFaultServer({}, async (server, errors) => {
      await withClient(server.port, async (client) => {
        await expect500Between(client, path);
        await expect500Between(client, path); // twice: the second one on the same connection too
      });
      const response = await fetch(`http://127.0.0.1:${server.port}/ok`); // another connection
      assert.equal(await response.text(), "ok");
      const stats = server.stats();
      assert.equal(stats.handlerErrors, 2, "counted as handler errors");
      assert.equal(stats.writeErrors, 0);
      assert.equal(stats.requests, 7);
      assert.ok(errors.length >= 2 && errors.length <= 4, `logged: ${JSON.stringify(errors)}`);
    }));
}

test("faults: a chunked stream that fails after some chunks is cut (no last chunk), counted as a write error", () =>
  withFaultServer({}, async (server, errors) => {
    const text = await rawExchange(server.port, `GET ${CUT_PATH} HTTP/1.1\r\nHost: a\r\n\r\n`);
    assert.equal(statusOf(text), 200);
    assert.match(text, /\r\ntransfer-encoding: chunked\r\n/i);
    const body = text.slice(text.indexOf("\r\n\r\n") + 4);
    const chunks = CUT_CHUNKS.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join("");
    assert.ok(chunks.startsWith(body), `what came is a prefix of the chunks: ${JSON.stringify(body)}`);
    assert.ok(!body.includes("0\r\n\r\n"), "no last chunk");
    const response = await fetch(`http://127.0.0.1:${server.port}/ok`);
    assert.equal(await response.text(), "ok");
    const stats = server.stats();
    assert.equal(stats.writeErrors, 1, "counted as a write error");
    assert.equal(stats.handlerErrors, 0);
    assert.ok(errors.some((line) => line.includes("stream fails after its chunks")), JSON.stringify(errors));
  }));

test("faults: an HTTP/1.0 stream that fails after some chunks is reset (its end is the close, so a FIN would pass for a whole body)", () =>
  withFaultServer({}, async (server) => {
    await withClient(server.port, async (client) => {
      let reset = false;
      client.socket.on("error", (error: NodeJS.ErrnoException) => (reset ||= error.code === "ECONNRESET"));
      await client.write(`GET ${CUT_PATH} HTTP/1.0\r\n\r\n`);
      await client.closedByPeer();
      assert.ok(reset, `the client saw a reset, not an end: ${JSON.stringify(client.text.slice(-200))}`);
    });
    assert.equal(server.stats().writeErrors, 1);
    assert.equal(await (await fetch(`http://127.0.0.1:${server.port}/ok`)).text(), "ok");
  }));

test("faults: the error handler's answer is used; one that throws or cannot be sent falls back to 500", () =>
  withFaultServer({
    error: (error) => {
      const message = (error as Error).message;
      if (message === "throw twice") throw new Error("the error handler throws too");
      if (message === "answer badly") return new Response("x", { headers: { "x-value": "a\x01b" } });
      if (message === "answer with a failing stream") return faultyResponse("/first-pull")!;
      return new Response(`handled: ${message}`, { status: 503 });
    },
  }, async (server) => {
    await withClient(server.port, async (client) => {
      for (const [path, status, body] of [
        ["/bad-value", 503, "handled: Invalid header value"],
        ["/first-pull", 503, "handled: first pull fails (test)"],
        ["/throw-twice", 500, INTERNAL_ERROR],
        ["/answer-badly", 500, INTERNAL_ERROR],
        ["/failing-stream", 500, INTERNAL_ERROR],
      ] as const) {
        const before = client.text.length;
        await client.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n${GET_OK}`);
        const text = await client.until((t) => t.slice(before).endsWith("\r\n\r\nok"));
        const [first, second] = parseResponses(text.slice(before));
        assert.equal(first[0], status, path);
        assert.ok(first[1].startsWith(body), `${path}: ${first[1]}`);
        assert.deepEqual(second, [200, "ok"], path);
        assert.ok(!client.closed, path);
      }
    });
    assert.equal(server.stats().handlerErrors, 5, "one per failed request");
  }, (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/throw-twice") throw new Error("throw twice");
    if (path === "/answer-badly") throw new Error("answer badly");
    if (path === "/failing-stream") throw new Error("answer with a failing stream");
    return faulty(request);
  }));

test("faults: failing responses in busy rounds cost no other connection (saturating load from another process)", () =>
  withFaultServer({}, async (server) => {
    const load = await LoadClient.start(server.port, { keepAlive: 32, fresh: 8, path: "/ok", maxMs: 60_000 });
    let totals;
    try {
      const bad = [...BEFORE_HEAD_PATHS, CUT_PATH];
      for (let round = 0; round < 5; round++) {
        const answers = await Promise.all(bad.map((path) => rawExchange(server.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)));
        answers.forEach((text, i) => assert.equal(statusOf(text), bad[i] === CUT_PATH ? 200 : 500, bad[i]));
      }
    } finally {
      totals = await load.stop();
    }
    assert.equal(crashLine(load.stderr), null);
    assert.ok(totals.requests > 100, `load ran: ${JSON.stringify(totals)}`);
    assert.equal(totals.failed, 0, `no other request failed: ${JSON.stringify(totals.errors)}`);
    const stats = server.stats();
    assert.equal(stats.handlerErrors, 5 * BEFORE_HEAD_PATHS.length);
    assert.equal(stats.writeErrors, 5);
  }), { timeoutMs: 60_000 });

test("faults: error lines are rate-limited, and what is left out is told in one line per window", () => {
  let now = 0;
  const log = new ErrorLog(3, 1000, () => now);
  const original = console.error;
  const lines: string[] = [];
  console.error = (...args: unknown[]) => void lines.push(args.join(" "));
  try {
    for (let i = 0; i < 10; i++) log.report("reuseport: handler error:", `e${i}`);
    assert.deepEqual(lines, ["reuseport: handler error: e0", "reuseport: handler error: e1", "reuseport: handler error: e2"]);
    now = 1000; // the next window: first the summary of the last one
    log.report("reuseport: handler error:", "e10");
    assert.deepEqual(lines.slice(3), ["reuseport: 7 more error lines suppressed (at most 3 per 1000 ms)", "reuseport: handler error: e10"]);
    assert.equal(log.suppressed, 7);
    for (let i = 0; i < 5; i++) log.report("reuseport: handler error:", `f${i}`);
    log.summarize();
    assert.equal(lines.at(-1), "reuseport: 3 more error lines suppressed (at most 3 per 1000 ms)");
    assert.equal(log.suppressed, 10);
  } finally {
    console.error = original;
  }
});

test("faults: a flood of failing responses writes a bounded number of lines", () =>
  withFaultServer({}, async (server, errors) => {
    const count = 60;
    const started = Date.now();
    await withClient(server.port, async (client) => {
      await client.write(`GET /throw HTTP/1.1\r\nHost: a\r\n\r\nGET /bad-value HTTP/1.1\r\nHost: a\r\n\r\n`.repeat(count / 2));
      await client.until(() => client.responses() === count);
    });
    const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
    assert.equal(server.stats().handlerErrors, count);
    // Every line is told: written, or counted in a summary (which comes at the window's end; bounded wait).
    const deadline = Date.now() + 5000;
    const told = () => {
      const written = errors.filter((line) => line.startsWith("reuseport:") && !line.includes("suppressed")).length;
      const left = errors.map((line) => /(\d+) more error lines suppressed/.exec(line)).reduce((sum, m) => sum + (m ? Number(m[1]) : 0), 0);
      return { written, left };
    };
    while (told().written + told().left < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const { written, left } = told();
    assert.equal(written + left, count, JSON.stringify(errors.slice(0, 20)));
    assert.ok(written <= 10 * seconds, `${written} lines in about ${seconds} s`);
  }, (request) => {
    if (new URL(request.url).pathname === "/throw") throw new Error("handler fails (test)");
    return faulty(request);
  }));

test("faults: six bad responses of each kind to a 1-worker cluster with restartsMax 5: the worker stays and serves", async () => {
  const cluster = await ClusterChild.start({ workers: 1, restartsMax: 5 });
  const base = `http://127.0.0.1:${cluster.port}`;
  let code: number | null = null;
  try {
    const first = await (await fetch(`${base}/`)).text();
    for (let round = 0; round < 6; round++) {
      for (const path of BEFORE_HEAD_PATHS) {
        const response = await fetch(`${base}${path}`);
        assert.equal(response.status, 500, path);
        assert.equal(await response.text(), INTERNAL_ERROR);
      }
      const cut = await rawExchange(cluster.port, `GET ${CUT_PATH} HTTP/1.1\r\nHost: a\r\n\r\n`);
      assert.ok(!cut.includes("0\r\n\r\n"), "cut without its last chunk");
    }
    assert.equal(await (await fetch(`${base}/`)).text(), first, "still serving");
    const stats = await cluster.stats();
    assert.equal(stats.totals.restarts, 0, "no worker restarted");
    assert.equal(stats.totals.handlerErrors, 6 * BEFORE_HEAD_PATHS.length);
    assert.equal(stats.totals.writeErrors, 6);
  } finally {
    code = await cluster.stop();
  }
  // Deno's node:child_process reports a child that handled SIGTERM and exited 0 as (null, SIGTERM).
  assert.ok(code === 0 || code === null, `exit code ${code}: ${cluster.stderr.slice(-2000)}`);
  assert.equal(crashLine(cluster.stderr), null);
}, { timeoutMs: 60_000 });
