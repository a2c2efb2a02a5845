// ResponseHeadWriter (status line, Date, framing and Connection headers, header validation), chunk framing
// (checked by decoding it back with ChunkedDecoder), DateCache, reason phrases, the head writer's line cache
// and the text response cache. Buffers only, no sockets.
import { assert, test } from "../_harness.ts";
import { ChunkedDecoder } from "../../src/http/chunked-decoder.ts";
import { chunkHeaderLength, LAST_CHUNK_BYTES, writeChunk, writeChunkHeader } from "../../src/http/chunked-encoder.ts";
import { DateCache } from "../../src/http/date-cache.ts";
import { ParseStatus } from "../../src/http/parser.ts";
import { BodyMode, ResponseHeadWriter, type ResponseHeadInput } from "../../src/http/response-head.ts";
import { BareTextCache } from "../../src/http/bare-text-cache.ts";
import { reasonPhraseOf } from "../../src/http/status-reasons.ts";

/** RFC 9110 §5.6.7's own example instant. */
const NOW_MS = Date.UTC(1994, 10, 6, 8, 49, 37);
const DATE_LINE = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

function input(overrides: Partial<ResponseHeadInput> & { headerList?: string[] } = {}): ResponseHeadInput {
  const headers = overrides.headerList ?? [];
  return {
    status: 200, reason: null, headers, headerCount: headers.length / 2, bodyLength: 0,
    requestVersionMinor: 1, requestKeepAlive: true, requestIsHead: false, ...overrides,
  };
}

/** Writes a head and returns it as text, with the writer for its bodyMode and keepAlive. */
function head(overrides: Partial<ResponseHeadInput> & { headerList?: string[] } = {}, offset = 0): { text: string; writer: ResponseHeadWriter } {
  const writer = new ResponseHeadWriter();
  const out = new Uint8Array(1024);
  const end = writer.write(out, offset, input(overrides), NOW_MS);
  assert.ok(end > offset, `write returned ${end}`);
  return { text: String.fromCharCode(...out.subarray(offset, end)), writer };
}

function lines(text: string): string[] {
  assert.ok(text.endsWith("\r\n\r\n"), JSON.stringify(text));
  return text.slice(0, -4).split("\r\n");
}

test("http-response: status line, Date and Content-Length, in that order", () => {
  const { text, writer } = head({ bodyLength: 5, headerList: ["Content-Type", "text/plain"] });
  assert.equal(text, `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n${DATE_LINE}Content-Length: 5\r\n\r\n`);
  assert.equal(writer.bodyMode, BodyMode.ContentLength);
  assert.equal(writer.keepAlive, true);
});

test("http-response: canonical reasons, custom reasons, and an empty reason for unregistered codes", () => {
  for (const [status, reason] of [[404, "Not Found"], [413, "Content Too Large"], [431, "Request Header Fields Too Large"], [505, "HTTP Version Not Supported"]] as const) {
    assert.equal(lines(head({ status }).text)[0], `HTTP/1.1 ${status} ${reason}`);
    assert.equal(reasonPhraseOf(status), reason);
  }
  assert.equal(lines(head({ status: 299 }).text)[0], "HTTP/1.1 299 ", "RFC 9112 §4: the SP stays, the reason may be empty");
  assert.equal(lines(head({ status: 799 }).text)[0], "HTTP/1.1 799 ");
  assert.equal(lines(head({ status: 200, reason: "Fine\tthanks" }).text)[0], "HTTP/1.1 200 Fine\tthanks");
  assert.equal(lines(head({ status: 200, reason: "" }).text)[0], "HTTP/1.1 200 ");
  assert.equal(reasonPhraseOf(299), "");
});

test("http-response: invalid status codes are TypeErrors", () => {
  for (const status of [0, 99, 1000, 200.5, Number.NaN, -200]) {
    assert.throws(() => head({ status }), TypeError, String(status));
  }
});

test("http-response: Date is added unless the handler set one", () => {
  assert.ok(lines(head().text).includes(DATE_LINE.slice(0, -2)));
  const own = lines(head({ headerList: ["date", "Mon, 07 Nov 1994 00:00:00 GMT"] }).text);
  assert.deepEqual(own.filter((line) => line.toLowerCase().startsWith("date:")), ["date: Mon, 07 Nov 1994 00:00:00 GMT"]);
});

test("http-response: DateCache formats IMF-fixdate and only re-formats when the second changes", () => {
  const cache = new DateCache();
  cache.refresh(NOW_MS);
  assert.equal(cache.value, "Sun, 06 Nov 1994 08:49:37 GMT");
  assert.equal(String.fromCharCode(...cache.line), DATE_LINE);
  cache.refresh(NOW_MS + 999);
  assert.equal(cache.value, "Sun, 06 Nov 1994 08:49:37 GMT");
  cache.refresh(NOW_MS + 1000);
  assert.equal(cache.value, "Sun, 06 Nov 1994 08:49:38 GMT");
  cache.refresh(Date.UTC(2030, 0, 1, 0, 0, 0));
  assert.equal(String.fromCharCode(...cache.line), "Date: Tue, 01 Jan 2030 00:00:00 GMT\r\n");
});

test("http-response: unknown length is chunked for HTTP/1.1 and read-until-close for HTTP/1.0", () => {
  const chunked = head({ bodyLength: -1 });
  assert.ok(lines(chunked.text).includes("Transfer-Encoding: chunked"));
  assert.ok(!chunked.text.includes("Content-Length"));
  assert.equal(chunked.writer.bodyMode, BodyMode.Chunked);
  assert.equal(chunked.writer.keepAlive, true);
  const untilClose = head({ bodyLength: -1, requestVersionMinor: 0, requestKeepAlive: true });
  assert.ok(!untilClose.text.includes("Transfer-Encoding") && !untilClose.text.includes("Content-Length"));
  assert.ok(lines(untilClose.text).includes("Connection: close"));
  assert.equal(untilClose.writer.bodyMode, BodyMode.UntilClose);
  assert.equal(untilClose.writer.keepAlive, false);
});

test("http-response: 1xx, 204 and 304 carry no body and no framing headers", () => {
  for (const status of [100, 103, 204, 304]) {
    const { text, writer } = head({ status, bodyLength: status === 304 ? 10 : -1 });
    assert.ok(!/content-length|transfer-encoding/i.test(text), `${status}: ${JSON.stringify(text)}`);
    assert.equal(writer.bodyMode, BodyMode.None, String(status));
  }
  const noContent = head({ status: 204, bodyLength: -1, requestVersionMinor: 0, requestKeepAlive: true });
  assert.equal(noContent.writer.keepAlive, true, "no body to delimit, so an HTTP/1.0 keep-alive survives");
  assert.ok(lines(noContent.text).includes("Connection: keep-alive"));
});

test("http-response: HEAD gets the Content-Length a GET would have, and no body", () => {
  const known = head({ requestIsHead: true, bodyLength: 1234 });
  assert.ok(lines(known.text).includes("Content-Length: 1234"));
  assert.equal(known.writer.bodyMode, BodyMode.None);
  assert.equal(known.writer.keepAlive, true);
  const unknown = head({ requestIsHead: true, bodyLength: -1 });
  assert.ok(!/content-length|transfer-encoding/i.test(unknown.text), unknown.text);
  assert.equal(unknown.writer.bodyMode, BodyMode.None);
  const passed = head({ requestIsHead: true, bodyLength: -1, headerList: ["Content-Length", "99"] });
  assert.deepEqual(lines(passed.text).filter((line) => /^content-length/i.test(line)), ["Content-Length: 99"]);
  assert.throws(() => head({ requestIsHead: true, bodyLength: -1, headerList: ["Content-Length", "9x"] }), TypeError);
  const oldClient = head({ requestIsHead: true, bodyLength: -1, requestVersionMinor: 0, requestKeepAlive: true });
  assert.equal(oldClient.writer.keepAlive, true, "HEAD has no body, so unknown length does not force close");
});

test("http-response: the handler's Content-Length and Transfer-Encoding are replaced by ours", () => {
  const { text } = head({ bodyLength: 3, headerList: ["Content-Length", "999", "Transfer-Encoding", "gzip, chunked", "X-A", "1"] });
  assert.deepEqual(lines(text).filter((line) => /^(content-length|transfer-encoding)/i.test(line)), ["Content-Length: 3"]);
  assert.ok(lines(text).includes("X-A: 1"));
});

test("http-response: Connection for HTTP/1.0 and HTTP/1.1, keep-alive or not", () => {
  const connectionLines = (text: string): string[] => lines(text).filter((line) => /^connection:/i.test(line));
  const cases: [0 | 1, boolean, string[], boolean][] = [
    [1, true, [], true],
    [1, false, ["Connection: close"], false],
    [0, true, ["Connection: keep-alive"], true],
    [0, false, ["Connection: close"], false],
  ];
  for (const [minor, keepAlive, expected, after] of cases) {
    const { text, writer } = head({ requestVersionMinor: minor, requestKeepAlive: keepAlive, bodyLength: 2 });
    assert.deepEqual(connectionLines(text), expected, `1.${minor} keepAlive=${keepAlive}`);
    assert.equal(writer.keepAlive, after);
  }
  const handlerCloses = head({ headerList: ["connection", "Close"] });
  assert.deepEqual(connectionLines(handlerCloses.text), ["Connection: close"]);
  assert.equal(handlerCloses.writer.keepAlive, false);
  const handlerOther = head({ headerList: ["Connection", "x-foo"] });
  assert.deepEqual(connectionLines(handlerOther.text), [], "other Connection options are ours to decide");
});

test("http-response: 101 keeps the handler's Connection: upgrade and hands the connection over", () => {
  const { text, writer } = head({ status: 101, bodyLength: -1, headerList: ["Upgrade", "websocket", "Connection", "Upgrade"] });
  assert.deepEqual(lines(text), ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", DATE_LINE.slice(0, -2)]);
  assert.equal(writer.keepAlive, false);
  assert.equal(writer.bodyMode, BodyMode.None);
});

test("http-response: CR/LF injection and other invalid fields are TypeErrors, wherever they hide", () => {
  const badNames = ["X-A\r\nX-B", "X-A\n", "X A", "X:A", "", "X-\u00e9", "X-\u2028", "X\x00"];
  const badValues = ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "a\x00b", "a\x7f", "\u0100", "\u2028", " lead", "trail\t"];
  for (const name of badNames) assert.throws(() => head({ headerList: [name, "v"] }), TypeError, JSON.stringify(name));
  for (const value of badValues) {
    assert.throws(() => head({ headerList: ["X-A", value] }), TypeError, JSON.stringify(value));
    // Fields this writer drops or rewrites are checked too.
    for (const name of ["Content-Length", "Transfer-Encoding", "Connection"]) {
      assert.throws(() => head({ headerList: [name, value] }), TypeError, `${name}: ${JSON.stringify(value)}`);
    }
  }
  assert.throws(() => head({ reason: "OK\r\nSet-Cookie: x=1" }), TypeError);
  assert.throws(() => head({ reason: "OK\n" }), TypeError);
  assert.deepEqual(lines(head({ headerList: ["X-Latin", "caf\u00e9", "!#$%&'*+-.^_`|~", "ok"] }).text).slice(1, 3), ["X-Latin: caf\u00e9", "!#$%&'*+-.^_`|~: ok"]);
});

test("http-response: a buffer too small gives -1, but invalid fields still throw", () => {
  const writer = new ResponseHeadWriter();
  const valid = input({ headerList: ["X-A", "a".repeat(100)] });
  for (const size of [0, 10, 17, 60, 120]) assert.equal(writer.write(new Uint8Array(size), 0, valid, NOW_MS), -1, `size ${size}`);
  const needed = head({ headerList: ["X-A", "a".repeat(100)] }).text.length;
  assert.equal(writer.write(new Uint8Array(needed), 0, valid, NOW_MS), needed);
  assert.equal(writer.write(new Uint8Array(needed - 1), 0, valid, NOW_MS), -1);
  for (const size of [20, 30, 60]) {
    const injected = input({ headerList: ["X-A", "a".repeat(100), "X-B", "b\r\nInjected: 1"] });
    assert.throws(() => writer.write(new Uint8Array(size), 0, injected, NOW_MS), TypeError, `size ${size}`);
    const badName = input({ headerList: ["X-A", "a".repeat(100), "X\r\nB", "b"] });
    assert.throws(() => writer.write(new Uint8Array(size), 0, badName, NOW_MS), TypeError, `size ${size}`);
  }
});

test("http-response: writes at an offset and leaves the bytes before it alone", () => {
  const writer = new ResponseHeadWriter();
  const out = new Uint8Array(256).fill(0x2a);
  const end = writer.write(out, 10, input({ status: 204 }), NOW_MS);
  assert.ok(out.subarray(0, 10).every((byte) => byte === 0x2a));
  assert.equal(String.fromCharCode(...out.subarray(10, end)), `HTTP/1.1 204 No Content\r\n${DATE_LINE}\r\n`);
});

test("http-response: chunk headers are lowercase hex and sized by chunkHeaderLength", () => {
  const out = new Uint8Array(32);
  for (const [size, hex] of [[1, "1"], [15, "f"], [16, "10"], [255, "ff"], [4096, "1000"], [0xabcdef, "abcdef"], [Number.MAX_SAFE_INTEGER, "1fffffffffffff"]] as const) {
    const end = writeChunkHeader(out, 3, size);
    assert.equal(String.fromCharCode(...out.subarray(3, end)), `${hex}\r\n`);
    assert.equal(chunkHeaderLength(size), hex.length + 2);
  }
  for (const size of [0, -1, 1.5, Number.NaN, 2 ** 53]) assert.throws(() => writeChunkHeader(out, 0, size), RangeError, String(size));
  assert.equal(writeChunkHeader(new Uint8Array(3), 0, 16), -1);
  assert.equal(String.fromCharCode(...LAST_CHUNK_BYTES), "0\r\n\r\n");
});

test("http-response: writeChunk frames data that ChunkedDecoder reads back", () => {
  const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
  const out = new Uint8Array(400);
  let end = 0;
  for (const [start, stop] of [[0, 1], [1, 1], [1, 17], [17, 300]]) end = writeChunk(out, end, data, start!, stop!);
  out.set(LAST_CHUNK_BYTES, end);
  end += LAST_CHUNK_BYTES.length;
  assert.equal(writeChunk(out, 0, data, 0, 1), 6, "1 CRLF x CRLF");
  assert.equal(writeChunk(new Uint8Array(10), 0, data, 0, 8), -1);
  const decoder = new ChunkedDecoder(1000);
  const framed = out.subarray(0, end);
  assert.equal(decoder.decode(framed, 0, framed.length), framed.length);
  assert.equal(decoder.status, ParseStatus.Done);
  const decoded: number[] = [];
  for (let i = 0; i < decoder.spanCount; i++) decoded.push(...framed.subarray(decoder.spans[2 * i], decoder.spans[2 * i + 1]));
  assert.deepEqual(decoded, Array.from(data));
});

test("http-response: the head writer's line cache validates every new pair and repeats cached ones exactly", () => {
  const writer = new ResponseHeadWriter();
  const out = new Uint8Array(512);
  const nowMs = Date.UTC(2026, 0, 1);
  const write = (headers: string[]): string => {
    const input: ResponseHeadInput = {
      status: 200, reason: null, headers, headerCount: headers.length / 2, bodyLength: 1,
      requestVersionMinor: 1, requestKeepAlive: true, requestIsHead: false,
    };
    const end = writer.write(out, 0, input, nowMs);
    return String.fromCharCode(...out.subarray(0, end));
  };
  const good = ["content-type", "text/plain", "x-y", "z"];
  const first = write(good);
  for (let i = 0; i < 3; i++) assert.equal(write([...good]), first);
  assert.throws(() => write(["content-type", "text/plain", "x-y", "z\n"]), TypeError);
  assert.throws(() => write(["content-type", "text/plain", "x y", "z"]), TypeError);
  assert.throws(() => write(["", ""]), TypeError);
  assert.throws(() => write(["", ""]), TypeError, "an invalid pair is never cached");
  assert.equal(write(good), first);
  // A cached line that no longer fits: -1 (no room), then the same line once there is room.
  const small = new Uint8Array(20);
  const input: ResponseHeadInput = {
    status: 200, reason: null, headers: good, headerCount: 2, bodyLength: 1,
    requestVersionMinor: 1, requestKeepAlive: true, requestIsHead: false,
  };
  assert.equal(writer.write(small, 0, input, nowMs), -1);
  assert.equal(write(good), first);
});

test("http-response: the text response cache holds one text for one Date second", () => {
  const cache = new BareTextCache();
  const bytes = new Uint8Array([1, 2, 3]);
  assert.equal(cache.get("a", 10), null);
  cache.set("a", 10, bytes);
  assert.equal(cache.get("a", 10), bytes);
  assert.equal(cache.get("a", 11), null, "a new second formats a new Date");
  assert.equal(cache.get(["a", "b"].join("").slice(0, 1), 10), bytes, "equal strings match, not only the same one");
  assert.equal(cache.get("b", 10), null);
});
