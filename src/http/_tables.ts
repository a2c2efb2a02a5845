// Byte-class lookup tables shared by the head parser, the chunked decoder and the response writer.
// One Uint8Array per class, indexed by byte value: a table load is cheaper than a chain of comparisons.

function table(accepts: (byte: number) => boolean): Uint8Array {
  const out = new Uint8Array(256);
  for (let byte = 0; byte < 256; byte++) out[byte] = accepts(byte) ? 1 : 0;
  return out;
}

const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;
const isAlpha = (b: number): boolean => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);

/** RFC 9110 §5.6.2 tchar: method names, header names, transfer codings, chunk-extension names. */
export const TOKEN: Uint8Array = table((b) => isDigit(b) || isAlpha(b) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(b)));

/** RFC 9110 §5.5 field-value bytes: VCHAR, obs-text, SP and HTAB. No other CTL, no DEL. */
export const FIELD_VALUE: Uint8Array = table((b) => b === 0x09 || b === 0x20 || (b >= 0x21 && b <= 0x7e) || b >= 0x80);

/** Request-target bytes: visible ASCII only (RFC 3986 wants everything else percent-encoded). */
export const TARGET: Uint8Array = table((b) => b >= 0x21 && b <= 0x7e);

/** Host header bytes (RFC 3986 host [":" port]): unreserved, pct-encoded, sub-delims, ":", "[", "]". */
export const HOST: Uint8Array = table((b) => isDigit(b) || isAlpha(b) || "-._~%!$&'()*+,;=:[]".includes(String.fromCharCode(b)));

/** RFC 9110 §5.6.4 qdtext: bytes allowed unescaped inside a quoted-string. */
export const QDTEXT: Uint8Array = table((b) => b === 0x09 || b === 0x20 || b === 0x21 || (b >= 0x23 && b <= 0x5b) || (b >= 0x5d && b <= 0x7e) || b >= 0x80);

/** Hex digit value, or 0xff when the byte is not a hex digit. */
export const HEX_VALUE: Uint8Array = (() => {
  const out = new Uint8Array(256).fill(0xff);
  for (let d = 0; d < 10; d++) out[0x30 + d] = d;
  for (let d = 0; d < 6; d++) {
    out[0x41 + d] = 10 + d;
    out[0x61 + d] = 10 + d;
  }
  return out;
})();

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HTAB = 0x09;
export const COLON = 0x3a;
export const COMMA = 0x2c;
export const SEMICOLON = 0x3b;

/** Compares buf[start, start + lowerAscii.length) with a lowercase ASCII word, ignoring ASCII case. */
export function equalsIgnoreCase(buf: Uint8Array, start: number, end: number, lowerAscii: string): boolean {
  const length = lowerAscii.length;
  if (end - start !== length) return false;
  for (let i = 0; i < length; i++) {
    // `| 0x20` folds A-Z onto a-z; it also maps some punctuation, so compare against lowercase letters and '-' only.
    if ((buf[start + i]! | 0x20) !== lowerAscii.charCodeAt(i)) return false;
  }
  return true;
}
