// What a UDP send accepts: a string (sent as UTF-8, as Bun's UDP socket does) or any BufferSource
// (ArrayBuffer, SharedArrayBuffer, every TypedArray, DataView); anything else is a TypeError.

export type DatagramPayload = string | ArrayBuffer | SharedArrayBuffer | ArrayBufferView;

const hasSharedArrayBuffer = typeof SharedArrayBuffer !== "undefined";

/** The bytes of a non-string payload, as a Uint8Array over the same memory (no copy). */
export function payloadBytes(payload: unknown, what: string): Uint8Array {
  if (payload instanceof Uint8Array) return checkAttached(payload.buffer, payload, what);
  if (ArrayBuffer.isView(payload)) {
    return checkAttached(payload.buffer, new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), what);
  }
  if (payload instanceof ArrayBuffer || (hasSharedArrayBuffer && payload instanceof SharedArrayBuffer)) {
    return checkAttached(payload, new Uint8Array(payload), what);
  }
  throw new TypeError(`${what} must be a string, an ArrayBuffer or an ArrayBufferView (a TypedArray or DataView), got ${describe(payload)}`);
}

/** A detached buffer has no bytes left to send: sending an empty datagram instead would not be what was asked. */
function checkAttached(buffer: ArrayBufferLike, bytes: Uint8Array, what: string): Uint8Array {
  if ((buffer as ArrayBuffer & { detached?: boolean }).detached === true) throw new TypeError(`${what} is a view of a detached ArrayBuffer`);
  return bytes;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "object") return Array.isArray(value) ? "an Array" : `an object (${value.constructor?.name ?? "no prototype"})`;
  if (typeof value === "function") return "a function";
  return `${typeof value} ${String(value)}`;
}
