// HeadParser: the data-driven cases in test/http/cases/*.md, each also fed split at every byte and one
// byte at a time, plus a seeded mutation fuzz over valid requests.
import { assert, test } from "../_harness.ts";
import { mulberry32 } from "../_random.ts";
import { HTTP_ERRORS } from "../../src/http/errors.ts";
import { HeadParser, ParseStatus } from "../../src/http/parser.ts";
import { loadCases, type ParserCase } from "../http/_case-loader.ts";
import { errorResult, headResult, makeParser, pick, runMessages } from "../http/_run-case.ts";

const cases = loadCases();

for (const parserCase of cases) {
  test(`http-parser ${parserCase.file}: ${parserCase.name}`, () => {
    const actual = runMessages(parserCase.bytes, parserCase.meta);
    assert.equal(actual.length, parserCase.expected.length, `messages: ${JSON.stringify(actual)}`);
    parserCase.expected.forEach((expected, i) => assert.deepEqual(pick(actual[i]!, expected), expected, `message ${i}`));
    checkSplits(parserCase);
    checkByteByByte(parserCase);
  });
}

function firstHead(parser: HeadParser, status: ParseStatus): Record<string, unknown> {
  if (status === ParseStatus.Done) return headResult(parser);
  if (status === ParseStatus.Error) return errorResult(parser);
  return { incomplete: true };
}

/** Prefix bytes[0, k) then the whole input, on one parser: same outcome as the whole input at once. */
function checkSplits(parserCase: ParserCase): void {
  const bytes = parserCase.bytes;
  const whole = makeParser(parserCase.meta);
  const wholeStatus = whole.parse(bytes, 0, bytes.length);
  const expected = firstHead(whole, wholeStatus);
  for (let k = 0; k <= bytes.length; k++) {
    const parser = makeParser(parserCase.meta);
    const prefixStatus = parser.parse(bytes, 0, k);
    if (wholeStatus === ParseStatus.Done) {
      assert.equal(prefixStatus, k >= whole.headLength ? ParseStatus.Done : ParseStatus.Incomplete, `prefix ${k}`);
    } else if (prefixStatus === ParseStatus.Error) {
      assert.equal(parser.errorCode, whole.errorCode, `prefix ${k} error`);
      continue;
    }
    if (prefixStatus === ParseStatus.Done) continue;
    assert.deepEqual(firstHead(parser, parser.parse(bytes, 0, bytes.length)), expected, `split at ${k}`);
  }
}

/** Offsets 0..1, 0..2, ... on one parser until it stops being Incomplete. */
function checkByteByByte(parserCase: ParserCase): void {
  const bytes = parserCase.bytes;
  const whole = makeParser(parserCase.meta);
  const expected = firstHead(whole, whole.parse(bytes, 0, bytes.length));
  const parser = makeParser(parserCase.meta);
  let status: ParseStatus = ParseStatus.Incomplete;
  for (let end = 0; end <= bytes.length && status === ParseStatus.Incomplete; end++) status = parser.parse(bytes, 0, end);
  assert.deepEqual(firstHead(parser, status), expected, "byte by byte");
  assert.deepEqual(runMessages(bytes, parserCase.meta, 1), runMessages(bytes, parserCase.meta), "chunked bodies fed one byte at a time");
}

test("http-parser: the case files cover every head error code", () => {
  const seen = new Set<string>();
  for (const parserCase of cases) for (const expected of parserCase.expected) {
    if (typeof expected.error === "string") seen.add(expected.error);
    if (typeof expected.bodyError === "string") seen.add(expected.bodyError);
  }
  const missing = Object.keys(HTTP_ERRORS).filter((code) => !seen.has(code));
  assert.deepEqual(missing, []);
});

test("http-parser: parses at a non-zero start inside a larger buffer", () => {
  const text = "xxxxGET /a HTTP/1.1\r\nHost: h\r\n\r\nyyyy";
  const bytes = Uint8Array.from(text, (ch) => ch.charCodeAt(0));
  const parser = new HeadParser({ maxHeaderBytes: 1024, maxHeaderCount: 8 });
  assert.equal(parser.parse(bytes.subarray(2), 2, bytes.length - 2), ParseStatus.Done);
  assert.equal(parser.target, "/a");
  assert.equal(parser.headLength, text.indexOf("yyyy") - 4);
});

test("http-parser: reset() forgets a partial head", () => {
  const parser = new HeadParser({ maxHeaderBytes: 1024, maxHeaderCount: 8 });
  const first = Uint8Array.from("GET /first HTTP/1.1\r\nHo", (ch) => ch.charCodeAt(0));
  assert.equal(parser.parse(first, 0, first.length), ParseStatus.Incomplete);
  parser.reset();
  first.set(Uint8Array.from("POST /b HTTP/1.0\r\n\r\n", (ch) => ch.charCodeAt(0)));
  assert.equal(parser.parse(first, 0, 20), ParseStatus.Done);
  assert.equal(parser.method, "POST");
});

test("http-parser: a partial head is not resumed over different bytes in the same buffer", () => {
  // The server reads every connection into one shared buffer at offset 0 and never calls reset().
  const parser = new HeadParser({ maxHeaderBytes: 1024, maxHeaderCount: 8 });
  const shared = new Uint8Array(256);
  const write = (text: string): number => {
    shared.set(Uint8Array.from(text, (ch) => ch.charCodeAt(0)));
    return text.length;
  };
  assert.equal(parser.parse(shared, 0, write("POST /from-a HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nContent-Le")), ParseStatus.Incomplete);
  const other = "GET /from-b HTTP/1.0\r\nX-Bee: 2\r\nX-Cee: 3\r\n\r\n";
  assert.equal(parser.parse(shared, 0, write(other)), ParseStatus.Done);
  assert.deepEqual([parser.method, parser.target, parser.headerCount, parser.headers[0]], ["GET", "/from-b", 2, "X-Bee"]);
  assert.equal(parser.headLength, other.length);
  // The first connection's bytes come back (its leftover is copied to offset 0) and it resumes cleanly.
  assert.equal(parser.parse(shared, 0, write("POST /from-a HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nContent-Le")), ParseStatus.Incomplete);
  assert.equal(parser.parse(shared, 0, write("POST /from-a HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n")), ParseStatus.Done);
  assert.deepEqual([parser.method, parser.target, parser.headerCount, parser.contentLength], ["POST", "/from-a", 3, 0]);
});

// Mutation fuzz: deterministic (seeded), bounded, and checks invariants rather than exact outcomes.
const SEEDS = [
  "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
  "POST /p?q=1 HTTP/1.1\r\nHost: x:1\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc",
  "PUT /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n3;a=b\r\nabc\r\n0\r\nT: v\r\n\r\n",
  "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
  "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
];
const INTERESTING = [0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x00, 0x7f, 0x80, 0xff, 0x2c, 0x3b, 0x22, 0x30, 0x41];


function mutate(random: () => number, seed: Uint8Array): Uint8Array {
  const bytes = Array.from(seed);
  const edits = 1 + Math.floor(random() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * (bytes.length + 1));
    const pickByte = (): number => random() < 0.7 ? INTERESTING[Math.floor(random() * INTERESTING.length)]! : Math.floor(random() * 256);
    const kind = Math.floor(random() * 4);
    if (kind === 0 && at < bytes.length) bytes[at] = pickByte();
    else if (kind === 1) bytes.splice(at, 0, pickByte());
    else if (kind === 2 && at < bytes.length) bytes.splice(at, 1);
    else bytes.splice(at, 0, ...bytes.slice(at, at + Math.floor(random() * 8)));
  }
  return Uint8Array.from(bytes);
}

test("http-parser: fuzz 2000 mutated requests (seeded)", () => {
  const random = mulberry32(0x5eed);
  const encoder = new TextEncoder();
  const seeds = SEEDS.map((text) => encoder.encode(text));
  const parser = new HeadParser({ maxHeaderBytes: 256, maxHeaderCount: 8 });
  const split = new HeadParser({ maxHeaderBytes: 256, maxHeaderCount: 8 });
  const outcomes = new Map<number, number>();
  for (let i = 0; i < 2000; i++) {
    const bytes = mutate(random, seeds[i % seeds.length]!);
    const status = parser.parse(bytes, 0, bytes.length);
    outcomes.set(status, (outcomes.get(status) ?? 0) + 1);
    if (status === ParseStatus.Done) {
      assert.ok(parser.headLength > 0 && parser.headLength <= bytes.length, `headLength ${parser.headLength}`);
      assert.ok(parser.contentLength >= -1 && Number.isSafeInteger(parser.contentLength));
    } else if (status === ParseStatus.Error) {
      const info = HTTP_ERRORS[parser.errorCode as keyof typeof HTTP_ERRORS];
      assert.ok(info !== undefined, `unknown code ${parser.errorCode}`);
      assert.equal(parser.errorStatus, info.status);
      assert.ok(parser.errorReason.length > 0);
    }
    const cut = Math.floor(random() * (bytes.length + 1));
    const early = split.parse(bytes, 0, cut);
    const late = early === ParseStatus.Incomplete ? split.parse(bytes, 0, bytes.length) : early;
    assert.equal(late, status, `split at ${cut} of ${JSON.stringify(String.fromCharCode(...bytes))}`);
    if (late === ParseStatus.Error) assert.equal(split.errorCode, parser.errorCode);
    else split.reset();
  }
  assert.ok((outcomes.get(ParseStatus.Done) ?? 0) > 100 && (outcomes.get(ParseStatus.Error) ?? 0) > 100, JSON.stringify([...outcomes]));
});
