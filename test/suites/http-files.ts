// File responses: file(path), serveDir and Bun's `new Response(Bun.file(path))`, sent with sendfile(2):
// headers, conditional requests, ranges, HEAD, missing files, and paths that try to leave the root.
import { assert, test } from "../_harness.ts";
import { rawExchange, withServer } from "../_http.ts";
import { ConfigError, file, serveDir } from "../../src/index.ts";
import { runtimeName } from "../_runtime.ts";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import process from "node:process";

/** A directory with a 1 MiB file of known bytes, an index page, a subdirectory, and a secret beside it. */
function fixtureTree(): { dir: string; root: string; big: Uint8Array; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "reuseport-files-"));
  const root = join(dir, "public");
  mkdirSync(join(root, "sub"), { recursive: true });
  const big = new Uint8Array(1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
  writeFileSync(join(root, "big.bin"), big);
  writeFileSync(join(root, "index.html"), "<h1>home</h1>");
  writeFileSync(join(root, "sub", "index.html"), "<h1>sub</h1>");
  writeFileSync(join(root, "style.css"), "body{}");
  writeFileSync(join(dir, "secret.txt"), "secret");
  symlinkSync(join(dir, "secret.txt"), join(root, "escape.txt"));
  symlinkSync("../secret.txt", join(root, "escape-relative.txt"));
  symlinkSync("style.css", join(root, "inside-link.css"));
  return { dir, root, big, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const bytesOf = async (response: Response) => new Uint8Array(await response.arrayBuffer());

test("files: file(path) sends the file with Content-Type, Content-Length, Last-Modified, ETag and Accept-Ranges", async () => {
  const tree = fixtureTree();
  try {
    await withServer((req) => file(join(tree.root, new URL(req.url).pathname.slice(1))), {}, async (_server, base) => {
      const response = await fetch(`${base}/big.bin`);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "application/octet-stream");
      assert.equal(response.headers.get("content-length"), String(tree.big.byteLength));
      assert.equal(response.headers.get("accept-ranges"), "bytes");
      assert.match(response.headers.get("etag") ?? "", /^"[0-9a-z.-]+"$/);
      assert.ok(Date.parse(response.headers.get("last-modified") ?? "") > 0);
      assert.deepEqual(await bytesOf(response), tree.big);
      const css = await fetch(`${base}/style.css`);
      assert.equal(css.headers.get("content-type"), "text/css;charset=utf-8");
      assert.equal(await css.text(), "body{}");
      const head = await fetch(`${base}/big.bin`, { method: "HEAD" });
      assert.equal(head.headers.get("content-length"), String(tree.big.byteLength));
      assert.equal((await bytesOf(head)).byteLength, 0);
      // Keep-alive goes on after a file: two requests in one write, the second answered too.
      const both = await rawExchange(_server.port, "GET /style.css HTTP/1.1\r\nHost: x\r\n\r\nGET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      assert.match(both, /body\{\}[\s\S]*HTTP\/1\.1 200 OK[\s\S]*<h1>home<\/h1>$/);
    });
  } finally {
    tree.cleanup();
  }
});

test("files: If-None-Match and If-Modified-Since answer 304 with no body", async () => {
  const tree = fixtureTree();
  try {
    await withServer(() => file(join(tree.root, "big.bin")), {}, async (_server, base) => {
      const first = await fetch(`${base}/`);
      const etag = first.headers.get("etag")!;
      const lastModified = first.headers.get("last-modified")!;
      await first.arrayBuffer();
      const byTag = await fetch(`${base}/`, { headers: { "if-none-match": `"other", ${etag}` } });
      assert.equal(byTag.status, 304);
      assert.equal(byTag.headers.get("etag"), etag);
      assert.equal((await bytesOf(byTag)).byteLength, 0);
      const byDate = await fetch(`${base}/`, { headers: { "if-modified-since": lastModified } });
      assert.equal(byDate.status, 304);
      await byDate.arrayBuffer();
      const stale = await fetch(`${base}/`, { headers: { "if-none-match": '"stale"', "if-modified-since": lastModified } });
      assert.equal(stale.status, 200, "If-None-Match decides when both are sent");
      assert.equal((await bytesOf(stale)).byteLength, tree.big.byteLength);
      const older = await fetch(`${base}/`, { headers: { "if-modified-since": new Date(Date.parse(lastModified) - 60_000).toUTCString() } });
      assert.equal(older.status, 200);
      await older.arrayBuffer();
    });
  } finally {
    tree.cleanup();
  }
});

test("files: one Range is 206 with Content-Range; an unsatisfiable one 416; If-Range that does not match sends the whole file", async () => {
  const tree = fixtureTree();
  const size = tree.big.byteLength;
  try {
    await withServer(() => file(join(tree.root, "big.bin")), {}, async (_server, base) => {
      const ranged = async (range: string, extra: Record<string, string> = {}) => {
        const response = await fetch(`${base}/`, { headers: { range, ...extra } });
        return { status: response.status, range: response.headers.get("content-range"), bytes: await bytesOf(response) };
      };
      const first = await ranged("bytes=0-99");
      assert.deepEqual([first.status, first.range], [206, `bytes 0-99/${size}`]);
      assert.deepEqual(first.bytes, tree.big.subarray(0, 100));
      const suffix = await ranged("bytes=-10");
      assert.deepEqual([suffix.status, suffix.range], [206, `bytes ${size - 10}-${size - 1}/${size}`]);
      assert.deepEqual(suffix.bytes, tree.big.subarray(size - 10));
      const open = await ranged(`bytes=${size - 5}-`);
      assert.deepEqual(open.bytes, tree.big.subarray(size - 5));
      const past = await ranged(`bytes=${size}-`);
      assert.deepEqual([past.status, past.range, past.bytes.byteLength], [416, `bytes */${size}`, 0]);
      const several = await ranged("bytes=0-1,5-6");
      assert.equal(several.status, 200, "several ranges: the whole file");
      assert.equal(several.bytes.byteLength, size);
      const mismatched = await ranged("bytes=0-9", { "if-range": '"not-ours"' });
      assert.deepEqual([mismatched.status, mismatched.bytes.byteLength], [200, size]);
      const etag = (await fetch(`${base}/`, { method: "HEAD" })).headers.get("etag")!;
      const matched = await ranged("bytes=0-9", { "if-range": etag });
      assert.deepEqual([matched.status, matched.bytes.byteLength], [206, 10]);
    });
  } finally {
    tree.cleanup();
  }
});

test("files: a missing file is 404, never an escaped error; a handler's own status is kept", async () => {
  const tree = fixtureTree();
  try {
    await withServer((req) => {
      const path = new URL(req.url).pathname;
      if (path === "/status") return file(join(tree.root, "style.css"), { status: 404, headers: { "x-kind": "custom" } });
      return file(join(tree.root, "nope.txt"));
    }, {}, async (server, base) => {
      const missing = await fetch(`${base}/missing`);
      assert.equal(missing.status, 404);
      assert.equal(await missing.text(), "Not Found");
      const custom = await fetch(`${base}/status`);
      assert.deepEqual([custom.status, custom.headers.get("x-kind"), await custom.text()], [404, "custom", "body{}"]);
      assert.equal(server.stats().handlerErrors, 0);
    });
  } finally {
    tree.cleanup();
  }
  assert.throws(() => file(""), (e: unknown) => e instanceof ConfigError);
});

test("files: serveDir serves beneath its root: index files, a redirect for a directory without /, and no way out", async () => {
  const tree = fixtureTree();
  const files = serveDir(tree.root, { prefix: "/static/" });
  try {
    await withServer(() => new Response("fetch"), { routes: { "/static/*": files } }, async (server, base) => {
      assert.equal(await (await fetch(`${base}/static/`)).text(), "<h1>home</h1>");
      assert.equal(await (await fetch(`${base}/static/sub/`)).text(), "<h1>sub</h1>");
      const redirect = await fetch(`${base}/static/sub`, { redirect: "manual" });
      assert.deepEqual([redirect.status, redirect.headers.get("location")], [301, "/static/sub/"]);
      await redirect.arrayBuffer();
      assert.equal(await (await fetch(`${base}/static/style.css`)).text(), "body{}");
      assert.equal(await (await fetch(`${base}/static/inside-link.css`)).text(), "body{}", "a symlink inside the root is followed");
      // What fetch() would normalise away goes raw over the socket.
      const attempts = [
        "/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/sub/%2E%2E/%2E%2E/secret.txt", "/static/..%2fsecret.txt",
        "/static/escape.txt", "/static/escape-relative.txt", "/static/%2Fetc%2Fpasswd", "/static//etc/passwd", "/static/style.css%00.png", "/static/./style.css",
        "/static/%ZZ", "/static/sub\\..\\..\\secret.txt",
      ];
      for (const path of attempts) {
        const answer = await rawExchange(server.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        assert.match(answer, /^HTTP\/1\.1 404 /, `${path}: ${answer.slice(0, 60)}`);
        assert.doesNotMatch(answer, /secret|root:/, path);
      }
    });
  } finally {
    files.close();
    tree.cleanup();
  }
  assert.throws(() => serveDir("/nonexistent-reuseport-dir"), /serveDir root "\/nonexistent-reuseport-dir" cannot be opened as a directory: ENOENT/);
  assert.throws(() => serveDir("/tmp", { prefix: "static" }), /prefix must start and end with \//);
});

test("files: Bun's new Response(Bun.file(path)) goes out the same way, and a slice of one as Bun sends it", async () => {
  if (runtimeName !== "bun") return; // Bun.file is Bun's; file() is the same path on Deno
  const tree = fixtureTree();
  const bun = (globalThis as unknown as { Bun: { file(path: string): Blob } }).Bun;
  try {
    await withServer((req) => {
      const path = new URL(req.url).pathname;
      const whole = bun.file(join(tree.root, path === "/missing" ? "nope.bin" : "big.bin"));
      return new Response(path === "/slice" ? whole.slice(10, 20) : whole);
    }, {}, async (_server, base) => {
      const whole = await fetch(`${base}/`);
      assert.ok(whole.headers.get("etag"), "the file path adds an ETag");
      assert.deepEqual(await bytesOf(whole), tree.big);
      const ranged = await fetch(`${base}/`, { headers: { range: "bytes=100-199" } });
      assert.equal(ranged.status, 206);
      assert.deepEqual(await bytesOf(ranged), tree.big.subarray(100, 200));
      assert.deepEqual(await bytesOf(await fetch(`${base}/slice`)), tree.big.subarray(10, 20));
      const missing = await fetch(`${base}/missing`);
      assert.deepEqual([missing.status, await missing.text()], [404, "Not Found"], "a missing Bun.file is 404, as Bun.serve answers");
    });
  } finally {
    tree.cleanup();
  }
});

test("files: a file() Response read outside the server streams the file", async () => {
  const tree = fixtureTree();
  try {
    assert.equal(await file(join(tree.root, "style.css")).text(), "body{}");
    assert.deepEqual(new Uint8Array(await file(join(tree.root, "big.bin")).arrayBuffer()), tree.big);
    await assert.rejects(file(join(tree.root, "missing")).text(), /ENOENT/);
  } finally {
    tree.cleanup();
  }
});

/** node: GET / on argv[1], reading in pauses (every 4 MiB, 20 ms); prints "bytes pauses". */
const PAUSING_CLIENT = `
const socket = require("net").connect(Number(process.argv[1]), "127.0.0.1", () => socket.write("GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n"));
let bytes = 0, pauses = 0;
socket.on("data", (data) => {
  bytes += data.length;
  if (bytes > (pauses + 1) * 4 * 1024 * 1024 && pauses < 12) { pauses++; socket.pause(); setTimeout(() => socket.resume(), 20); }
});
socket.on("end", () => console.log(bytes + " " + pauses));
`;

test("files: a 64 MiB file to a client that reads in pauses arrives whole, without the server holding it in memory", async () => {
  const dir = mkdtempSync(join(tmpdir(), "reuseport-files-"));
  const path = join(dir, "large.bin");
  const chunk = new Uint8Array(1024 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = i & 0xff;
  const size = 64 * chunk.length;
  writeFileSync(path, new Uint8Array(0));
  for (let i = 0; i < 64; i++) writeFileSync(path, chunk, { flag: "a" });
  try {
    await withServer(() => file(path), {}, async (server) => {
      const rssBefore = process.memoryUsage().rss;
      let peakRss = rssBefore;
      // The client is another process, so this process's RSS is the server's.
      const client = spawn("node", ["-e", PAUSING_CLIENT, String(server.port)], { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      client.stdout!.on("data", (data) => (out += data));
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 10);
      const code = await new Promise((resolve) => client.once("exit", resolve));
      clearInterval(sampler);
      assert.equal(code, 0);
      const [received, pauses] = out.trim().split(" ").map(Number);
      assert.ok(pauses >= 8, `the client paused ${pauses} times`);
      const head = received - size;
      assert.ok(head > 0 && head < 400, `the whole file after its head: ${received} bytes for ${size}`);
      assert.ok(peakRss - rssBefore < 32 * 1024 * 1024, `RSS grew ${((peakRss - rssBefore) / 2 ** 20).toFixed(1)} MiB while 64 MiB went out`);
      assert.equal(server.stats().writeErrors, 0);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
