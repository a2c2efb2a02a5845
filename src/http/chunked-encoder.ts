// Framing for chunked response bodies (RFC 9112 §7.1): `hex-size CRLF data CRLF`, ended by `0 CRLF CRLF`.
import { writeBytes } from "./latin1-writer.ts";

export const CRLF_BYTES: Uint8Array = new Uint8Array([0x0d, 0x0a]);
/** last-chunk plus the empty trailer section. */
export const LAST_CHUNK_BYTES: Uint8Array = new Uint8Array([0x30, 0x0d, 0x0a, 0x0d, 0x0a]);
const HEX = "0123456789abcdef";

/** Bytes writeChunkHeader needs for a chunk of `dataBytes` bytes. */
export function chunkHeaderLength(dataBytes: number): number {
  let digits = 1;
  for (let rest = dataBytes; rest >= 16; rest = Math.floor(rest / 16)) digits++;
  return digits + 2;
}

/** Writes `hex-size CRLF`. dataBytes must be > 0: a zero size would end the body. Returns -1 when out is full. */
export function writeChunkHeader(out: Uint8Array, offset: number, dataBytes: number): number {
  if (!(dataBytes > 0) || !Number.isSafeInteger(dataBytes)) throw new RangeError(`Invalid chunk size: ${dataBytes}`);
  const length = chunkHeaderLength(dataBytes);
  if (offset + length > out.length) return -1;
  let rest = dataBytes;
  for (let i = offset + length - 3; i >= offset; i--) {
    out[i] = HEX.charCodeAt(rest % 16);
    rest = Math.floor(rest / 16);
  }
  out[offset + length - 2] = 0x0d;
  out[offset + length - 1] = 0x0a;
  return offset + length;
}

/**
 * Writes one whole chunk (header, data[dataStart, dataEnd), CRLF). An empty span writes nothing, since
 * an empty chunk is the end-of-body marker; send LAST_CHUNK_BYTES for that. Returns -1 when out is full.
 */
export function writeChunk(out: Uint8Array, offset: number, data: Uint8Array, dataStart: number, dataEnd: number): number {
  const dataBytes = dataEnd - dataStart;
  if (dataBytes === 0) return offset;
  if (offset + chunkHeaderLength(dataBytes) + dataBytes + 2 > out.length) return -1;
  let next = writeChunkHeader(out, offset, dataBytes);
  out.set(data.subarray(dataStart, dataEnd), next);
  next += dataBytes;
  return writeBytes(out, next, CRLF_BYTES);
}
