// The Date header (RFC 9110 §6.6.1, IMF-fixdate), formatted at most once per second and kept as bytes
// so the response writer copies 37 bytes instead of formatting a date per response.

const LINE_PREFIX = "Date: ";
/** "Date: " + 29-byte IMF-fixdate + CRLF. */
export const DATE_LINE_BYTES = LINE_PREFIX.length + 29 + 2;

export class DateCache {
  /** "Sun, 06 Nov 1994 08:49:37 GMT" for the current second. */
  value = "";
  /** `Date: <value>\r\n` as bytes. */
  readonly line = new Uint8Array(DATE_LINE_BYTES);
  /** The Unix second `line` was formatted for. */
  second = Number.NaN;

  constructor() {
    for (let i = 0; i < LINE_PREFIX.length; i++) this.line[i] = LINE_PREFIX.charCodeAt(i);
    this.line[DATE_LINE_BYTES - 2] = 0x0d;
    this.line[DATE_LINE_BYTES - 1] = 0x0a;
  }

  /** Re-formats only when the wall-clock second changed; pass `nowMs` when the caller already has it. */
  refresh(nowMs: number = Date.now()): void {
    const second = Math.floor(nowMs / 1000);
    if (second === this.second) return;
    this.second = second;
    // toUTCString is specified (ECMA-262 §21.4.4.43) as exactly the IMF-fixdate layout for years 1000-9999.
    const text = new Date(second * 1000).toUTCString();
    this.value = text;
    for (let i = 0; i < 29; i++) this.line[LINE_PREFIX.length + i] = text.charCodeAt(i);
  }
}

/** One per worker (module instance); refreshing it is the response writer's business. */
export const dateCache: DateCache = new DateCache();
