// ChunkedDecoder (RFC 9112 §7.1): table cases, each fed whole, at every split point and one byte at a
// time (all three must agree), plus a round trip of seeded random bodies and a seeded mutation fuzz.
import { assert, test } from "../_harness.ts";
import { mulberry32 } from "../_random.ts";
import { ChunkedDecoder, type ChunkedLimits, DEFAULT_CHUNKED_LIMITS } from "../../src/http/chunked-decoder.ts";
import { HTTP_ERRORS } from "../../src/http/errors.ts";
import { ParseStatus } from "../../src/http/parser.ts";

interface Outcome {
  data: string;
  /** Error code, "" when Done, "incomplete" when the input ran out first. */
  error: string;
  /** Bytes consumed; after Done this is where the next request starts. */
  consumed: number;
}

const bytesOf = (text: string): Uint8Array => Uint8Array.from(text, (ch) => ch.charCodeAt(0));

/** Feeds `bytes` in slices ending at each of `cuts` (then at the end), as a connection's reads would. */
function feed(bytes: Uint8Array, maxBodyBytes: number, limits: ChunkedLimits, cuts: readonly number[]): Outcome {
  const decoder = new ChunkedDecoder(maxBodyBytes, limits);
  let data = "";
  let offset = 0;
  for (const cut of [...cuts, bytes.length]) {
    while (offset < cut && decoder.status === ParseStatus.Incomplete) {
      const used = decoder.decode(bytes, offset, cut);
      for (let i = 0; i < decoder.spanCount; i++) {
        const start = decoder.spans[2 * i]!;
        const end = decoder.spans[2 * i + 1]!;
        assert.ok(start >= offset && start < end && end <= offset + used, `span [${start}, ${end}) outside [${offset}, ${offset + used})`);
        data += String.fromCharCode(...bytes.subarray(start, end));
      }
      offset += used;
      if (used === 0 && decoder.status === ParseStatus.Incomplete) throw new Error("no progress");
    }
  }
  if (decoder.status === ParseStatus.Error) {
    const info = HTTP_ERRORS[decoder.errorCode as keyof typeof HTTP_ERRORS];
    assert.equal(decoder.errorStatus, info.status);
    assert.ok(decoder.errorReason.length > 0);
  }
  const error = decoder.status === ParseStatus.Done ? "" : decoder.status === ParseStatus.Error ? decoder.errorCode : "incomplete";
  return { data, error, consumed: offset };
}

/** Whole, every two-slice split, and byte by byte must give the same outcome; returns it. */
function decodeEveryWay(text: string, maxBodyBytes = 1 << 20, limits: ChunkedLimits = DEFAULT_CHUNKED_LIMITS): Outcome {
  const bytes = bytesOf(text);
  const whole = feed(bytes, maxBodyBytes, limits, []);
  for (let k = 0; k <= bytes.length; k++) assert.deepEqual(feed(bytes, maxBodyBytes, limits, [k]), whole, `split at ${k}`);
  const everyByte = Array.from({ length: bytes.length }, (_, i) => i + 1);
  assert.deepEqual(feed(bytes, maxBodyBytes, limits, everyByte), whole, "one byte at a time");
  return whole;
}

interface ChunkedCase {
  name: string;
  input: string;
  data?: string;
  error: string;
  consumed?: number;
  maxBodyBytes?: number;
  limits?: Partial<ChunkedLimits>;
}

const CASES: ChunkedCase[] = [
  // Well-formed bodies.
  { name: "one chunk", input: "5\r\nhello\r\n0\r\n\r\n", data: "hello", error: "" },
  { name: "empty body", input: "0\r\n\r\n", data: "", error: "" },
  { name: "several chunks", input: "3\r\nabc\r\n1\r\nd\r\n2\r\nef\r\n0\r\n\r\n", data: "abcdef", error: "" },
  { name: "upper and lower case hex, leading zeros", input: "0A\r\n0123456789\r\na\r\nabcdefghij\r\n000\r\n\r\n", data: "0123456789abcdefghij", error: "" },
  { name: "16 hex digits are allowed", input: "0000000000000003\r\nabc\r\n0\r\n\r\n", data: "abc", error: "" },
  { name: "data may hold CR, LF and NUL", input: "4\r\n\r\n\x00\n\r\n0\r\n\r\n", data: "\r\n\x00\n", error: "" },
  { name: "consumed stops at the end of the body", input: "1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n", data: "a", error: "", consumed: 11 },
  // Extensions: validated, then ignored.
  { name: "extension without a value", input: "3;x\r\nabc\r\n0\r\n\r\n", data: "abc", error: "" },
  { name: "token extension values", input: "3;a=b;c=d-e.f\r\nabc\r\n0;last=1\r\n\r\n", data: "abc", error: "" },
  { name: "quoted extension values", input: "3;a=\"\";b=\"x y;z=w, \\\"q\\\" \\\\\"\r\nabc\r\n0\r\n\r\n", data: "abc", error: "" },
  { name: "quoted value with HTAB and obs-text", input: "3;a=\"\t\xe9\\\xff\"\r\nabc\r\n0\r\n\r\n", data: "abc", error: "" },
  { name: "semicolon without a name", input: "3;\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_EXTENSION" },
  { name: "two semicolons", input: "3;a;;b\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_EXTENSION" },
  { name: "value without a name", input: "3;=b\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_EXTENSION" },
  { name: "name with an empty value", input: "3;a=\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_EXTENSION" },
  { name: "whitespace around ';' (BWS: rejected, as llhttp strict)", input: "3 ;a\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_SIZE" },
  { name: "whitespace after ';'", input: "3; a\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_EXTENSION" },
  { name: "whitespace around '='", input: "3;a =b\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_EXTENSION" },
  { name: "unterminated quoted value", input: "3;a=\"b\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_EXTENSION" },
  { name: "control character in a quoted value", input: "3;a=\"\x01\"\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_EXTENSION" },
  { name: "DEL in a quoted value", input: "3;a=\"\x7f\"\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_EXTENSION" },
  { name: "quoted-pair escaping LF", input: "3;a=\"\\\n\"\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_EXTENSION" },
  { name: "text right after a closing quote", input: "3;a=\"b\"c\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_EXTENSION" },
  { name: "quoted name", input: "3;\"a\"\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_EXTENSION" },
  { name: "extension ended by bare LF", input: "3;a=b\nabc\r\n0\r\n\r\n", error: "CR_EXPECTED" },
  { name: "quoted extension ended by bare LF", input: "3;a=\"b\"\nabc\r\n0\r\n\r\n", error: "CR_EXPECTED" },
  { name: "extension ended by bare CR", input: "3;a\rabc\r\n0\r\n\r\n", error: "LF_EXPECTED" },
  { name: "extensions at maxChunkExtensionBytes", input: "3;abcdefgh\r\nabc\r\n0\r\n\r\n", data: "abc", error: "", limits: { maxChunkExtensionBytes: 9 } },
  { name: "extensions over maxChunkExtensionBytes", input: "3;abcdefghi\r\nabc\r\n0\r\n\r\n", error: "CHUNK_EXTENSIONS_TOO_LARGE", limits: { maxChunkExtensionBytes: 9 } },
  { name: "extension limit is per chunk", input: "1;abcdefgh\r\na\r\n1;abcdefgh\r\nb\r\n0;abcdefgh\r\n\r\n", data: "ab", error: "", limits: { maxChunkExtensionBytes: 9 } },
  // Sizes.
  { name: "no size", input: "\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_SIZE" },
  { name: "non-hex size", input: "g\r\n", error: "INVALID_CHUNK_SIZE" },
  { name: "SP before the size", input: " 3\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_SIZE" },
  { name: "SP after the size", input: "3 \r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_SIZE" },
  { name: "sign before the size", input: "+3\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_SIZE" },
  { name: "0x prefix", input: "0x3\r\nabc\r\n0\r\n\r\n", error: "INVALID_CHUNK_SIZE" },
  { name: "17 hex digits overflow, even as leading zeros", input: "00000000000000003\r\nabc\r\n", error: "CHUNK_SIZE_OVERFLOW" },
  { name: "2^53-1 is the largest size (413 under a normal maxBodyBytes)", input: "1fffffffffffff\r\n", error: "BODY_TOO_LARGE" },
  { name: "2^53-1 is accepted when maxBodyBytes allows it", input: "1fffffffffffff\r\nabc", data: "abc", error: "incomplete", maxBodyBytes: Number.MAX_SAFE_INTEGER },
  { name: "2^53 overflows", input: "20000000000000\r\n", error: "CHUNK_SIZE_OVERFLOW", maxBodyBytes: Number.MAX_SAFE_INTEGER },
  { name: "16 f's overflow 2^53-1", input: "ffffffffffffffff\r\n", error: "CHUNK_SIZE_OVERFLOW", maxBodyBytes: Number.MAX_SAFE_INTEGER },
  { name: "2^64 overflows", input: "10000000000000000\r\n", error: "CHUNK_SIZE_OVERFLOW", maxBodyBytes: Number.MAX_SAFE_INTEGER },
  { name: "size line ended by bare LF", input: "3\nabc\r\n0\r\n\r\n", error: "CR_EXPECTED" },
  { name: "size line ended by bare CR", input: "3\rabc\r\n0\r\n\r\n", error: "LF_EXPECTED" },
  { name: "last-chunk line ended by bare LF", input: "0\n\r\n", error: "CR_EXPECTED" },
  // The CRLF after each chunk's data.
  { name: "data longer than the size", input: "3\r\nabcd\r\n0\r\n\r\n", data: "abc", error: "CHUNK_DATA_CRLF_EXPECTED" },
  { name: "data not followed by CRLF at all", input: "3\r\nabc0\r\n\r\n", data: "abc", error: "CHUNK_DATA_CRLF_EXPECTED" },
  { name: "data followed by bare LF", input: "3\r\nabc\n0\r\n\r\n", data: "abc", error: "CR_EXPECTED" },
  { name: "data followed by bare CR", input: "3\r\nabc\r0\r\n\r\n", data: "abc", error: "LF_EXPECTED" },
  { name: "data followed by CR CR LF", input: "3\r\nabc\r\r\n0\r\n\r\n", data: "abc", error: "LF_EXPECTED" },
  { name: "body cut short is incomplete", input: "5\r\nhel", data: "hel", error: "incomplete" },
  { name: "missing final CRLF is incomplete", input: "0\r\n", data: "", error: "incomplete" },
  // Trailers.
  { name: "trailer fields are dropped", input: "3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum:  abc \r\nX-Empty:\r\n\r\n", data: "abc", error: "" },
  { name: "trailer value with HTAB and obs-text", input: "0\r\nX: a\tb\xe9\r\n\r\n", data: "", error: "" },
  { name: "SP before a trailer colon", input: "0\r\nX : v\r\n\r\n", error: "INVALID_HEADER_TOKEN" },
  { name: "trailer line without a colon", input: "0\r\nX\r\n\r\n", error: "INVALID_HEADER_TOKEN" },
  { name: "trailer line starting with a colon", input: "0\r\n:v\r\n\r\n", error: "INVALID_HEADER_TOKEN" },
  { name: "invalid byte in a trailer name", input: "0\r\nX@Y: v\r\n\r\n", error: "INVALID_HEADER_TOKEN" },
  { name: "NUL in a trailer value", input: "0\r\nX: a\x00\r\n\r\n", error: "INVALID_HEADER_VALUE" },
  { name: "obs-fold in the trailers", input: "0\r\nX: a\r\n\tb\r\n\r\n", error: "OBSOLETE_LINE_FOLDING" },
  { name: "trailer line ended by bare LF", input: "0\r\nX: a\n\r\n", error: "CR_EXPECTED" },
  { name: "trailer name ended by bare LF", input: "0\r\nX\n\r\n", error: "CR_EXPECTED" },
  { name: "trailer section ended by bare LF", input: "0\r\nX: a\r\n\n", error: "CR_EXPECTED" },
  { name: "empty trailer section ended by bare LF", input: "0\r\n\n", error: "CR_EXPECTED" },
  { name: "bare CR in a trailer value", input: "0\r\nX: a\rb\r\n\r\n", error: "LF_EXPECTED" },
  { name: "trailer section ended by bare CR", input: "0\r\n\rX", error: "LF_EXPECTED" },
  { name: "maxTrailerCount fields", input: "0\r\nA: 1\r\nB: 2\r\n\r\n", data: "", error: "", limits: { maxTrailerCount: 2 } },
  { name: "over maxTrailerCount (431)", input: "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", error: "TOO_MANY_TRAILERS", limits: { maxTrailerCount: 2 } },
  { name: "trailer section of maxTrailerBytes", input: "0\r\nA: 12345\r\n\r\n", data: "", error: "", limits: { maxTrailerBytes: 12 } },
  { name: "trailer section over maxTrailerBytes (431)", input: "0\r\nA: 123456\r\n\r\n", error: "TRAILERS_TOO_LARGE", limits: { maxTrailerBytes: 12 } },
  // maxBodyBytes: checked when a size line ends, before any of its data is accepted.
  { name: "body of exactly maxBodyBytes", input: "4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n", data: "abcdefgh", error: "", maxBodyBytes: 8 },
  { name: "one chunk over maxBodyBytes (413)", input: "9\r\nabcdefghi\r\n0\r\n\r\n", data: "", error: "BODY_TOO_LARGE", maxBodyBytes: 8 },
  { name: "chunks adding up past maxBodyBytes (413)", input: "4\r\nabcd\r\n5\r\nefghi\r\n0\r\n\r\n", data: "abcd", error: "BODY_TOO_LARGE", maxBodyBytes: 8 },
  { name: "maxBodyBytes of zero allows only the last chunk", input: "0\r\n\r\n", data: "", error: "", maxBodyBytes: 0 },
  { name: "maxBodyBytes is checked before an extension is read", input: "9;a=b\r\n", error: "BODY_TOO_LARGE", maxBodyBytes: 8 },
];

for (const c of CASES) {
  test(`http-chunked: ${c.name}`, () => {
    const limits = { ...DEFAULT_CHUNKED_LIMITS, ...c.limits };
    const outcome = decodeEveryWay(c.input, c.maxBodyBytes ?? 1 << 20, limits);
    assert.equal(outcome.error, c.error, JSON.stringify(outcome));
    if (c.data !== undefined) assert.equal(outcome.data, c.data);
    if (c.consumed !== undefined) assert.equal(outcome.consumed, c.consumed);
    if (c.error === "") assert.equal(c.consumed ?? c.input.length, outcome.consumed);
  });
}

test("http-chunked: errors carry the status of their code", () => {
  const expected: [string, number, number, Partial<ChunkedLimits>][] = [
    ["9\r\n", 413, 8, {}],
    ["0\r\nA: 1\r\nB: 2\r\n", 431, 1 << 20, { maxTrailerCount: 1 }],
    ["0\r\nA: 123456789\r\n", 431, 1 << 20, { maxTrailerBytes: 8 }],
    ["zz", 400, 1 << 20, {}],
  ];
  for (const [input, status, maxBodyBytes, limits] of expected) {
    const decoder = new ChunkedDecoder(maxBodyBytes, { ...DEFAULT_CHUNKED_LIMITS, ...limits });
    decoder.decode(bytesOf(input), 0, input.length);
    assert.equal(decoder.status, ParseStatus.Error, input);
    assert.equal(decoder.errorStatus, status, `${input}: ${decoder.errorCode}`);
  }
});

test("http-chunked: bodyBytes sums the announced sizes; reset() starts a new body", () => {
  const decoder = new ChunkedDecoder(100);
  const first = bytesOf("3\r\nabc\r\n4\r\nde");
  decoder.decode(first, 0, first.length);
  assert.equal(decoder.bodyBytes, 7);
  assert.equal(decoder.status, ParseStatus.Incomplete);
  decoder.reset();
  const second = bytesOf("2\r\nxy\r\n0\r\n\r\n");
  assert.equal(decoder.decode(second, 0, second.length), second.length);
  assert.equal(decoder.done, true);
  assert.equal(decoder.bodyBytes, 2);
  assert.equal(decoder.decode(second, 0, second.length), 0, "a finished body consumes nothing more");
});

test("http-chunked: a full span table returns early and the next call goes on", () => {
  const decoder = new ChunkedDecoder(1 << 20, { ...DEFAULT_CHUNKED_LIMITS, spanCountMax: 2 });
  const bytes = bytesOf("1\r\na\r\n1\r\nb\r\n1\r\nc\r\n1\r\nd\r\n1\r\ne\r\n0\r\n\r\n");
  let data = "";
  let offset = 0;
  let calls = 0;
  while (!decoder.done) {
    offset += decoder.decode(bytes, offset, bytes.length);
    assert.ok(decoder.spanCount <= 2);
    for (let i = 0; i < decoder.spanCount; i++) data += String.fromCharCode(...bytes.subarray(decoder.spans[2 * i], decoder.spans[2 * i + 1]));
    assert.ok(++calls <= 10);
  }
  assert.equal(data, "abcde");
  assert.equal(offset, bytes.length);
  assert.ok(calls >= 3);
});


const EXTENSIONS = ["", ";a", ";a=b", ";name=\"q \\\" v\"", ";x=1;y", ";ext=\"\""];
const TRAILERS = ["", "X-T: v\r\n", "A: 1\r\nB:\r\n", "Digest:  sha-256=abc \r\n"];

/** A random valid chunked body and the data it carries. */
function randomBody(random: () => number): { text: string; data: string } {
  let text = "";
  let data = "";
  const chunkCount = Math.floor(random() * 5);
  for (let c = 0; c < chunkCount; c++) {
    const size = 1 + Math.floor(random() * 40);
    let chunk = "";
    for (let i = 0; i < size; i++) chunk += String.fromCharCode(Math.floor(random() * 256));
    const hex = size.toString(16);
    const sizeText = random() < 0.3 ? hex.toUpperCase().padStart(1 + Math.floor(random() * 4), "0") : hex;
    text += `${sizeText}${EXTENSIONS[Math.floor(random() * EXTENSIONS.length)]}\r\n${chunk}\r\n`;
    data += chunk;
  }
  text += `0${EXTENSIONS[Math.floor(random() * EXTENSIONS.length)]}\r\n${TRAILERS[Math.floor(random() * TRAILERS.length)]}\r\n`;
  return { text, data };
}

test("http-chunked: 300 random valid bodies round-trip whole, split and byte by byte (seeded)", () => {
  const random = mulberry32(0xc0ffee);
  for (let i = 0; i < 300; i++) {
    const { text, data } = randomBody(random);
    const bytes = bytesOf(text);
    const whole = feed(bytes, 1 << 20, DEFAULT_CHUNKED_LIMITS, []);
    assert.deepEqual(whole, { data, error: "", consumed: bytes.length }, JSON.stringify(text));
    const cuts = [Math.floor(random() * bytes.length), Math.floor(random() * bytes.length)].sort((a, b) => a - b);
    assert.deepEqual(feed(bytes, 1 << 20, DEFAULT_CHUNKED_LIMITS, cuts), whole, `cuts ${cuts}`);
    const everyByte = Array.from({ length: bytes.length }, (_, j) => j + 1);
    assert.deepEqual(feed(bytes, 1 << 20, DEFAULT_CHUNKED_LIMITS, everyByte), whole);
  }
});

const INTERESTING = [0x0d, 0x0a, 0x20, 0x09, 0x3b, 0x3d, 0x22, 0x5c, 0x3a, 0x00, 0x7f, 0x30, 0x66, 0x67, 0xff];

test("http-chunked: fuzz 3000 mutated bodies (seeded): feeding never changes the outcome", () => {
  const random = mulberry32(0xbad5eed);
  const limits: ChunkedLimits = { maxChunkExtensionBytes: 24, maxTrailerBytes: 48, maxTrailerCount: 3, spanCountMax: 4 };
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const bytes = Array.from(bytesOf(randomBody(random).text));
    const edits = 1 + Math.floor(random() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(random() * (bytes.length + 1));
      const byte = random() < 0.7 ? INTERESTING[Math.floor(random() * INTERESTING.length)]! : Math.floor(random() * 256);
      const kind = Math.floor(random() * 3);
      if (kind === 0 && at < bytes.length) bytes[at] = byte;
      else if (kind === 1) bytes.splice(at, 0, byte);
      else bytes.splice(at, 1);
    }
    const mutated = Uint8Array.from(bytes);
    const maxBodyBytes = 64 + Math.floor(random() * 64);
    const whole = feed(mutated, maxBodyBytes, limits, []);
    assert.ok(whole.consumed <= mutated.length);
    const cut = Math.floor(random() * (mutated.length + 1));
    assert.deepEqual(feed(mutated, maxBodyBytes, limits, [cut]), whole, `cut ${cut} of ${JSON.stringify(String.fromCharCode(...mutated))}`);
    if (i % 10 === 0) {
      const everyByte = Array.from({ length: mutated.length }, (_, j) => j + 1);
      assert.deepEqual(feed(mutated, maxBodyBytes, limits, everyByte), whole);
    }
    outcomes.set(whole.error, (outcomes.get(whole.error) ?? 0) + 1);
  }
  assert.ok((outcomes.get("") ?? 0) > 100 && outcomes.size > 8, JSON.stringify([...outcomes]));
});
