// Strict, incremental HTTP/1.1 request-head parser (RFC 9112 §2-§6): bytes in, method/target/headers
// and framing decisions out. No FFI, no sockets, no allocation per call beyond the strings it returns.
// Every strictness decision is listed in docs/http-parsing.md.
import { FieldKind, fieldKindOf, HeadFields } from "./_head-fields.ts";
import { hashStep, InternTable, Latin1Decoder, SpanSnapshot } from "./_strings.ts";
import { COLON, CR, FIELD_VALUE, HOST, HTAB, LF, SP, TARGET, TOKEN } from "./_tables.ts";
import { HTTP_ERRORS, type HttpErrorCode } from "./errors.ts";

export interface HeadLimits {
  /** Bytes from the first byte of the head through its final CRLF (leading empty lines included). */
  maxHeaderBytes: number;
  /** Header fields per request. */
  maxHeaderCount: number;
}

export const DEFAULT_HEAD_LIMITS: HeadLimits = { maxHeaderBytes: 16_384, maxHeaderCount: 100 };

export const enum ParseStatus {
  Incomplete = 0,
  Done = 1,
  Error = -1,
}

/** Where the parser stopped when it returned Incomplete; it resumes there on the next call. */
const enum Phase {
  LeadingLines = 0,
  RequestLine = 1,
  HeaderLines = 2,
}

/** Line-scan results other than "next line starts at offset N" (offsets are always >= 0). */
const NEED_MORE = -1;
const FAILED = -2;

const COMMON_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
const COMMON_HEADER_NAMES = [
  "Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Connection", "Content-Length",
  "Content-Type", "Transfer-Encoding", "Cookie", "Authorization", "Cache-Control", "Expect", "Upgrade",
  "Origin", "Referer", "If-None-Match", "If-Modified-Since", "X-Forwarded-For", "X-Forwarded-Proto",
  "host", "user-agent", "accept", "accept-encoding", "accept-language", "connection", "content-length",
  "content-type", "transfer-encoding", "cookie", "authorization", "cache-control", "expect", "upgrade",
];

// Intern tables are per parser, so a worker's parsers never contend and their size is fixed.
const NAME_SLOT_COUNT = 256;
const NAME_KEY_BYTES_MAX = 32;
const VALUE_SLOT_COUNT = 256;
const VALUE_KEY_BYTES_MAX = 64;
const METHOD_SLOT_COUNT = 32;
const METHOD_KEY_BYTES_MAX = 16;

export class HeadParser {
  // Results of the last Done (partially filled while Incomplete; only trust them after Done).
  method = "";
  target = "";
  versionMinor: 0 | 1 = 1;
  /** Bytes from `start` through the CRLF that ends the head; the body (if any) starts at start + headLength. */
  headLength = 0;
  headerCount = 0;
  /** Flat [name, value, name, value, ...]; only the first 2 * headerCount entries belong to this request. */
  readonly headers: string[];
  /** -1 when absent. */
  contentLength = -1;
  chunked = false;
  keepAlive = false;
  expectContinue = false;
  upgrade = false;
  host: string | null = null;
  // Results of the last Error.
  errorStatus = 0;
  errorCode: HttpErrorCode | "" = "";
  errorReason = "";
  /** Offset of the offending byte, relative to `start`. */
  errorOffset = 0;

  private readonly maxHeaderBytes: number;
  private readonly maxHeaderCount: number;
  private readonly fields = new HeadFields();
  private readonly decoder = new Latin1Decoder();
  private readonly names: InternTable;
  private readonly methods: InternTable;
  private readonly values: InternTable;
  // Resume state for Incomplete.
  private phase = Phase.LeadingLines;
  private resumeOffset = -1;
  private resumeBuf: Uint8Array | null = null;
  private resumeStart = -1;
  /**
   * Copy of buf[resumeStart, resumeOffset): the bytes the resume state was derived from. The
   * server reads every connection into one shared buffer at offset 0, so "same buf and start" alone does
   * not mean "same bytes": another connection's head may have been read there since our Incomplete.
   */
  private readonly savedPrefix: SpanSnapshot;

  constructor(limits: HeadLimits = DEFAULT_HEAD_LIMITS) {
    if (!(limits.maxHeaderBytes > 0) || !(limits.maxHeaderCount >= 0)) throw new RangeError("invalid HeadLimits");
    this.maxHeaderBytes = limits.maxHeaderBytes;
    this.maxHeaderCount = limits.maxHeaderCount;
    this.headers = new Array<string>(2 * limits.maxHeaderCount).fill("");
    this.savedPrefix = new SpanSnapshot(limits.maxHeaderBytes);
    this.names = new InternTable(NAME_SLOT_COUNT, NAME_KEY_BYTES_MAX, this.decoder, fieldKindOf);
    this.methods = new InternTable(METHOD_SLOT_COUNT, METHOD_KEY_BYTES_MAX, this.decoder, () => 0);
    this.values = new InternTable(VALUE_SLOT_COUNT, VALUE_KEY_BYTES_MAX, this.decoder, () => 0);
    for (const name of COMMON_HEADER_NAMES) this.names.seed(name);
    for (const method of COMMON_METHODS) this.methods.seed(method);
  }

  /** Forgets a partial head. Call it before reusing this parser for bytes that do not continue the last Incomplete call. */
  reset(): void {
    this.resumeBuf = null;
  }

  /**
   * Parses the head that starts at buf[start], with bytes valid up to `end`.
   * Incomplete: call again with the same buf and start and a larger end; completed lines are not parsed
   * again, only compared with a saved copy. If those bytes changed (the buffer now holds another
   * connection's head), the parser starts over, so forgetting reset() cannot mix two heads.
   */
  parse(buf: Uint8Array, start: number, end: number): ParseStatus {
    if (buf !== this.resumeBuf || start !== this.resumeStart || end < this.resumeOffset || !this.savedPrefix.matches(buf, start)) {
      this.begin(buf, start);
    }
    const limit = end - start > this.maxHeaderBytes ? start + this.maxHeaderBytes : end;
    let offset = this.resumeOffset;
    if (this.phase === Phase.LeadingLines) {
      offset = this.skipLeadingLines(buf, offset, limit);
      if (offset < 0) return this.stop(offset, end, limit);
      this.resumeOffset = offset;
      this.phase = Phase.RequestLine;
    }
    if (this.phase === Phase.RequestLine) {
      offset = this.parseRequestLine(buf, offset, limit);
      if (offset < 0) return this.stop(offset, end, limit);
      this.resumeOffset = offset;
      this.phase = Phase.HeaderLines;
    }
    for (;;) {
      if (offset >= limit) return this.stop(NEED_MORE, end, limit);
      if (buf[offset] === CR) return this.finishHead(buf, offset, end, limit);
      offset = this.parseHeaderLine(buf, offset, limit);
      if (offset < 0) return this.stop(offset, end, limit);
      this.resumeOffset = offset;
    }
  }

  private begin(buf: Uint8Array, start: number): void {
    this.resumeBuf = buf;
    this.resumeStart = start;
    this.resumeOffset = start;
    this.savedPrefix.length = 0;
    this.phase = Phase.LeadingLines;
    this.method = "";
    this.target = "";
    this.versionMinor = 1;
    this.headLength = 0;
    this.headerCount = 0;
    this.contentLength = -1;
    this.chunked = false;
    this.keepAlive = false;
    this.expectContinue = false;
    this.upgrade = false;
    this.host = null;
    this.errorStatus = 0;
    this.errorCode = "";
    this.errorReason = "";
    this.errorOffset = 0;
    this.fields.reset();
  }

  /** Turns a scan result into a status: more bytes may still fit under the limit, or the head is too large. */
  private stop(result: number, end: number, limit: number): ParseStatus {
    if (result === FAILED) return ParseStatus.Error;
    if (limit < end) return this.fail("HEADERS_TOO_LARGE", limit);
    this.savedPrefix.extend(this.resumeBuf!, this.resumeStart, this.resumeOffset - this.resumeStart);
    return ParseStatus.Incomplete;
  }

  private fail(code: HttpErrorCode, offset: number, reason?: string): ParseStatus {
    const info = HTTP_ERRORS[code];
    this.errorStatus = info.status;
    this.errorCode = code;
    this.errorReason = reason ?? info.reason;
    this.errorOffset = offset - this.resumeStart;
    this.resumeBuf = null; // the next call starts a fresh head
    return ParseStatus.Error;
  }

  /** RFC 9112 §2.2: empty lines (CRLF only) before the request line are skipped; they count toward headLength. */
  private skipLeadingLines(buf: Uint8Array, offset: number, limit: number): number {
    while (offset < limit) {
      const byte = buf[offset]!;
      if (byte === LF) return this.failLine("CR_EXPECTED", offset);
      if (byte !== CR) return offset;
      if (offset + 1 >= limit) return NEED_MORE;
      if (buf[offset + 1] !== LF) return this.failLine("LF_EXPECTED", offset + 1);
      offset += 2;
    }
    return NEED_MORE;
  }

  private failLine(code: HttpErrorCode, offset: number, reason?: string): number {
    this.fail(code, offset, reason);
    return FAILED;
  }

  /** method SP request-target SP HTTP-version CRLF, single spaces only (RFC 9112 §3). */
  private parseRequestLine(buf: Uint8Array, lineStart: number, limit: number): number {
    let offset = lineStart;
    let hash = 0;
    while (offset < limit && TOKEN[buf[offset]!] === 1) hash = hashStep(hash, buf[offset++]!);
    if (offset >= limit) return NEED_MORE;
    if (buf[offset] !== SP || offset === lineStart) return this.failLine("INVALID_METHOD", offset);
    const methodEnd = offset++;
    const targetStart = offset;
    while (offset < limit && TARGET[buf[offset]!] === 1) offset++;
    if (offset >= limit) return NEED_MORE;
    if (buf[offset] !== SP || offset === targetStart) {
      if (buf[offset] === CR || buf[offset] === LF) return this.failLine("INVALID_VERSION", offset, "Request line has no HTTP version");
      return this.failLine("INVALID_URL", offset);
    }
    const targetEnd = offset++;
    // Origin-form ("/...") needs no further check, except that CONNECT takes authority-form only.
    if (buf[targetStart] !== SLASH || (methodEnd - lineStart === 7 && buf[lineStart] === 0x43)) {
      const reason = targetFormError(buf, lineStart, methodEnd, targetStart, targetEnd);
      if (reason !== null) return this.failLine("INVALID_URL", targetStart, reason);
    }
    offset = this.parseVersion(buf, offset, limit);
    if (offset < 0) return offset;
    this.method = this.methods.lookup(buf, lineStart, methodEnd, hash);
    this.target = this.values.lookup(buf, targetStart, targetEnd, spanHash(buf, targetStart, targetEnd));
    return offset;
  }

  /** "HTTP/" DIGIT "." DIGIT CRLF; well-formed versions other than 1.0 and 1.1 get 505. */
  private parseVersion(buf: Uint8Array, versionStart: number, limit: number): number {
    for (let i = 0; i < 10; i++) {
      const offset = versionStart + i;
      if (offset >= limit) return NEED_MORE;
      const byte = buf[offset]!;
      const ok = i < 5 ? byte === VERSION_PREFIX[i] : i === 6 ? byte === 0x2e : i < 8 ? byte >= 0x30 && byte <= 0x39 : true;
      if (!ok) return this.failLine("INVALID_VERSION", offset);
      if (i === 8 && byte !== CR) {
        return byte === LF ? this.failLine("CR_EXPECTED", offset) : this.failLine("INVALID_VERSION", offset);
      }
      if (i === 9 && byte !== LF) return this.failLine("LF_EXPECTED", offset);
    }
    const major = buf[versionStart + 5]!;
    const minor = buf[versionStart + 7]!;
    if (major !== 0x31 || minor > 0x31) return this.failLine("VERSION_NOT_SUPPORTED", versionStart);
    this.versionMinor = minor === 0x31 ? 1 : 0;
    return versionStart + 10;
  }

  /** field-name ":" OWS field-value OWS CRLF (RFC 9112 §5). Returns the offset of the next line. */
  private parseHeaderLine(buf: Uint8Array, lineStart: number, limit: number): number {
    let offset = lineStart;
    let hash = 0;
    while (offset < limit && TOKEN[buf[offset]!] === 1) hash = hashStep(hash, buf[offset++]!);
    if (offset >= limit) return NEED_MORE;
    const nameEnd = offset;
    if (buf[offset] !== COLON || offset === lineStart) return this.failHeaderName(buf, offset, lineStart);
    if (this.headerCount >= this.maxHeaderCount) return this.failLine("TOO_MANY_HEADERS", lineStart);
    offset++;
    while (offset < limit && (buf[offset] === SP || buf[offset] === HTAB)) offset++;
    const valueStart = offset;
    while (offset < limit && FIELD_VALUE[buf[offset]!] === 1) offset++;
    if (offset >= limit) return NEED_MORE;
    if (buf[offset] !== CR) {
      return buf[offset] === LF ? this.failLine("CR_EXPECTED", offset) : this.failLine("INVALID_HEADER_VALUE", offset);
    }
    if (offset + 1 >= limit) return NEED_MORE;
    if (buf[offset + 1] !== LF) return this.failLine("LF_EXPECTED", offset + 1);
    let valueEnd = offset;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
    if (!this.storeHeader(buf, lineStart, nameEnd, hash, valueStart, valueEnd)) return FAILED;
    return offset + 2;
  }

  private failHeaderName(buf: Uint8Array, offset: number, lineStart: number): number {
    const byte = buf[offset];
    if (offset === lineStart && (byte === SP || byte === HTAB)) {
      return this.failLine("OBSOLETE_LINE_FOLDING", offset, this.headerCount === 0
        ? "Whitespace-preceded line after the request line"
        : "Line folding (obs-fold) is not accepted");
    }
    if (byte === LF) return this.failLine("CR_EXPECTED", offset);
    if (byte === SP || byte === HTAB) return this.failLine("INVALID_HEADER_TOKEN", offset, "Whitespace between header name and colon");
    if (byte === CR) return this.failLine("INVALID_HEADER_TOKEN", offset, "Header line without a colon");
    return this.failLine("INVALID_HEADER_TOKEN", offset);
  }

  private storeHeader(buf: Uint8Array, nameStart: number, nameEnd: number, hash: number, valueStart: number, valueEnd: number): boolean {
    const name = this.names.lookup(buf, nameStart, nameEnd, hash);
    const kind = this.names.tag;
    const value = valueStart === valueEnd ? "" : this.values.lookup(buf, valueStart, valueEnd, spanHash(buf, valueStart, valueEnd));
    const slot = 2 * this.headerCount++;
    this.headers[slot] = name;
    this.headers[slot + 1] = value;
    if (kind === FieldKind.Other) return true;
    if (kind === FieldKind.Host) this.host = value;
    const code = this.fields.apply(kind, buf, valueStart, valueEnd);
    if (code === null) return true;
    this.fail(code, nameStart);
    return false;
  }

  /** The empty line: check CRLF, then the cross-field rules, then publish framing and connection results. */
  private finishHead(buf: Uint8Array, offset: number, end: number, limit: number): ParseStatus {
    if (offset + 1 >= limit) return this.stop(NEED_MORE, end, limit);
    if (buf[offset + 1] !== LF) return this.fail("LF_EXPECTED", offset + 1);
    const fields = this.fields;
    const code = fields.finish(this.versionMinor);
    if (code !== null) return this.fail(code, offset);
    this.headLength = offset + 2 - this.resumeStart;
    this.contentLength = fields.contentLength;
    this.chunked = fields.chunkedSeen;
    this.keepAlive = fields.connectionClose ? false : this.versionMinor === 1 || fields.connectionKeepAlive;
    // RFC 9110 §10.1.1 and §7.8: Expect and Upgrade in an HTTP/1.0 request are ignored.
    this.expectContinue = this.versionMinor === 1 && fields.expectContinue;
    this.upgrade = this.versionMinor === 1 && fields.upgradeSeen && fields.connectionUpgrade;
    this.resumeBuf = null; // the next call starts a fresh head
    return ParseStatus.Done;
  }
}

/** A cheap hash for values: length and three sampled bytes; the intern table compares every byte on a hit. */
function spanHash(buf: Uint8Array, start: number, end: number): number {
  const length = end - start;
  return (Math.imul(length, 0x9e3779b1) ^ (buf[start]! << 16) ^ (buf[end - 1]! << 8) ^ buf[start + (length >> 1)]!) | 0;
}

const VERSION_PREFIX = new Uint8Array([0x48, 0x54, 0x54, 0x50, 0x2f]); // "HTTP/"
const SLASH = 0x2f;
const ASTERISK = 0x2a;
const QUESTION_MARK = 0x3f;
const NUMBER_SIGN = 0x23;

/**
 * RFC 9112 §3.2: a target that is not origin-form (those start with "/", the caller's fast path) must be
 * authority-form for CONNECT, "*" for OPTIONS, or absolute-form `scheme "://" ...` for any other method.
 * llhttp and nginx reject the rest too; hyper does not. Returns a reason, or null when the form is right.
 */
function targetFormError(buf: Uint8Array, methodStart: number, methodEnd: number, targetStart: number, targetEnd: number): string | null {
  if (spanEquals(buf, methodStart, methodEnd, "CONNECT")) {
    // authority-form = uri-host ":" port (§3.2.3); uri-host bytes as in the Host field.
    let colon = -1;
    for (let i = targetStart; i < targetEnd; i++) {
      if (HOST[buf[i]!] !== 1) return "CONNECT target is not host:port";
      if (buf[i] === COLON) colon = i;
    }
    if (colon <= targetStart || colon === targetEnd - 1) return "CONNECT target is not host:port";
    for (let i = colon + 1; i < targetEnd; i++) if (buf[i]! < 0x30 || buf[i]! > 0x39) return "CONNECT target is not host:port";
    return null;
  }
  if (buf[targetStart] === SLASH) return null;
  if (buf[targetStart] === ASTERISK && targetEnd - targetStart === 1) {
    return spanEquals(buf, methodStart, methodEnd, "OPTIONS") ? null : "Asterisk-form target with a method other than OPTIONS";
  }
  // absolute-form: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1), then "://".
  let i = targetStart;
  if (!isAlpha(buf[i]!)) return "Request target is not origin-form or absolute-form";
  while (i < targetEnd && (isAlpha(buf[i]!) || (buf[i]! >= 0x30 && buf[i]! <= 0x39) || buf[i] === 0x2b || buf[i] === 0x2d || buf[i] === 0x2e)) i++;
  if (targetEnd - i < 3 || buf[i] !== COLON || buf[i + 1] !== SLASH || buf[i + 2] !== SLASH) {
    return "Request target is not origin-form or absolute-form";
  }
  // The authority stands in for Host (RFC 9112 §3.2.2), so it gets Host's byte rules: no userinfo
  // (RFC 9110 §4.2.4 says to treat it as an error), and it may not be empty.
  const authorityStart = i + 3;
  for (i = authorityStart; i < targetEnd && buf[i] !== SLASH && buf[i] !== QUESTION_MARK && buf[i] !== NUMBER_SIGN; i++) {
    if (HOST[buf[i]!] !== 1) return "Invalid character in the authority of an absolute-form target";
  }
  return i === authorityStart ? "Absolute-form target with an empty authority" : null;
}

function isAlpha(byte: number): boolean {
  return (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
}

/** Case-sensitive compare of a span with an ASCII word (methods are case-sensitive, RFC 9110 §9.1). */
function spanEquals(buf: Uint8Array, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (buf[start + i] !== word.charCodeAt(i)) return false;
  return true;
}
