// Opt-in response compression (`compression: true | { gzip, br, minBytes, level }`), with the runtime's
// node:zlib: the coding is negotiated from Accept-Encoding (q-values, `*`, `identity;q=0`), Vary:
// Accept-Encoding is added to every compressible response, and nothing is compressed that must not be or
// gains nothing: 1xx/204/304, HEAD, ranges, bodies already encoded, Cache-Control: no-transform, types that
// are compressed already (images, video, archives), static bodies under minBytes, and file bodies (they go
// out by sendfile). A static body is compressed at once; a stream chunk by chunk, each flushed, so what the
// handler sends as it goes still reaches the client as it goes.
import zlib from "node:zlib";
import { ConfigError } from "../errors.ts";
import { runtime } from "../ffi/index.ts";
import { fileSourceOf } from "./files.ts";

export interface CompressionOptions {
  /** Offer gzip (default true). */
  gzip?: boolean;
  /** Offer Brotli (default true); preferred over gzip at equal q. */
  br?: boolean;
  /** Static bodies shorter than this many bytes go out as they are (default 1024). */
  minBytes?: number;
  /** zlib level 1-9 for gzip, 0-11 for Brotli quality (default: 6 and 4, the usual speed/size trade). */
  level?: number;
}

type Coding = "br" | "gzip";
type Handler<A> = (request: Request, server: A) => Response | Promise<Response>;

interface Settings {
  codings: Coding[];
  minBytes: number;
  level: number | undefined;
}

const COMPRESSIBLE = /^(text\/|application\/(json|javascript|xml|x-javascript|manifest\+json|wasm|x-www-form-urlencoded)|image\/svg\+xml|[^;]*\+(json|xml)\b)/i;
const encoder = new TextEncoder();

export function checkCompression(option: unknown): Settings | null {
  if (option === undefined || option === false) return null;
  const given = option === true ? {} : option;
  if (typeof given !== "object" || given === null) throw new ConfigError("compression", `must be true, false or an object, got ${typeof option}`);
  const { gzip = true, br = true, minBytes = 1024, level } = given as CompressionOptions;
  for (const key of Object.keys(given)) {
    if (!["gzip", "br", "minBytes", "level"].includes(key)) throw new ConfigError(`compression.${key}`, "is not a compression option (gzip, br, minBytes, level)");
  }
  if (typeof gzip !== "boolean" || typeof br !== "boolean") throw new ConfigError("compression", "gzip and br must be booleans");
  if (!gzip && !br) throw new ConfigError("compression", "offers no coding (gzip and br are both false)");
  if (!Number.isInteger(minBytes) || minBytes < 0) throw new ConfigError("compression.minBytes", `must be a non-negative integer, got ${JSON.stringify(minBytes)}`);
  if (level !== undefined && (!Number.isInteger(level) || level < 0 || level > 11)) throw new ConfigError("compression.level", `must be an integer from 0 to 11, got ${JSON.stringify(level)}`);
  const codings: Coding[] = [];
  if (br) codings.push("br");
  if (gzip) codings.push("gzip");
  return { codings, minBytes, level };
}

/** The handler with its responses compressed as the request accepts. */
export function compressing<A>(handler: Handler<A>, settings: Settings): Handler<A> {
  return (request, server) => {
    const result = handler(request, server);
    if (runtime.isResponse(result)) return compress(request, result, settings);
    return Promise.resolve(result).then((response) => (runtime.isResponse(response) ? compress(request, response, settings) : response));
  };
}

/** The best coding the request accepts among ours, or null (identity). */
export function negotiate(acceptEncoding: string | null, codings: readonly Coding[]): Coding | null {
  if (acceptEncoding === null) return null;
  const q = new Map<string, number>();
  for (const part of acceptEncoding.split(",")) {
    const [name, ...params] = part.trim().toLowerCase().split(";");
    if (name === "") continue;
    let value = 1;
    for (const param of params) {
      const [key, raw] = param.trim().split("=");
      if (key === "q") value = Number(raw);
    }
    if (Number.isFinite(value)) q.set(name === "x-gzip" ? "gzip" : name, value);
  }
  let best: Coding | null = null;
  let bestQ = 0;
  for (const coding of codings) {
    const value = q.get(coding) ?? q.get("*") ?? 0;
    if (value > bestQ) {
      best = coding;
      bestQ = value;
    }
  }
  return best;
}

/**
 * The response to send: this one, or a new one with a compressed body (the handler's Response, which may be a
 * static route's, shared by every request, is never changed).
 */
function compress(request: Request, response: Response, settings: Settings): Response {
  const status = response.status;
  if (status < 200 || status === 204 || status === 304 || status === 206) return response;
  const type = response.headers.get("content-type");
  if (type === null || !COMPRESSIBLE.test(type)) return response;
  const given = response.headers;
  if (given.has("content-encoding") || given.has("content-range") || /\bno-transform\b/i.test(given.get("cache-control") ?? "")) return response;
  if (fileSourceOf(response) !== null) return response;
  const body = runtime.staticBody(response);
  if (body === null) return response;
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const headers = new Headers(given);
  addVary(headers); // the representation varies with Accept-Encoding, whichever this request gets
  const init = { status, statusText: response.statusText, headers };
  const coding = request.method === "HEAD" || request.headers.has("range") || (bytes !== undefined && bytes.byteLength < settings.minBytes)
    ? null
    : negotiate(request.headers.get("accept-encoding"), settings.codings);
  if (coding === null) {
    if (bytes !== undefined) return new runtime.FastResponse(bytes as BodyInit, init);
    return given.has("vary") && /accept-encoding|\*/i.test(given.get("vary")!) ? response : new runtime.FastResponse(response.body, init);
  }
  headers.set("content-encoding", coding);
  headers.delete("content-length");
  if (bytes !== undefined) return new runtime.FastResponse(compressBytes(bytes, coding, settings.level) as BodyInit, init);
  return new runtime.FastResponse(compressStream(response.body!, coding, settings.level), init);
}

function addVary(headers: Headers): void {
  const vary = headers.get("vary");
  if (vary === null) headers.set("vary", "Accept-Encoding");
  else if (!/(^|,)\s*(accept-encoding|\*)\s*(,|$)/i.test(vary)) headers.set("vary", `${vary}, Accept-Encoding`);
}

function compressBytes(bytes: Uint8Array, coding: Coding, level: number | undefined): Uint8Array {
  const out = coding === "br"
    ? zlib.brotliCompressSync(bytes, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level ?? 4 } })
    : zlib.gzipSync(bytes, { level: level === undefined ? 6 : Math.min(level, 9) });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Each chunk of the handler's stream is compressed and flushed before the next is read (pull-driven: backpressure holds). */
function compressStream(source: ReadableStream<unknown>, coding: Coding, level: number | undefined): ReadableStream<Uint8Array> {
  const stream = coding === "br"
    ? zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level ?? 4 } })
    : zlib.createGzip({ level: level === undefined ? 6 : Math.min(level, 9) });
  const flushKind = coding === "br" ? zlib.constants.BROTLI_OPERATION_FLUSH : zlib.constants.Z_SYNC_FLUSH;
  const reader = source.getReader();
  let pending: Uint8Array[] = [];
  stream.on("data", (chunk: Uint8Array) => pending.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
  /** What zlib made of the last chunk, as one piece (so one HTTP chunk carries one whole flush). */
  const take = (): Uint8Array[] => {
    const out = pending;
    pending = [];
    if (out.length <= 1) return out;
    const joined = new Uint8Array(out.reduce((sum, part) => sum + part.byteLength, 0));
    let offset = 0;
    for (const part of out) {
      joined.set(part, offset);
      offset += part.byteLength;
    }
    return [joined];
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await reader.read();
      if (next.done) {
        await new Promise<void>((resolve, reject) => {
          stream.once("error", reject);
          stream.once("end", resolve);
          stream.end();
        });
        for (const chunk of take()) controller.enqueue(chunk);
        controller.close();
        return;
      }
      const value = next.value;
      const chunk = typeof value === "string" ? encoder.encode(value) : ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(value as ArrayBuffer);
      await new Promise<void>((resolve, reject) => {
        stream.once("error", reject);
        stream.write(chunk);
        stream.flush(flushKind, () => resolve());
      });
      for (const out of take()) controller.enqueue(out);
    },
    cancel(reason) {
      stream.destroy();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
