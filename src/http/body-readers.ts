// What the body readers (text(), json(), arrayBuffer(), bytes(), blob(), formData()) make of a request
// body, as the platform's own readers do: UTF-8 decoded with replacement and a leading BOM dropped (the
// Fetch standard's "UTF-8 decode"); blob() and formData() go through a Response, which knows the
// platform's MIME type rules and multipart parsing.
import type { RequestBody } from "./body.ts";

export type BodyReader = "arrayBuffer" | "blob" | "bytes" | "formData" | "json" | "text";
export const BODY_READERS: readonly BodyReader[] = ["arrayBuffer", "blob", "bytes", "formData", "json", "text"];

const utf8 = new TextDecoder(); // fatal: false (replacement), ignoreBOM: false (a BOM is dropped)

const decodeText = (bytes: Uint8Array): string => utf8.decode(bytes);
const decodeJson = (bytes: Uint8Array): unknown => JSON.parse(utf8.decode(bytes));
const asBytes = (bytes: Uint8Array): Uint8Array => bytes;

/** The body's own array when it spans all of it (RequestBody hands over exact arrays), else a copy. */
function asArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  return whole ? (bytes.buffer as ArrayBuffer) : (bytes.slice().buffer as ArrayBuffer);
}

/** A reader over a body gathered in memory; contentType matters to blob() and formData() only. */
export function readGathered(body: RequestBody, name: BodyReader, contentType: string | null): Promise<unknown> {
  switch (name) {
    case "text":
      return body.read(decodeText);
    case "json":
      return body.read(decodeJson);
    case "arrayBuffer":
      return body.read(asArrayBuffer);
    case "bytes":
      return body.read(asBytes);
    default:
      return body.read(asBytes).then((bytes) => readThroughResponse(bytes, name, contentType));
  }
}

/** A reader over bytes or a stream, through a Response with the request's Content-Type (same answers, same errors). */
export function readThroughResponse(
  source: Uint8Array | ReadableStream<Uint8Array>,
  name: BodyReader,
  contentType: string | null,
): Promise<unknown> {
  try {
    const response = new Response(source as BodyInit, contentType === null ? undefined : { headers: { "content-type": contentType } });
    return (response as unknown as Record<BodyReader, () => Promise<unknown>>)[name]();
  } catch (error) {
    return Promise.reject(error); // a locked stream: the platform's reader rejects, it does not throw
  }
}
