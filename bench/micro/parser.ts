// Microbenchmark: ns per parse of a typical 5-header GET: whole, pipelined, and split over two reads.
// Run: node_modules/.bin/bun bench/micro/parser.ts; node_modules/.bin/deno run bench/micro/parser.ts
import { HeadParser, ParseStatus } from "../../src/http/parser.ts";

const REQUEST =
  "GET /api/users?id=42 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) curl/8.5.0\r\n" +
  "Accept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n\r\n";

/** Best of 5 rounds, in ns per operation; `body` performs `operationsPerCall` operations. */
function measure(label: string, iterations: number, body: () => void, operationsPerCall = 1): number {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) body();
    best = Math.min(best, ((performance.now() - t0) * 1e6) / (iterations * operationsPerCall));
  }
  console.log(`${label.padEnd(44)} ${best.toFixed(1)} ns`);
  return best;
}

export function benchParser(): void {
  const bytes = new TextEncoder().encode(REQUEST);
  const parser = new HeadParser({ maxHeaderBytes: 16_384, maxHeaderCount: 100 });
  let sink = 0;
  measure(`parse 5-header GET (${bytes.length} B)`, 1_000_000, () => {
    if (parser.parse(bytes, 0, bytes.length) !== ParseStatus.Done) throw new Error(parser.errorCode);
    sink += parser.headerCount;
  });
  const pipelined = new Uint8Array(bytes.length * 16);
  for (let i = 0; i < 16; i++) pipelined.set(bytes, i * bytes.length);
  measure("parse 16 pipelined GETs, per request", 100_000, () => {
    let start = 0;
    for (let i = 0; i < 16; i++) {
      parser.parse(pipelined, start, pipelined.length);
      start += parser.headLength;
    }
    sink += start;
  }, 16);
  // A head split mid-line: the second call compares the saved prefix instead of parsing it again.
  const cut = REQUEST.indexOf("Accept:") + 3;
  measure("parse 5-header GET in two reads", 1_000_000, () => {
    if (parser.parse(bytes, 0, cut) !== ParseStatus.Incomplete) throw new Error("expected Incomplete");
    if (parser.parse(bytes, 0, bytes.length) !== ParseStatus.Done) throw new Error(parser.errorCode);
    sink += parser.headerCount;
  });
  if (sink === 1) console.log(sink);
}

if (import.meta.main) benchParser();
