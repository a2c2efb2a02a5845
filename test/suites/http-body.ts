// Request bodies: the readers (text, json, arrayBuffer, bytes, blob, formData) on bodies that are already in
// memory and on bodies that stream in, with the same answers either way.
import { assert, test } from "../_harness.ts";
import { statusOf, withClient, withServer } from "../_http.ts";

type Reader = "arrayBuffer" | "blob" | "bytes" | "formData" | "json" | "text";
const READERS: readonly Reader[] = ["arrayBuffer", "blob", "bytes", "formData", "json", "text"];

/** Bytes as JSON-able data: short ones as they are, long ones as their length and an FNV-1a hash. */
function bytesOf(bytes: Uint8Array): unknown {
  if (bytes.byteLength <= 64) return [...bytes];
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return { length: bytes.byteLength, hash };
}

/** A reader's answer as JSON-able data, so that two answers compare with deepEqual. */
async function describe(reader: Reader, value: unknown): Promise<unknown> {
  switch (reader) {
    case "arrayBuffer":
      return { arrayBuffer: value instanceof ArrayBuffer, bytes: bytesOf(new Uint8Array(value as ArrayBuffer)) };
    case "bytes":
      return { uint8Array: value instanceof Uint8Array, bytes: bytesOf(value as Uint8Array) };
    case "blob": {
      const blob = value as Blob;
      return { blob: value instanceof Blob, size: blob.size, bytes: bytesOf(new Uint8Array(await blob.arrayBuffer())) };
    }
    case "formData": {
      const entries: unknown[] = [];
      for (const [name, entry] of value as FormData) {
        entries.push(typeof entry === "string" ? [name, entry] : [name, entry.name, entry.type, await entry.text()]);
      }
      return { form: entries };
    }
    default:
      return { [reader]: value };
  }
}

/** The reader's answer, or the name of what it threw (and whether it threw instead of rejecting). */
async function attempt(reader: Reader, source: Request | Response): Promise<unknown> {
  let promise: Promise<unknown>;
  try {
    promise = (source as unknown as Record<Reader, () => Promise<unknown>>)[reader]();
  } catch (error) {
    return { threw: (error as Error).constructor.name };
  }
  try {
    return await describe(reader, await promise);
  } catch (error) {
    return { rejected: (error as Error).constructor.name };
  }
}

/**
 * /<reader>?via=direct reads the request itself; ?via=stream the same bytes through request.body. A blob's type
 * is left out (Bun's Response over a stream gives none); the blob().type test compares it with a platform Request's.
 */
async function readerHandler(request: Request): Promise<Response> {
  const url = new URL(request.url);
  const reader = url.pathname.slice(1) as Reader;
  const type = request.headers.get("content-type");
  const source = url.searchParams.get("via") === "stream"
    ? new Response(request.body, type === null ? undefined : { headers: { "content-type": type } })
    : request;
  return Response.json({ answer: await attempt(reader, source), bodyUsed: request.bodyUsed });
}

const encoder = new TextEncoder();
const form = new FormData();
form.append("a", "1");
form.append("file", new Blob(["file ✓"], { type: "text/plain" }), "f.txt");
const multipart = new Response(form);
const multipartType = multipart.headers.get("content-type")!;
const multipartBytes = new Uint8Array(await multipart.arrayBuffer());
const big = (length: number) => Uint8Array.from({ length }, (_, i) => (i * 7) & 0xff);

const BODIES: { name: string; bytes: Uint8Array; type?: string }[] = [
  { name: "text", bytes: encoder.encode("ping ✓"), type: "text/plain;charset=utf-8" },
  { name: "BOM and text", bytes: new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0x69]) },
  { name: "invalid UTF-8", bytes: new Uint8Array([0xff, 0x61, 0xc3]) },
  { name: "JSON", bytes: encoder.encode('{"a":[1,2],"s":"✓"}'), type: "application/json" },
  { name: "JSON after a BOM", bytes: new Uint8Array([0xef, 0xbb, 0xbf, 0x5b, 0x31, 0x5d]), type: "application/json" },
  { name: "bad JSON", bytes: encoder.encode('{"a":'), type: "application/json" },
  { name: "urlencoded", bytes: encoder.encode("a=1&b=%E2%9C%93&a=2"), type: "application/x-www-form-urlencoded" },
  { name: "multipart", bytes: multipartBytes, type: multipartType },
  { name: "mixed-case type", bytes: encoder.encode("x"), type: "Text/Plain; Charset=UTF-8" },
  { name: "64 KiB", bytes: big(64 * 1024), type: "application/octet-stream" },
  { name: "64 KiB + 1", bytes: big(64 * 1024 + 1) },
  { name: "300 KiB", bytes: big(300 * 1024) },
];

async function post(base: string, path: string, bytes: Uint8Array, type?: string): Promise<unknown> {
  const response = await fetch(`${base}${path}`, { method: "POST", body: bytes as BodyInit, headers: type ? { "content-type": type } : {} });
  assert.equal(response.status, 200, path);
  return response.json();
}

test("body: req.text() of a small POST body answers its bytes", () =>
  withServer(async (req) => new Response(await req.text()), {}, async (_server, base) => {
    const response = await fetch(`${base}/`, { method: "POST", body: "ping ✓" });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "ping ✓");
  }));

test("body: every reader answers a body in memory as it answers the same bytes read through request.body", () =>
  withServer(readerHandler, {}, async (_server, base) => {
    for (const body of BODIES) {
      const readers = body.bytes.byteLength > 1024 ? (["arrayBuffer", "bytes", "blob"] as const) : READERS;
      for (const reader of readers) {
        const direct = await post(base, `/${reader}?via=direct`, body.bytes, body.type);
        const streamed = await post(base, `/${reader}?via=stream`, body.bytes, body.type);
        assert.deepEqual((direct as { answer: unknown }).answer, (streamed as { answer: unknown }).answer, `${body.name}: ${reader}()`);
      }
    }
    // Spot checks that the shared answers are the platform's, not merely equal.
    assert.deepEqual(await post(base, "/text", BODIES[1].bytes), { answer: { text: "hi" }, bodyUsed: true });
    assert.deepEqual(await post(base, "/json", BODIES[5].bytes), { answer: { rejected: "SyntaxError" }, bodyUsed: true });
    assert.deepEqual(await post(base, "/json", BODIES[4].bytes), { answer: { json: [1] }, bodyUsed: true });
    assert.deepEqual(await post(base, "/formData", BODIES[6].bytes, BODIES[6].type), {
      answer: { form: [["a", "1"], ["b", "✓"], ["a", "2"]] }, bodyUsed: true,
    });
    const file = (await post(base, "/formData", multipartBytes, multipartType)) as { answer: { form: unknown[] } };
    const [field, [name, filename, type, content]] = file.answer.form as [unknown, string[]];
    assert.deepEqual([field, name, filename, content], [["a", "1"], "file", "f.txt", "file ✓"]);
    assert.match(type, /^text\/plain/);
  }));

test("body: blob().type is the Content-Type as the platform's own Request gives it", () =>
  withServer(async (request) => new Response((await request.blob()).type), {}, async (_server, base) => {
    for (const type of [undefined, "application/json", "Text/Plain; Charset=UTF-8", multipartType]) {
      const headers: Record<string, string> = type ? { "content-type": type } : {};
      const init: RequestInit = { method: "POST", body: "x", headers };
      const expected = (await new Request("http://local/", init).blob()).type;
      const response = await fetch(`${base}/`, init);
      assert.equal(await response.text(), expected, String(type));
    }
  }));

/** Sends a head and the first part, waits until the handler has called its reader, then sends the rest. */
async function postInPieces(port: number, head: string, parts: Uint8Array[], readerCalled: () => Promise<void>): Promise<unknown> {
  return withClient(port, async (client) => {
    await client.write(head);
    await client.write(parts[0]);
    await readerCalled();
    for (const part of parts.slice(1)) await client.write(part);
    const text = await client.until((t) => {
      const split = t.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: (\d+)\r\n/i.exec(t.slice(0, split + 2));
      return split > 0 && length !== null && t.length >= split + 4 + Number(length[1]);
    });
    assert.equal(statusOf(text), 200, text.slice(0, 200));
    const bytes = client.bytes;
    const json = new TextDecoder().decode(bytes.subarray(bytes.indexOf("\r\n\r\n") + 4));
    return JSON.parse(json);
  });
}

test("body: a body that is still arriving when the reader is called (Content-Length in pieces, chunked) reads the same", async () => {
  let signal: () => void = () => {};
  const nextCall = () => new Promise<void>((resolve) => (signal = resolve));
  const handler = async (request: Request) => {
    const reader = new URL(request.url).pathname.slice(1) as Reader;
    const answer = attempt(reader, request);
    signal();
    return Response.json({ answer: await answer, bodyUsed: request.bodyUsed });
  };
  await withServer(handler, {}, async (server, base) => {
    for (const body of BODIES) {
      const readers = body.bytes.byteLength > 1024 ? (["arrayBuffer"] as const) : READERS;
      for (const reader of readers) {
        const whole = await post(base, `/${reader}`, body.bytes, body.type);
        const type = body.type ? `Content-Type: ${body.type}\r\n` : "";
        const cut = Math.max(1, body.bytes.byteLength >> 1);
        const fixedHead = `POST /${reader} HTTP/1.1\r\nHost: x\r\n${type}Content-Length: ${body.bytes.byteLength}\r\n\r\n`;
        let called = nextCall();
        const fixed = await postInPieces(server.port, fixedHead, [body.bytes.subarray(0, cut), body.bytes.subarray(cut)], () => called);
        assert.deepEqual(fixed, whole, `${body.name}: ${reader}() of a Content-Length body in two pieces`);
        const chunk = (bytes: Uint8Array) => new Uint8Array([...encoder.encode(`${bytes.byteLength.toString(16)}\r\n`), ...bytes, 13, 10]);
        const chunkedHead = `POST /${reader} HTTP/1.1\r\nHost: x\r\n${type}Transfer-Encoding: chunked\r\n\r\n`;
        called = nextCall();
        const halves = [body.bytes.subarray(0, cut), body.bytes.subarray(cut)].filter((half) => half.byteLength > 0);
        const pieces = [...halves.map(chunk), encoder.encode("0\r\n\r\n")];
        const chunked = await postInPieces(server.port, chunkedHead, pieces, () => called);
        assert.deepEqual(chunked, whole, `${body.name}: ${reader}() of a chunked body`);
      }
    }
  });
});

test("body: a body is read once: a second read, or a read after request.body was taken, rejects with TypeError; bodyUsed", () =>
  withServer(async (request) => {
    const mode = new URL(request.url).pathname;
    const before = request.bodyUsed;
    if (mode === "/twice") {
      const first = await request.text();
      const again = await Promise.all(READERS.map((reader) => attempt(reader, request)));
      return Response.json({ before, first, again, after: request.bodyUsed });
    }
    const reader = request.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    const again = await Promise.all(READERS.map((name) => attempt(name, request)));
    const after = request.bodyUsed;
    reader.releaseLock();
    return Response.json({ before, first, again, after });
  }, {}, async (_server, base) => {
    const rejected = READERS.map(() => ({ rejected: "TypeError" }));
    for (const mode of ["/twice", "/stream"]) {
      const response = await fetch(`${base}${mode}`, { method: "POST", body: "abc" });
      assert.deepEqual(await response.json(), { before: false, first: "abc", again: rejected, after: true }, mode);
    }
  }));

test("body: request.body is a ReadableStream of the bytes, made on demand; after a reader it is locked", () =>
  withServer(async (request) => {
    const mode = new URL(request.url).pathname;
    if (mode === "/after-read") {
      await request.arrayBuffer();
      let getReader = "ok";
      try {
        request.body!.getReader();
      } catch (error) {
        getReader = (error as Error).constructor.name;
      }
      return Response.json({ stream: request.body instanceof ReadableStream, locked: request.body!.locked, getReader });
    }
    const body = request.body!;
    const same = request.body === body;
    const chunks: number[] = [];
    const reader = body.getReader();
    for (let read = await reader.read(); !read.done; read = await reader.read()) chunks.push(...read.value);
    return Response.json({ stream: body instanceof ReadableStream, same, text: new TextDecoder().decode(new Uint8Array(chunks)) });
  }, {}, async (_server, base) => {
    const read = await fetch(`${base}/read`, { method: "POST", body: "stream ✓" });
    assert.deepEqual(await read.json(), { stream: true, same: true, text: "stream ✓" });
    const after = await fetch(`${base}/after-read`, { method: "POST", body: "x" });
    assert.deepEqual(await after.json(), { stream: true, locked: true, getReader: "TypeError" });
  }));

test("body: clone() and new Request(url, request) keep the body; clone() after a read is a TypeError", () =>
  withServer(async (request) => {
    const mode = new URL(request.url).pathname;
    if (mode === "/clone") {
      const copy = request.clone();
      return Response.json({ copy: await copy.text(), original: await request.json(), used: [copy.bodyUsed, request.bodyUsed] });
    }
    if (mode === "/init") {
      const rebuilt = new Request("http://elsewhere/x", request);
      return Response.json({ method: rebuilt.method, text: await rebuilt.text() });
    }
    await request.text();
    let clone = "ok";
    try {
      request.clone();
    } catch (error) {
      clone = (error as Error).constructor.name;
    }
    return Response.json({ clone });
  }, {}, async (_server, base) => {
    const cloned = await fetch(`${base}/clone`, { method: "POST", body: '{"a":1}' });
    assert.deepEqual(await cloned.json(), { copy: '{"a":1}', original: { a: 1 }, used: [true, true] });
    const init = await fetch(`${base}/init`, { method: "PUT", body: "moved" });
    assert.deepEqual(await init.json(), { method: "PUT", text: "moved" });
    const late = await fetch(`${base}/late`, { method: "POST", body: "x" });
    assert.deepEqual(await late.json(), { clone: "TypeError" });
  }));

test("body: Expect: 100-continue is answered only when the handler reads; one that never reads gets no 100 and a close", () =>
  withServer(() => new Response("unread"), {}, async (server) => {
    await withClient(server.port, async (client) => {
      await client.write("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
      const text = await client.closedByPeer();
      assert.ok(text.startsWith("HTTP/1.1 200 OK\r\n"), JSON.stringify(text));
      assert.ok(!text.includes("100 Continue"), JSON.stringify(text));
      assert.ok(text.endsWith("unread"), JSON.stringify(text));
    });
  }));
