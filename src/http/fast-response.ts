// The Response class whose string and byte bodies the server sends straight from memory (see
// Runtime.FastResponse). On Bun, importing the library already makes it the global Response, unless
// REUSEPORT_NATIVE_RESPONSE=1; `new FastResponse(body, init)` is the fast path either way.
import { runtime } from "../ffi/index.ts";

export const FastResponse: typeof Response = runtime.FastResponse;

/** A short text/plain answer the server makes itself (404, 405, 500, ...). */
export function plainResponse(text: string, status: number, headers: Record<string, string> = {}): Response {
  return new FastResponse(text, { status, headers: { "content-type": "text/plain;charset=utf-8", ...headers } });
}
