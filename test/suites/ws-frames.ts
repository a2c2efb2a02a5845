// The frame reader on its own (no sockets): a recorded stream fed whole, byte by byte and in random splits
// gives the same events; each rule of RFC 6455 a server checks closes with its code; server frame headers.
import { assert, test } from "../_harness.ts";
import { clientFrame } from "../_ws.ts";
import { closePayload, encodeFrame, FrameReader, frameHeaderBytes, isValidCloseCode, Opcode } from "../../src/ws/frames.ts";

const encoder = new TextEncoder();

/** Feeds `parts` to a fresh reader; returns what its sink was told, one string per event. */
function events(parts: Uint8Array[], maxPayloadBytes = 1 << 20): string[] {
  const seen: string[] = [];
  const reader = new FrameReader({
    onText: (text) => seen.push(`text ${text.length} ${text.slice(0, 12)}`),
    onBinary: (bytes) => seen.push(`binary ${bytes.byteLength} ${bytes.reduce((a, b) => (a * 31 + b) >>> 0, 0)}`),
    onPing: (payload) => seen.push(`ping ${new TextDecoder().decode(payload)}`),
    onPong: (payload) => seen.push(`pong ${payload.byteLength}`),
    onClose: (code, reason) => seen.push(`close ${code} ${reason}`),
    onError: (code, reason) => seen.push(`error ${code} ${reason}`),
  }, { maxPayloadBytes, inflater: null });
  // The reader may unmask in place: each part is a copy, as a read buffer would be.
  for (const part of parts) reader.push(part.slice(), 0, part.byteLength);
  return seen;
}

function concat(frames: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + f.byteLength, 0));
  let at = 0;
  for (const frame of frames) {
    out.set(frame, at);
    at += frame.byteLength;
  }
  return out;
}

const big = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff);
const stream = concat([
  clientFrame(1, encoder.encode("hello é")),
  clientFrame(1, encoder.encode("frag-"), { fin: false }),
  clientFrame(9, encoder.encode("between")),
  clientFrame(0, encoder.encode("ment 😀"), { fin: false }),
  clientFrame(0, encoder.encode(" end")),
  clientFrame(2, big),
  clientFrame(2, new Uint8Array(300).fill(1)),
  clientFrame(10, new Uint8Array(3)),
  clientFrame(8, closePayload(4000, "bye")),
]);
const EXPECTED = events([stream]);

test("ws frames: a recorded stream gives the same messages whole, byte by byte near the edges, and in random splits", () => {
  assert.deepEqual(EXPECTED.slice(0, 3), ["text 7 hello é", "ping between", `text ${"frag-ment 😀 end".length} frag-ment 😀`]);
  assert.equal(EXPECTED.at(-1), "close 4000 bye");
  assert.equal(EXPECTED.length, 7);
  for (let cut = 1; cut < 200; cut++) assert.deepEqual(events([stream.subarray(0, cut), stream.subarray(cut)]), EXPECTED, `cut at ${cut}`);
  const bytewise: Uint8Array[] = [];
  for (let i = 0; i < stream.byteLength; i += i < 300 || i > stream.byteLength - 400 ? 1 : 997) bytewise.push(stream.subarray(i, Math.min(i + (i < 300 || i > stream.byteLength - 400 ? 1 : 997), stream.byteLength)));
  assert.deepEqual(events(bytewise), EXPECTED);
  let seed = 12345;
  for (let round = 0; round < 50; round++) {
    const parts: Uint8Array[] = [];
    for (let at = 0; at < stream.byteLength;) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const size = 1 + (seed % 9000);
      parts.push(stream.subarray(at, at + size));
      at += size;
    }
    assert.deepEqual(events(parts), EXPECTED, `random round ${round}`);
  }
});

test("ws frames: each rule a server checks closes with its code, and nothing after it is read", () => {
  const cases: [string, Uint8Array[], string][] = [
    ["unmasked", [clientFrame(1, encoder.encode("x"), { mask: false })], "error 1002"],
    ["RSV2", [clientFrame(1, encoder.encode("x"), { rsv: 2 })], "error 1002"],
    ["RSV1 without deflate", [clientFrame(1, encoder.encode("x"), { rsv: 4 })], "error 1002"],
    ["reserved data opcode", [clientFrame(3, new Uint8Array(0))], "error 1002"],
    ["reserved control opcode", [clientFrame(11, new Uint8Array(0))], "error 1002"],
    ["long control frame", [clientFrame(9, new Uint8Array(126))], "error 1002"],
    ["fragmented control frame", [clientFrame(9, new Uint8Array(1), { fin: false })], "error 1002"],
    ["continuation without a message", [clientFrame(0, encoder.encode("x"))], "error 1002"],
    ["new message inside a fragmented one", [clientFrame(1, encoder.encode("a"), { fin: false }), clientFrame(1, encoder.encode("b"))], "error 1002"],
    ["close with a 1-byte body", [clientFrame(8, new Uint8Array(1))], "error 1002"],
    ["close code 1005 on the wire", [clientFrame(8, closePayload(1005))], "error 1002"],
    ["close code 2999", [clientFrame(8, closePayload(2999))], "error 1002"],
    ["close reason not UTF-8", [clientFrame(8, new Uint8Array([0x03, 0xe8, 0xff]))], "error 1007"],
    ["text not UTF-8", [clientFrame(1, new Uint8Array([0xc3, 0x28]))], "error 1007"],
    ["a surrogate", [clientFrame(1, new Uint8Array([0xed, 0xa0, 0x80]))], "error 1007"],
    ["past U+10FFFF", [clientFrame(1, new Uint8Array([0xf4, 0x90, 0x80, 0x80]))], "error 1007"],
    ["overlong", [clientFrame(1, new Uint8Array([0xc0, 0xaf]))], "error 1007"],
    ["a code point cut at the message's end", [clientFrame(1, new Uint8Array([0x61, 0xe2, 0x82]))], "error 1007"],
    ["bad UTF-8 in the first fragment, before the rest", [clientFrame(1, new Uint8Array([0xff]), { fin: false })], "error 1007"],
    ["too large at once", [clientFrame(2, new Uint8Array(2000))], "error 1009"],
    ["too large across fragments", [clientFrame(2, new Uint8Array(600), { fin: false }), clientFrame(0, new Uint8Array(600))], "error 1009"],
  ];
  for (const [what, frames, expected] of cases) {
    const seen = events([concat([...frames, clientFrame(1, encoder.encode("after"))])], 1024);
    assert.equal(seen.length, 1, `${what}: ${JSON.stringify(seen)}`);
    assert.ok(seen[0].startsWith(expected), `${what}: ${seen[0]}`);
  }
  assert.deepEqual(events([clientFrame(1, new Uint8Array([0xe2, 0x82]), { fin: false }), clientFrame(0, new Uint8Array([0xac]))]), ["text 1 €"], "a code point split across fragments");
  assert.deepEqual(events([clientFrame(1, new Uint8Array([0xef, 0xbb, 0xbf, 0x61]))]), ["text 2 \ufeffa"], "a BOM is kept");
  assert.deepEqual(events([clientFrame(8, new Uint8Array(0))]), ["close 1005 "]);
});

test("ws frames: server frame headers for each length encoding; close payloads cut on a code point; close codes", () => {
  for (const [length, header] of [[0, 2], [125, 2], [126, 4], [65535, 4], [65536, 10], [70_000, 10]]) {
    assert.equal(frameHeaderBytes(length), header);
    const frame = encodeFrame(Opcode.Binary, new Uint8Array(length));
    assert.equal(frame.byteLength, header + length);
    assert.equal(frame[0], 0x82);
    const declared = header === 2 ? frame[1] : header === 4 ? (frame[2] << 8) | frame[3] : Number(new DataView(frame.buffer).getBigUint64(2));
    assert.equal(declared, length);
  }
  const long = closePayload(1000, "é".repeat(100));
  assert.ok(long.byteLength <= 125);
  assert.doesNotThrow(() => new TextDecoder("utf-8", { fatal: true }).decode(long.subarray(2)));
  for (const code of [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999]) assert.ok(isValidCloseCode(code), String(code));
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) assert.ok(!isValidCloseCode(code), String(code));
});
