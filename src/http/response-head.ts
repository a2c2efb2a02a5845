// Serialises a response head into a caller-owned buffer: status line, user headers (validated), Date, and
// the framing and connection headers this layer decides itself. No allocation on the common path.
import { DATE_LINE_BYTES, dateCache } from "./date-cache.ts";
import {
  checkFieldName, checkFieldValue, writeBytes, writeDecimal, writeFieldName, writeFieldValue, writeLatin1,
} from "./latin1-writer.ts";
import { reasonPhraseOf } from "./status-reasons.ts";

/** How the body that follows this head is framed. */
export const enum BodyMode {
  /** 1xx, 204, 304, and every response to HEAD: no body bytes may follow. */
  None = 0,
  ContentLength = 1,
  Chunked = 2,
  /** HTTP/1.0 client and unknown length: the body ends when we close the connection. */
  UntilClose = 3,
}

/** What the engine fills in per response; keep one object per connection and mutate it. */
export interface ResponseHeadInput {
  status: number;
  /** null: the canonical phrase for `status`. */
  reason: string | null;
  /** Flat [name, value, name, value, ...]; only the first 2 * headerCount entries are read. */
  headers: readonly string[];
  headerCount: number;
  /** Body bytes, or -1 when unknown (a stream). For HEAD, the length the GET body would have, if known. */
  bodyLength: number;
  requestVersionMinor: 0 | 1;
  requestKeepAlive: boolean;
  requestIsHead: boolean;
}

const enum UserField {
  Pass = 0,
  ContentLength = 1,
  TransferEncoding = 2,
  Connection = 3,
  Date = 4,
}

const CONTENT_LENGTH_PREFIX = "Content-Length: ";
const CHUNKED_LINE = "Transfer-Encoding: chunked\r\n";
const CLOSE_LINE = "Connection: close\r\n";
const KEEP_ALIVE_LINE = "Connection: keep-alive\r\n";
const STATUS_LINE_CACHE_SIZE = 600;
/** Header positions whose last validated "name: value\r\n" bytes are kept (see writeUserHeaders). */
const FIELD_CACHE_SLOTS = 16;
/** Longer lines are not cached. */
const FIELD_CACHE_LINE_MAX = 256;

export class ResponseHeadWriter {
  /** Outputs of the last write: how to send the body, and whether the connection stays open afterwards. */
  bodyMode: BodyMode = BodyMode.None;
  keepAlive = false;

  private readonly statusLines: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(STATUS_LINE_CACHE_SIZE);
  // Scratch state of the user header pass.
  private userDate = false;
  private userClose = false;
  private userContentLength = "";
  // Per header position: the last name and value seen there, and once the same pair came twice in a row,
  // its validated bytes. A handler that answers with the same header set every time then costs a copy per
  // field instead of a validating loop; a value that changes per response costs two reference stores.
  private readonly cachedNames: string[] = new Array<string>(FIELD_CACHE_SLOTS).fill("");
  private readonly cachedValues: string[] = new Array<string>(FIELD_CACHE_SLOTS).fill("");
  private readonly cachedLines: (Uint8Array | null)[] = new Array<Uint8Array | null>(FIELD_CACHE_SLOTS).fill(null);

  /**
   * Writes the head at out[offset] and returns the offset after its final CRLF, or -1 when `out` is too small.
   * Throws TypeError for an invalid status, reason, header name or header value (CR/LF injection included).
   */
  write(out: Uint8Array, offset: number, input: ResponseHeadInput, nowMs?: number): number {
    const status = input.status;
    if (!Number.isInteger(status) || status < 100 || status > 999) throw new TypeError(`Invalid status: ${status}`);
    let next = this.writeStatusLine(out, offset, status, input.reason);
    if (next < 0) return -1;
    next = this.writeUserHeaders(out, next, input);
    if (next < 0) return -1;
    if (!this.userDate) {
      dateCache.refresh(nowMs);
      if (next + DATE_LINE_BYTES > out.length) return -1;
      next = writeBytes(out, next, dateCache.line);
    }
    next = this.writeFraming(out, next, input);
    if (next < 0 || next + 2 > out.length) return -1;
    out[next] = 0x0d;
    out[next + 1] = 0x0a;
    return next + 2;
  }

  private writeStatusLine(out: Uint8Array, offset: number, status: number, reason: string | null): number {
    if (reason !== null) {
      let next = writeLatin1(out, offset, "HTTP/1.1 ");
      if (next >= 0) next = writeDecimal(out, next, status);
      if (next >= 0) next = writeLatin1(out, next, " ");
      if (next >= 0) next = writeFieldValue(out, next, reason);
      return next >= 0 ? writeLatin1(out, next, "\r\n") : -1;
    }
    let line = status < STATUS_LINE_CACHE_SIZE ? this.statusLines[status] : undefined;
    if (line === undefined) {
      const text = `HTTP/1.1 ${status} ${reasonPhraseOf(status)}\r\n`;
      line = new Uint8Array(text.length);
      writeLatin1(line, 0, text);
      if (status < STATUS_LINE_CACHE_SIZE) this.statusLines[status] = line;
    }
    return writeBytes(out, offset, line);
  }

  /** Copies user headers, holding back the ones whose meaning this writer owns. */
  private writeUserHeaders(out: Uint8Array, offset: number, input: ResponseHeadInput): number {
    this.userDate = false;
    this.userClose = false;
    this.userContentLength = "";
    const headers = input.headers;
    const passConnection = input.status === 101; // the upgrade handshake needs "Connection: upgrade" as given
    let next = offset;
    for (let i = 0; i < 2 * input.headerCount; i += 2) {
      const name = headers[i]!;
      const value = headers[i + 1]!;
      const field = userFieldOf(name);
      if (field === UserField.ContentLength) this.userContentLength = value;
      if (field === UserField.Connection) this.userClose ||= hasCloseToken(value);
      if (field === UserField.Date) this.userDate = true;
      const dropped = field === UserField.ContentLength || field === UserField.TransferEncoding ||
        (field === UserField.Connection && !passConnection);
      if (dropped) {
        checkFieldName(name); // dropped fields are still checked: an injection attempt fails wherever it hides
        checkFieldValue(value);
        continue;
      }
      const slot = i >> 1;
      let repeated = false;
      if (field === UserField.Pass && slot < FIELD_CACHE_SLOTS) {
        if (name === this.cachedNames[slot] && value === this.cachedValues[slot]) {
          const line = this.cachedLines[slot];
          if (line !== null) {
            const end = writeBytes(out, next, line); // validated when it was cached
            if (end < 0) return checkRemaining(headers, i, input.headerCount);
            next = end;
            continue;
          }
          repeated = true;
        } else {
          this.cachedNames[slot] = name;
          this.cachedValues[slot] = value;
          this.cachedLines[slot] = null;
        }
      }
      const lineStart = next;
      next = writeFieldName(out, next, name);
      if (next < 0 || next + 2 > out.length) return checkRemaining(headers, i, input.headerCount);
      out[next++] = 0x3a;
      out[next++] = 0x20;
      next = writeFieldValue(out, next, value);
      if (next < 0 || next + 2 > out.length) return checkRemaining(headers, i, input.headerCount);
      out[next++] = 0x0d;
      out[next++] = 0x0a;
      if (repeated && next - lineStart <= FIELD_CACHE_LINE_MAX) this.cachedLines[slot] = out.slice(lineStart, next);
    }
    return next;
  }

  /** Content-Length or Transfer-Encoding, then Connection. Sets bodyMode and keepAlive. */
  private writeFraming(out: Uint8Array, offset: number, input: ResponseHeadInput): number {
    const status = input.status;
    const bodyless = status < 200 || status === 204 || status === 304;
    const length = input.bodyLength;
    let next = offset;
    if (bodyless) {
      this.bodyMode = BodyMode.None;
    } else if (input.requestIsHead) {
      this.bodyMode = BodyMode.None;
      if (length >= 0) next = this.writeContentLength(out, next, length);
      else if (this.userContentLength !== "") next = this.writeUserContentLength(out, next);
    } else if (length >= 0) {
      this.bodyMode = BodyMode.ContentLength;
      next = this.writeContentLength(out, next, length);
    } else if (input.requestVersionMinor === 1) {
      this.bodyMode = BodyMode.Chunked;
      next = writeLatin1(out, next, CHUNKED_LINE);
    } else {
      this.bodyMode = BodyMode.UntilClose;
    }
    if (next < 0) return -1;
    if (status === 101) {
      this.keepAlive = false; // the connection now belongs to the upgraded protocol
      return next;
    }
    this.keepAlive = input.requestKeepAlive && !this.userClose && this.bodyMode !== BodyMode.UntilClose;
    if (!this.keepAlive) return writeLatin1(out, next, CLOSE_LINE);
    return input.requestVersionMinor === 0 ? writeLatin1(out, next, KEEP_ALIVE_LINE) : next;
  }

  private writeContentLength(out: Uint8Array, offset: number, length: number): number {
    if (!Number.isSafeInteger(length)) throw new TypeError(`Invalid body length: ${length}`);
    let next = writeLatin1(out, offset, CONTENT_LENGTH_PREFIX);
    if (next >= 0) next = writeDecimal(out, next, length);
    return next >= 0 ? writeLatin1(out, next, "\r\n") : -1;
  }

  /** HEAD with no known length: pass on the handler's own Content-Length, if it is a plain number. */
  private writeUserContentLength(out: Uint8Array, offset: number): number {
    const text = this.userContentLength;
    for (let i = 0; i < text.length; i++) {
      const unit = text.charCodeAt(i);
      if (unit < 0x30 || unit > 0x39) throw new TypeError(`Invalid Content-Length: ${JSON.stringify(text)}`);
    }
    return this.writeContentLength(out, offset, Number(text));
  }
}

/**
 * `out` is full at header i: validate it and the rest anyway, so an invalid field is a TypeError whatever
 * the buffer size (the caller retries with more room), then report "no room" (-1).
 */
function checkRemaining(headers: readonly string[], i: number, headerCount: number): number {
  for (let j = i; j < 2 * headerCount; j += 2) {
    checkFieldName(headers[j]!);
    checkFieldValue(headers[j + 1]!);
  }
  return -1;
}

/** Classifies a user header name without allocating: length first, then a case-folded compare. */
function userFieldOf(name: string): UserField {
  switch (name.length) {
    case 4: return equalsLower(name, "date") ? UserField.Date : UserField.Pass;
    case 10: return equalsLower(name, "connection") ? UserField.Connection : UserField.Pass;
    case 14: return equalsLower(name, "content-length") ? UserField.ContentLength : UserField.Pass;
    case 17: return equalsLower(name, "transfer-encoding") ? UserField.TransferEncoding : UserField.Pass;
    default: return UserField.Pass;
  }
}

/** `lower` is lowercase letters and '-'; `| 0x20` folds ASCII upper case (and maps nothing else onto them). */
function equalsLower(text: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((text.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

function hasCloseToken(value: string): boolean {
  for (const token of value.split(",")) if (token.trim().toLowerCase() === "close") return true;
  return false;
}
