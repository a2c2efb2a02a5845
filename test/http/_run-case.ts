// Runs parser cases: parses every message in the input (head, then body by Content-Length or chunked)
// and reduces each to a plain object the json blocks are compared with.
import { ChunkedDecoder, DEFAULT_CHUNKED_LIMITS } from "../../src/http/chunked-decoder.ts";
import { HeadParser, ParseStatus } from "../../src/http/parser.ts";
import type { CaseMeta } from "./_case-loader.ts";

export type MessageResult = Record<string, unknown>;

export function makeParser(meta: CaseMeta): HeadParser {
  return new HeadParser({ maxHeaderBytes: meta.maxHeaderBytes ?? 8192, maxHeaderCount: meta.maxHeaderCount ?? 64 });
}

/** Everything the parser reported for one Done head. */
export function headResult(parser: HeadParser): MessageResult {
  const headers: string[][] = [];
  for (let i = 0; i < parser.headerCount; i++) headers.push([parser.headers[2 * i]!, parser.headers[2 * i + 1]!]);
  return {
    method: parser.method, target: parser.target, version: `1.${parser.versionMinor}`, headers,
    headLength: parser.headLength, contentLength: parser.contentLength, chunked: parser.chunked,
    keepAlive: parser.keepAlive, expectContinue: parser.expectContinue, upgrade: parser.upgrade, host: parser.host,
  };
}

export function errorResult(parser: { errorCode: string; errorStatus: number }): MessageResult {
  return { error: parser.errorCode, status: parser.errorStatus };
}

/** The chunked decoder a case's meta asks for (defaults: 1 MiB of body, DEFAULT_CHUNKED_LIMITS). */
export function makeDecoder(meta: CaseMeta): ChunkedDecoder {
  return new ChunkedDecoder(meta.maxBodyBytes ?? 1 << 20, {
    maxChunkExtensionBytes: meta.maxChunkExtensionBytes ?? DEFAULT_CHUNKED_LIMITS.maxChunkExtensionBytes,
    maxTrailerBytes: meta.maxTrailerBytes ?? DEFAULT_CHUNKED_LIMITS.maxTrailerBytes,
    maxTrailerCount: meta.maxTrailerCount ?? DEFAULT_CHUNKED_LIMITS.maxTrailerCount,
    spanCountMax: DEFAULT_CHUNKED_LIMITS.spanCountMax,
  });
}

/** Decodes a chunked body from buf[start..]; `stepBytes` > 0 feeds that many bytes per call. */
export function decodeChunked(buf: Uint8Array, start: number, meta: CaseMeta, stepBytes: number): { consumed: number; body: string; error: string | null; done: boolean } {
  const decoder = makeDecoder(meta);
  let body = "";
  let offset = start;
  while (offset < buf.length && decoder.status === ParseStatus.Incomplete) {
    const end = stepBytes > 0 ? Math.min(buf.length, offset + stepBytes) : buf.length;
    const used = decoder.decode(buf, offset, end);
    for (let i = 0; i < decoder.spanCount; i++) {
      for (let j = decoder.spans[2 * i]!; j < decoder.spans[2 * i + 1]!; j++) body += String.fromCharCode(buf[j]!);
    }
    offset += used;
    if (used === 0 && decoder.status === ParseStatus.Incomplete) throw new Error("chunked decoder made no progress");
  }
  return { consumed: offset - start, body, error: decoder.status === ParseStatus.Error ? decoder.errorCode : null, done: decoder.done };
}

/** Parses all messages in `bytes`; stops after the first error or when a head is incomplete. */
export function runMessages(bytes: Uint8Array, meta: CaseMeta, chunkStepBytes = 0): MessageResult[] {
  const parser = makeParser(meta);
  const results: MessageResult[] = [];
  let start = 0;
  while (start < bytes.length) {
    const status = parser.parse(bytes, start, bytes.length);
    if (status === ParseStatus.Incomplete) {
      results.push({ incomplete: true });
      break;
    }
    if (status === ParseStatus.Error) {
      results.push(errorResult(parser));
      break;
    }
    const result = headResult(parser);
    results.push(result);
    start += parser.headLength;
    if (parser.chunked) {
      const decoded = decodeChunked(bytes, start, meta, chunkStepBytes);
      result.body = decoded.body;
      if (decoded.error !== null) {
        result.bodyError = decoded.error;
        break;
      }
      if (!decoded.done) break;
      start += decoded.consumed;
    } else if (parser.contentLength > 0) {
      const end = Math.min(bytes.length, start + parser.contentLength);
      result.body = String.fromCharCode(...bytes.subarray(start, end));
      start = end;
    }
  }
  return results;
}

/** Keeps only the keys the expectation names, so cases state just what they are about. */
export function pick(actual: MessageResult, expected: MessageResult): MessageResult {
  const out: MessageResult = {};
  for (const key of Object.keys(expected)) out[key] = actual[key];
  return out;
}
