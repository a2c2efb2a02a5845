// UTF-8 encoding of response strings into one reused scratch buffer: a string body is encoded once,
// and its bytes go from the scratch to the socket (a writev behind the head), so no Uint8Array is
// allocated per response. The view is valid until the next encode; bytes that must wait (a short
// send) are copied by whoever keeps them.

/** The scratch grows up to this; a string whose UTF-8 may not fit gets bytes of its own. */
const SCRATCH_BYTES_MAX = 4 * 1024 * 1024;
const encoder = new TextEncoder();
let scratch = new Uint8Array(64 * 1024);

/** `text` as UTF-8: a view of the scratch (until the next call), or a fresh array for a huge string. */
export function encodeText(text: string): Uint8Array {
  const length = text.length;
  if (length > SCRATCH_BYTES_MAX) return encoder.encode(text);
  if (scratch.byteLength < length) scratch = new Uint8Array(grown(length));
  // First as if ASCII (one byte per code unit); a string that needs more room goes on where this stopped.
  const first = encoder.encodeInto(text, scratch);
  if (first.read === length) return scratch.subarray(0, first.written);
  const needed = first.written + 3 * (length - first.read); // UTF-8 needs at most 3 bytes per UTF-16 code unit
  if (needed > SCRATCH_BYTES_MAX) return encoder.encode(text);
  if (needed > scratch.byteLength) {
    const larger = new Uint8Array(grown(needed));
    larger.set(scratch.subarray(0, first.written));
    scratch = larger;
  }
  // encodeInto never stops inside a surrogate pair, so the rest starts at a whole code point.
  const rest = encoder.encodeInto(text.substring(first.read), scratch.subarray(first.written));
  return scratch.subarray(0, first.written + rest.written);
}

function grown(bytes: number): number {
  return Math.min(SCRATCH_BYTES_MAX, Math.max(bytes, 2 * scratch.byteLength));
}
