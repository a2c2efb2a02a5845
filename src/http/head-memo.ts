// The head of a connection's current request, as dispatch reads it, and the reuse of repeated heads.
// A keep-alive client often sends the same head again and again (API polling, health checks, a
// proxy's keep-alive pool, load generators). Each connection keeps the bytes of its last bodiless
// head with what the parser made of them; when the next head is the same bytes, that result is used
// again: one byte compare instead of a parse. Same bytes give the same parse, so nothing about
// strictness changes (docs/http-parsing.md). Every head, reused or parsed, reaches dispatch as this
// one object per connection, so that code only ever sees one shape.
import type { HeadParser } from "./parser.ts";

/** Longer heads are parsed every time (and cost no memory per connection). */
const MEMO_HEAD_BYTES_MAX = 1024;

const NO_BYTES = new Uint8Array(0);

export class HeadMemo {
  method = "";
  target = "";
  host: string | null = null;
  versionMinor: 0 | 1 = 1;
  /** Bytes from the head's start through its final CRLF. */
  headLength = 0;
  contentLength = -1;
  chunked = false;
  keepAlive = false;
  expectContinue = false;
  /** Flat [name, value, ...] as handed to the request; shared by every request made from this head. */
  headers: string[] = [];
  /** The head's bytes while it can be reused; empty otherwise. */
  private bytes = NO_BYTES;

  /**
   * Takes the parser's last head, whose bytes start at buf[start]; `headers` is its flat list. The bytes are
   * kept for reuse only for a head with no body and nothing to answer first (100-continue, upgrade).
   */
  record(parser: HeadParser, headers: string[], buf: Uint8Array, start: number): void {
    const length = parser.headLength;
    this.method = parser.method;
    this.target = parser.target;
    this.host = parser.host;
    this.versionMinor = parser.versionMinor;
    this.headLength = length;
    this.contentLength = parser.contentLength;
    this.chunked = parser.chunked;
    this.keepAlive = parser.keepAlive;
    this.expectContinue = parser.expectContinue;
    this.headers = headers;
    const reusable = !parser.chunked && parser.contentLength <= 0 && !parser.expectContinue && !parser.upgrade &&
      length <= MEMO_HEAD_BYTES_MAX;
    if (!reusable) {
      this.bytes = NO_BYTES;
      return;
    }
    if (this.bytes.length !== length) this.bytes = new Uint8Array(length);
    const bytes = this.bytes;
    for (let i = 0; i < length; i++) bytes[i] = buf[start + i]!;
  }

  /** Whether buf[start, end) begins with exactly the last head, and that head may be reused. */
  matches(buf: Uint8Array, start: number, end: number): boolean {
    const bytes = this.bytes;
    const length = bytes.length;
    if (length === 0 || end - start < length) return false;
    for (let i = 0; i < length; i++) if (buf[start + i] !== bytes[i]) return false;
    return true;
  }
}
