// Writing strings into byte buffers without TextEncoder: HTTP heads are latin1 (RFC 9110 §5.5), and a
// charCodeAt loop beats a native encode call for the short strings heads are made of.
// Every writer returns the new offset, or -1 when `out` has no room (nothing useful is written then).
import { FIELD_VALUE, TOKEN } from "./_tables.ts";

/** Copies code units as bytes. The caller guarantees every code unit is <= 0xff (say, a constant). */
export function writeLatin1(out: Uint8Array, offset: number, text: string): number {
  const length = text.length;
  if (offset + length > out.length) return -1;
  for (let i = 0; i < length; i++) out[offset + i] = text.charCodeAt(i);
  return offset + length;
}

/** Copies a small byte array (a loop beats `set` below a few dozen bytes on both runtimes). */
export function writeBytes(out: Uint8Array, offset: number, bytes: Uint8Array): number {
  const length = bytes.length;
  if (offset + length > out.length) return -1;
  for (let i = 0; i < length; i++) out[offset + i] = bytes[i]!;
  return offset + length;
}

/** Writes a non-negative integer in decimal. */
export function writeDecimal(out: Uint8Array, offset: number, value: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  if (offset + digits > out.length) return -1;
  let rest = value;
  for (let i = offset + digits - 1; i >= offset; i--) {
    out[i] = 0x30 + (rest % 10);
    rest = Math.floor(rest / 10);
  }
  return offset + digits;
}

/** Writes a header name; throws TypeError unless it is a non-empty token (RFC 9110 §5.1). */
export function writeFieldName(out: Uint8Array, offset: number, name: string): number {
  const length = name.length;
  if (offset + length > out.length) {
    checkFieldName(name); // an invalid name is a TypeError whether or not it fits
    return -1;
  }
  if (length === 0) throw new TypeError("Header name is empty");
  for (let i = 0; i < length; i++) {
    const unit = name.charCodeAt(i);
    if (unit > 0xff || TOKEN[unit] !== 1) throw new TypeError(`Invalid header name: ${JSON.stringify(name)}`);
    out[offset + i] = unit;
  }
  return offset + length;
}

/**
 * Writes a header value; throws TypeError on CR, LF, NUL or any other CTL but HTAB, and on code units above
 * 0xff (fetch Headers are ByteStrings). Leading or trailing whitespace is a caller bug we also reject.
 */
export function writeFieldValue(out: Uint8Array, offset: number, value: string): number {
  const length = value.length;
  if (offset + length > out.length) {
    checkFieldValue(value); // an invalid value is a TypeError whether or not it fits
    return -1;
  }
  for (let i = 0; i < length; i++) {
    const unit = value.charCodeAt(i);
    if (unit > 0xff || FIELD_VALUE[unit] !== 1) throw new TypeError(`Invalid header value: ${JSON.stringify(value)}`);
    out[offset + i] = unit;
  }
  if (length > 0 && (isWhitespace(value.charCodeAt(0)) || isWhitespace(value.charCodeAt(length - 1)))) {
    throw new TypeError(`Header value has leading or trailing whitespace: ${JSON.stringify(value)}`);
  }
  return offset + length;
}

/** Throws the TypeError writeFieldName would, without writing. */
export function checkFieldName(name: string): void {
  if (name.length === 0) throw new TypeError("Header name is empty");
  for (let i = 0; i < name.length; i++) {
    const unit = name.charCodeAt(i);
    if (unit > 0xff || TOKEN[unit] !== 1) throw new TypeError(`Invalid header name: ${JSON.stringify(name)}`);
  }
}

/** Throws the TypeError writeFieldValue would, without writing. */
export function checkFieldValue(value: string): void {
  const length = value.length;
  for (let i = 0; i < length; i++) {
    const unit = value.charCodeAt(i);
    if (unit > 0xff || FIELD_VALUE[unit] !== 1) throw new TypeError(`Invalid header value: ${JSON.stringify(value)}`);
  }
  if (length > 0 && (isWhitespace(value.charCodeAt(0)) || isWhitespace(value.charCodeAt(length - 1)))) {
    throw new TypeError(`Header value has leading or trailing whitespace: ${JSON.stringify(value)}`);
  }
}

function isWhitespace(unit: number): boolean {
  return unit === 0x20 || unit === 0x09;
}
