// Opt-in compression: negotiated from Accept-Encoding, decoded by curl --compressed, never applied where it
// must not be, and a streamed body compressed chunk by chunk with flushes.
import { assert, test } from "../_harness.ts";
import { rawExchange, withServer } from "../_http.ts";
import { ConfigError, serve } from "../../src/index.ts";
import { negotiate } from "../../src/http/compression.ts";
import { spawn } from "node:child_process";
import { Buffer } from "node:buffer";
import zlib from "node:zlib";

const TEXT = "reuseport compresses this line. ".repeat(200);

/** curl in another process (the server shares this thread's loop, so never spawnSync); `extra` before the URL. */
async function curl(url: string, headers: string[] = [], extra = ["--compressed"]): Promise<{ status: number; headers: string; body: string }> {
  const child = spawn("curl", ["-s", "-D", "-", ...extra, ...headers.flatMap((h) => ["-H", h]), url], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk) => (out += chunk));
  const code = await new Promise((resolve) => child.once("close", resolve));
  assert.equal(code, 0, `curl ${url}: exit ${code}`);
  const end = out.indexOf("\r\n\r\n");
  const head = out.slice(0, end);
  return { status: Number(head.split(" ")[1]), headers: head.toLowerCase(), body: out.slice(end + 4) };
}

test("compression: Accept-Encoding is negotiated (q-values, *, identity;q=0); br is preferred at equal q", () => {
  const ours = ["br", "gzip"] as const;
  assert.equal(negotiate("gzip, deflate, br", ours), "br");
  assert.equal(negotiate("gzip;q=1, br;q=0.5", ours), "gzip");
  assert.equal(negotiate("br;q=0, gzip", ours), "gzip");
  assert.equal(negotiate("*;q=0.1", ours), "br");
  assert.equal(negotiate("identity;q=0", ours), null, "nothing of ours is acceptable: identity goes anyway");
  assert.equal(negotiate("deflate", ours), null);
  assert.equal(negotiate(null, ours), null);
  assert.equal(negotiate("x-gzip", ["gzip"]), "gzip");
  assert.equal(negotiate("gzip;q=0, *", ["gzip"]), null, "an explicit q=0 beats *");
});

test("compression: gzip and br bodies decode with curl --compressed, with Vary: Accept-Encoding", () =>
  withServer(() => new Response(TEXT, { headers: { "content-type": "text/plain;charset=utf-8" } }), { compression: true }, async (_server, base) => {
    for (const [accept, coding] of [["gzip", "gzip"], ["br", "br"], ["gzip, br", "br"]]) {
      const answer = await curl(`${base}/`, [`Accept-Encoding: ${accept}`]);
      assert.equal(answer.status, 200);
      assert.match(answer.headers, new RegExp(`content-encoding: ${coding}`));
      assert.match(answer.headers, /vary: accept-encoding/);
      assert.equal(answer.body, TEXT);
    }
    const raw = await fetch(`${base}/`, { headers: { "accept-encoding": "gzip" }, decompress: false } as RequestInit);
    const compressed = new Uint8Array(await raw.arrayBuffer());
    if (raw.headers.get("content-encoding") === "gzip" && compressed[0] === 0x1f) {
      assert.ok(compressed.byteLength < TEXT.length / 5, `${compressed.byteLength} bytes for ${TEXT.length}`);
      assert.equal(zlib.gunzipSync(compressed).toString(), TEXT);
    }
    const plain = await curl(`${base}/`, ["Accept-Encoding: identity"]);
    assert.doesNotMatch(plain.headers, /content-encoding/);
    assert.match(plain.headers, /vary: accept-encoding/, "the identity answer varies too");
    assert.equal(plain.body, TEXT);
  }));

test("compression: never for 204/304, HEAD, ranges, encoded bodies, no-transform, images, small bodies; a static route's Response is left as it was", () => {
  const shared = new Response(TEXT, { headers: { "content-type": "text/html" } });
  return withServer((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/204") return new Response(null, { status: 204 });
    if (path === "/304") return new Response(null, { status: 304 });
    if (path === "/encoded") return new Response(zlib.gzipSync(TEXT), { headers: { "content-type": "text/plain", "content-encoding": "gzip" } });
    if (path === "/no-transform") return new Response(TEXT, { headers: { "content-type": "text/plain", "cache-control": "no-transform" } });
    if (path === "/png") return new Response(new Uint8Array(4096), { headers: { "content-type": "image/png" } });
    if (path === "/small") return new Response("tiny", { headers: { "content-type": "text/plain" } });
    return new Response(TEXT, { headers: { "content-type": "text/plain" } });
  }, { compression: { minBytes: 100 }, routes: { "/shared": shared } }, async (_server, base) => {
    const gzip = ["Accept-Encoding: gzip"];
    for (const path of ["/204", "/304", "/no-transform", "/png", "/small"]) {
      const answer = await curl(`${base}${path}`, gzip);
      assert.doesNotMatch(answer.headers, /content-encoding: gzip/, path);
    }
    assert.equal((await curl(`${base}/encoded`, gzip)).body, TEXT, "a body the handler encoded is not encoded twice");
    const head = await curl(`${base}/`, gzip, ["-I"]);
    assert.doesNotMatch(head.headers, /content-encoding/, "HEAD");
    const ranged = await curl(`${base}/`, [...gzip, "Range: bytes=0-9"]);
    assert.doesNotMatch(ranged.headers, /content-encoding/, "a Range request");
    for (let i = 0; i < 3; i++) assert.equal((await curl(`${base}/shared`, gzip)).body, TEXT);
    assert.equal(shared.headers.get("content-encoding"), null, "the shared Response's headers are its own");
    assert.equal((await curl(`${base}/shared`)).body, TEXT);
  });
});

test("compression: a streamed body is compressed chunk by chunk, each flushed: its first HTTP chunk decodes to the first chunk", () =>
  withServer(() => new Response(new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("first chunk;"));
      controller.enqueue(new TextEncoder().encode("second chunk"));
      controller.close();
    },
  }), { headers: { "content-type": "text/plain" } }), { compression: { br: false } }, async (server) => {
    const raw = await rawExchange(server.port, "GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n");
    const bytes = Buffer.from(raw, "latin1");
    const end = bytes.indexOf("\r\n\r\n");
    const head = bytes.subarray(0, end).toString().toLowerCase();
    assert.match(head, /content-encoding: gzip/);
    assert.match(head, /transfer-encoding: chunked/);
    const chunks: Buffer[] = [];
    for (let rest = bytes.subarray(end + 4); rest.length > 0;) {
      const line = rest.indexOf("\r\n");
      const size = parseInt(rest.subarray(0, line).toString(), 16);
      if (size === 0) break;
      chunks.push(rest.subarray(line + 2, line + 2 + size));
      rest = rest.subarray(line + 2 + size + 2);
    }
    assert.ok(chunks.length >= 2, `${chunks.length} HTTP chunks`);
    // A sync flush ends each piece: the first one decodes on its own to exactly the first chunk.
    const first = zlib.inflateRawSync(chunks[0].subarray(10), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    assert.equal(first.toString(), "first chunk;");
    assert.equal(zlib.gunzipSync(Buffer.concat(chunks)).toString(), "first chunk;second chunk");
  }));

test("compression: bad options are refused naming them", () => {
  const bad: [unknown, RegExp][] = [
    ["yes", /compression must be true, false or an object/],
    [{ gzip: false, br: false }, /offers no coding/],
    [{ minBytes: -1 }, /compression.minBytes must be a non-negative integer/],
    [{ level: 12 }, /compression.level must be an integer from 0 to 11/],
    [{ zstd: true }, /compression.zstd is not a compression option/],
  ];
  for (const [compression, message] of bad) {
    assert.throws(() => serve({ port: 0, onListen() {}, fetch: () => new Response(""), compression: compression as never }), (e: unknown) => e instanceof ConfigError && message.test((e as Error).message), String(message));
  }
});
