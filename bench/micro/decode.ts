// Microbenchmark: turning short latin1 byte spans into strings; numbers go to docs/http-parsing.md.
// Run: node_modules/.bin/bun bench/micro/decode.ts; node_modules/.bin/deno run bench/micro/decode.ts
// viaLatin1Slice is what src/http/_strings.ts (Latin1Decoder) uses; viaCache is the idea behind InternTable.
import { Buffer } from "node:buffer";
const enc = new TextEncoder();
const samples = ["GET", "/", "Host", "localhost:8080", "User-Agent", "Mozilla/5.0 (X11; Linux x86_64) curl/8.5.0", "Accept", "*/*", "Accept-Encoding", "gzip, deflate, br"];
const buf = new Uint8Array(4096);
const spans: number[] = [];
let off = 0;
for (const s of samples) { const b = enc.encode(s); buf.set(b, off); spans.push(off, off + b.length); off += b.length + 1; }
const td = new TextDecoder("latin1");
const tdu = new TextDecoder("utf-8");

function viaApply(b: Uint8Array, s: number, e: number): string { return String.fromCharCode.apply(null, b.subarray(s, e) as unknown as number[]); }
function viaDecoder(b: Uint8Array, s: number, e: number): string { return td.decode(b.subarray(s, e)); }
function viaUtf8(b: Uint8Array, s: number, e: number): string { return tdu.decode(b.subarray(s, e)); }
function viaLoop(b: Uint8Array, s: number, e: number): string { let r = ""; for (let i = s; i < e; i++) r += String.fromCharCode(b[i]!); return r; }
const ARGS: number[] = [];
function viaArgs(b: Uint8Array, s: number, e: number): string {
  const n = e - s;
  switch (n) {
    case 1: return String.fromCharCode(b[s]!);
    case 2: return String.fromCharCode(b[s]!, b[s + 1]!);
    case 3: return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!);
    case 4: return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!);
  }
  ARGS.length = n;
  for (let i = 0; i < n; i++) ARGS[i] = b[s + i]!;
  return String.fromCharCode.apply(null, ARGS);
}
// Cache: open-addressed table keyed by a hash of the bytes; hit = compare bytes, no allocation.
const SLOTS = 512, keyBytes = new Uint8Array(SLOTS * 64), keyLen = new Int32Array(SLOTS), vals: string[] = new Array(SLOTS).fill("");
function viaCache(b: Uint8Array, s: number, e: number): string {
  const n = e - s;
  let h = n;
  for (let i = s; i < e; i++) h = (h * 31 + b[i]!) | 0;
  const slot = h & (SLOTS - 1);
  if (keyLen[slot] === n) {
    const base = slot * 64;
    let i = 0;
    while (i < n && keyBytes[base + i] === b[s + i]) i++;
    if (i === n) return vals[slot]!;
  }
  const str = viaApply(b, s, e);
  if (n <= 64) { keyBytes.set(b.subarray(s, e), slot * 64); keyLen[slot] = n; vals[slot] = str; }
  return str;
}
const bufView = Buffer.from(buf.buffer) as unknown as { latin1Slice(start: number, end: number): string };
function viaLatin1Slice(_b: Uint8Array, s: number, e: number): string { return bufView.latin1Slice(s, e); }
const B: Record<string, (b: Uint8Array, s: number, e: number) => string> = { viaApply, viaDecoder, viaUtf8, viaLoop, viaArgs, viaLatin1Slice, viaCache };
let sink = 0;
for (const [name, fn] of Object.entries(B)) {
  for (let round = 0; round < 3; round++) {
    const iters = 200_000;
    const t0 = performance.now();
    for (let k = 0; k < iters; k++) for (let j = 0; j < spans.length; j += 2) sink += fn(buf, spans[j]!, spans[j + 1]!).length;
    const ns = ((performance.now() - t0) * 1e6) / (iters * (spans.length / 2));
    if (round === 2) console.log(`${name.padEnd(16)} ${ns.toFixed(1)} ns/span`);
  }
}
if (sink === 42) console.log(sink);
