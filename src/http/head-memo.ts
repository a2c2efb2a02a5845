// A keep-alive client often sends the same head again and again (API polling, health checks, a
// proxy's keep-alive pool, load generators). Each connection keeps the bytes of its last bodiless
// head with what the parser made of them; when the next head is the same bytes, that result is used
// again: one byte compare instead of a parse. Same bytes give the same parse, so nothing about
// strictness changes (docs/http-parsing.md).
import type { HeadParser } from "./parser.ts";

/** What dispatching a request needs from a parsed head; HeadParser and HeadMemo both provide it. */
export interface ParsedHead {
  readonly method: string;
  readonly target: string;
  readonly host: string | null;
  readonly versionMinor: 0 | 1;
  /** Bytes from the head's start through its final CRLF. */
  readonly headLength: number;
  readonly contentLength: number;
  readonly chunked: boolean;
  readonly keepAlive: boolean;
  readonly expectContinue: boolean;
}

/** Longer heads are parsed every time (and cost no memory per connection). */
export const MEMO_HEAD_BYTES_MAX = 1024;

export class HeadMemo implements ParsedHead {
  method = "";
  target = "";
  host: string | null = null;
  versionMinor: 0 | 1 = 1;
  headLength = 0;
  contentLength = -1;
  readonly chunked = false;
  keepAlive = false;
  readonly expectContinue = false;
  /** Flat [name, value, ...] as handed to the request; shared by every request made from this memo. */
  headers: string[] = [];
  private bytes = new Uint8Array(0);

  /** Whether the parser's last head (at buf[start]) can be reused: no body, nothing to answer first. */
  static accepts(parser: HeadParser): boolean {
    return !parser.chunked && parser.contentLength <= 0 && !parser.expectContinue && !parser.upgrade &&
      parser.headLength <= MEMO_HEAD_BYTES_MAX;
  }

  /** Remembers the parser's last head, whose bytes start at buf[start]; `headers` is that head's flat list. */
  remember(parser: HeadParser, headers: string[], buf: Uint8Array, start: number): void {
    const length = parser.headLength;
    if (this.bytes.length !== length) this.bytes = new Uint8Array(length);
    const bytes = this.bytes;
    for (let i = 0; i < length; i++) bytes[i] = buf[start + i]!;
    this.method = parser.method;
    this.target = parser.target;
    this.host = parser.host;
    this.versionMinor = parser.versionMinor;
    this.headLength = length;
    this.contentLength = parser.contentLength;
    this.keepAlive = parser.keepAlive;
    this.headers = headers;
  }

  /** Whether buf[start, end) begins with exactly the remembered head. */
  matches(buf: Uint8Array, start: number, end: number): boolean {
    const bytes = this.bytes;
    const length = bytes.length;
    if (length === 0 || end - start < length) return false;
    for (let i = 0; i < length; i++) if (buf[start + i] !== bytes[i]) return false;
    return true;
  }
}
