// Meaning of the header fields that decide framing and connection handling: Content-Length,
// Transfer-Encoding, Connection, Host, Expect, Upgrade. Works on validated value bytes; no strings.
import { COMMA, equalsIgnoreCase, HOST, HTAB, SEMICOLON, SP, TOKEN } from "./_tables.ts";
import type { HttpErrorCode } from "./errors.ts";

/** Tags the intern table attaches to header names (compared without case). */
export const enum FieldKind {
  Other = 0,
  ContentLength = 1,
  TransferEncoding = 2,
  Connection = 3,
  Host = 4,
  Expect = 5,
  Upgrade = 6,
}

export function fieldKindOf(name: string): number {
  switch (name.length) {
    case 4: return name.toLowerCase() === "host" ? FieldKind.Host : FieldKind.Other;
    case 6: return name.toLowerCase() === "expect" ? FieldKind.Expect : FieldKind.Other;
    case 7: return name.toLowerCase() === "upgrade" ? FieldKind.Upgrade : FieldKind.Other;
    case 10: return name.toLowerCase() === "connection" ? FieldKind.Connection : FieldKind.Other;
    case 14: return name.toLowerCase() === "content-length" ? FieldKind.ContentLength : FieldKind.Other;
    case 17: return name.toLowerCase() === "transfer-encoding" ? FieldKind.TransferEncoding : FieldKind.Other;
    default: return FieldKind.Other;
  }
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Accumulates what the framing fields said while the head is parsed; reset per request. */
export class HeadFields {
  contentLength = -1;
  hostCount = 0;
  transferEncodingSeen = false;
  chunkedSeen = false;
  chunkedLast = false;
  unknownCodingSeen = false;
  connectionClose = false;
  connectionKeepAlive = false;
  connectionUpgrade = false;
  upgradeSeen = false;
  expectContinue = false;

  reset(): void {
    this.contentLength = -1;
    this.hostCount = 0;
    this.transferEncodingSeen = false;
    this.chunkedSeen = false;
    this.chunkedLast = false;
    this.unknownCodingSeen = false;
    this.connectionClose = false;
    this.connectionKeepAlive = false;
    this.connectionUpgrade = false;
    this.upgradeSeen = false;
    this.expectContinue = false;
  }

  /** Interprets one field whose trimmed value is buf[start, end). Returns an error code or null. */
  apply(kind: number, buf: Uint8Array, start: number, end: number): HttpErrorCode | null {
    switch (kind) {
      case FieldKind.ContentLength: return this.applyContentLength(buf, start, end);
      case FieldKind.TransferEncoding: return this.applyTransferEncoding(buf, start, end);
      case FieldKind.Connection: this.applyConnection(buf, start, end); return null;
      case FieldKind.Host: return this.applyHost(buf, start, end);
      case FieldKind.Expect: this.expectContinue ||= equalsIgnoreCase(buf, start, end, "100-continue"); return null;
      case FieldKind.Upgrade: this.upgradeSeen = true; return null;
      default: return null;
    }
  }

  /** Digits only; a second Content-Length field, even an identical one, is rejected (as llhttp and nginx do). */
  private applyContentLength(buf: Uint8Array, start: number, end: number): HttpErrorCode | null {
    if (this.contentLength !== -1) return "DUPLICATE_CONTENT_LENGTH";
    if (start === end) return "INVALID_CONTENT_LENGTH";
    let value = 0;
    for (let i = start; i < end; i++) {
      const digit = buf[i]! - 0x30;
      if (digit < 0 || digit > 9) return "INVALID_CONTENT_LENGTH";
      value = value * 10 + digit;
      if (value > MAX_SAFE) return "INVALID_CONTENT_LENGTH";
    }
    this.contentLength = value;
    return null;
  }

  /** transfer-coding list: `token [; params]` elements joined by commas; empty elements are rejected. */
  private applyTransferEncoding(buf: Uint8Array, start: number, end: number): HttpErrorCode | null {
    this.transferEncodingSeen = true;
    let i = start;
    for (;;) {
      while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
      const tokenStart = i;
      while (i < end && TOKEN[buf[i]!] === 1) i++;
      if (i === tokenStart) return "INVALID_TRANSFER_ENCODING";
      const chunked = equalsIgnoreCase(buf, tokenStart, i, "chunked");
      while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
      if (i < end && buf[i] === SEMICOLON) {
        if (chunked) return "INVALID_TRANSFER_ENCODING"; // chunked takes no parameters
        while (i < end && buf[i] !== COMMA) i++; // parameters of a coding we answer 501 to anyway
      }
      if (chunked) {
        if (this.chunkedSeen) return "DUPLICATE_CHUNKED";
        this.chunkedSeen = true;
      } else {
        this.unknownCodingSeen = true; // chunked is the only coding we decode
      }
      this.chunkedLast = chunked;
      if (i === end) return null;
      if (buf[i] !== COMMA) return "INVALID_TRANSFER_ENCODING";
      i++;
    }
  }

  /** Connection options we act on: close, keep-alive, upgrade. Other options are ignored. */
  private applyConnection(buf: Uint8Array, start: number, end: number): void {
    let i = start;
    while (i < end) {
      while (i < end && (buf[i] === SP || buf[i] === HTAB || buf[i] === COMMA)) i++;
      const tokenStart = i;
      while (i < end && buf[i] !== COMMA && buf[i] !== SP && buf[i] !== HTAB) i++;
      if (equalsIgnoreCase(buf, tokenStart, i, "close")) this.connectionClose = true;
      else if (equalsIgnoreCase(buf, tokenStart, i, "keep-alive")) this.connectionKeepAlive = true;
      else if (equalsIgnoreCase(buf, tokenStart, i, "upgrade")) this.connectionUpgrade = true;
    }
  }

  private applyHost(buf: Uint8Array, start: number, end: number): HttpErrorCode | null {
    if (++this.hostCount > 1) return "DUPLICATE_HOST";
    for (let i = start; i < end; i++) if (HOST[buf[i]!] !== 1) return "INVALID_HOST";
    return null;
  }

  /** Cross-field rules, checked once the whole head is in. */
  finish(versionMinor: number): HttpErrorCode | null {
    if (versionMinor === 1 && this.hostCount === 0) return "MISSING_HOST";
    if (!this.transferEncodingSeen) return null;
    if (this.contentLength !== -1) return "CONTENT_LENGTH_WITH_TRANSFER_ENCODING";
    if (versionMinor === 0) return "TRANSFER_ENCODING_IN_HTTP10";
    if (!this.chunkedLast) return "CHUNKED_NOT_FINAL";
    if (this.unknownCodingSeen) return "UNKNOWN_TRANSFER_CODING";
    return null;
  }
}
