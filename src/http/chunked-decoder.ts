// Incremental decoder for the chunked transfer coding (RFC 9112 §7.1): feed it any slices of the body,
// down to one byte at a time; it reports where the data bytes are and never copies them.
// Chunk extensions and trailer fields are validated and then dropped.
import { CR, FIELD_VALUE, HEX_VALUE, HTAB, LF, QDTEXT, SEMICOLON, SP, TOKEN } from "./_tables.ts";
import { HTTP_ERRORS, type HttpErrorCode } from "./errors.ts";
import { ParseStatus } from "./parser.ts";

export interface ChunkedLimits {
  /** Bytes of chunk extensions (from ";" to the CR) allowed on one chunk-size line. */
  maxChunkExtensionBytes: number;
  /** Bytes of the trailer section, its final CRLF included. */
  maxTrailerBytes: number;
  maxTrailerCount: number;
  /** Data spans one decode call may report before it returns early. */
  spanCountMax: number;
}

export const DEFAULT_CHUNKED_LIMITS: ChunkedLimits = {
  maxChunkExtensionBytes: 4096,
  maxTrailerBytes: 8192,
  maxTrailerCount: 32,
  spanCountMax: 64,
};

const enum State {
  SizeStart, Size, ExtensionNameStart, ExtensionName, ExtensionValueStart, ExtensionToken,
  ExtensionQuoted, ExtensionQuotedPair, ExtensionAfterQuoted, SizeLf,
  Data, DataCr, DataLf,
  TrailerLineStart, TrailerName, TrailerValue, TrailerLf, FinalLf,
  Done, Failed,
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const HEX_DIGITS_MAX = 16;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;

export class ChunkedDecoder {
  /** Data spans found by the last decode call: [start0, end0, start1, end1, ...] as offsets into its buf. */
  readonly spans: Uint32Array;
  spanCount = 0;
  /** Incomplete while more body is expected, Done after the final CRLF, Error after a violation. */
  status: ParseStatus = ParseStatus.Incomplete;
  /** Sum of the chunk sizes announced so far. */
  bodyBytes = 0;
  errorStatus = 0;
  errorCode: HttpErrorCode | "" = "";
  errorReason = "";

  private readonly limits: ChunkedLimits;
  private state = State.SizeStart;
  private chunkRemaining = 0;
  private sizeDigits = 0;
  private extensionBytes = 0;
  private trailerBytes = 0;
  private trailerCount = 0;

  constructor(private readonly maxBodyBytes: number, limits: ChunkedLimits = DEFAULT_CHUNKED_LIMITS) {
    if (!(maxBodyBytes >= 0) || !(limits.spanCountMax > 0)) throw new RangeError("invalid ChunkedDecoder limits");
    this.limits = limits;
    this.spans = new Uint32Array(2 * limits.spanCountMax);
  }

  get done(): boolean {
    return this.status === ParseStatus.Done;
  }

  /** Prepares for the next body. */
  reset(): void {
    this.status = ParseStatus.Incomplete;
    this.state = State.SizeStart;
    this.spanCount = 0;
    this.bodyBytes = 0;
    this.chunkRemaining = 0;
    this.sizeDigits = 0;
    this.extensionBytes = 0;
    this.trailerBytes = 0;
    this.trailerCount = 0;
    this.errorStatus = 0;
    this.errorCode = "";
    this.errorReason = "";
  }

  /**
   * Consumes bytes from buf[start, end) and returns how many it consumed. It stops early only when the body
   * ends (the rest belongs to the next request), on an error, or when `spans` is full (call again from there).
   */
  decode(buf: Uint8Array, start: number, end: number): number {
    this.spanCount = 0;
    let offset = start;
    while (offset < end && this.state < State.Done) {
      if (this.state === State.Data) {
        if (this.spanCount === this.limits.spanCountMax) break;
        const take = Math.min(this.chunkRemaining, end - offset);
        this.spans[2 * this.spanCount] = offset;
        this.spans[2 * this.spanCount + 1] = offset + take;
        this.spanCount++;
        offset += take;
        this.chunkRemaining -= take;
        if (this.chunkRemaining === 0) this.state = State.DataCr;
        continue;
      }
      const byte = buf[offset]!;
      if (this.state <= State.SizeLf) this.stepSizeLine(byte);
      else if (this.state <= State.DataLf) this.stepDataEnd(byte);
      else this.stepTrailer(byte);
      offset++;
    }
    if (this.state === State.Failed) return offset - 1 - start;
    return offset - start;
  }

  private fail(code: HttpErrorCode): void {
    const info = HTTP_ERRORS[code];
    this.errorStatus = info.status;
    this.errorCode = code;
    this.errorReason = info.reason;
    this.status = ParseStatus.Error;
    this.state = State.Failed;
  }

  /** chunk-size [chunk-ext] CRLF. No whitespace anywhere on the line (as llhttp without its leniency flags). */
  private stepSizeLine(byte: number): void {
    switch (this.state) {
      case State.SizeStart:
      case State.Size: return this.stepSize(byte);
      case State.SizeLf: return this.stepSizeLf(byte);
      default: return this.stepExtension(byte);
    }
  }

  private stepSize(byte: number): void {
    const digit = HEX_VALUE[byte]!;
    if (digit !== 0xff) {
      if (++this.sizeDigits > HEX_DIGITS_MAX) return this.fail("CHUNK_SIZE_OVERFLOW");
      const size = this.chunkRemaining * 16 + digit;
      if (size > MAX_SAFE) return this.fail("CHUNK_SIZE_OVERFLOW");
      this.chunkRemaining = size;
      this.state = State.Size;
      return;
    }
    if (this.state === State.SizeStart) return this.fail("INVALID_CHUNK_SIZE");
    if (byte !== CR && byte !== SEMICOLON) return this.fail(byte === LF ? "CR_EXPECTED" : "INVALID_CHUNK_SIZE");
    this.bodyBytes += this.chunkRemaining;
    if (this.bodyBytes > this.maxBodyBytes) return this.fail("BODY_TOO_LARGE");
    this.extensionBytes = 0;
    this.state = byte === CR ? State.SizeLf : State.ExtensionNameStart;
  }

  private stepSizeLf(byte: number): void {
    if (byte !== LF) return this.fail("LF_EXPECTED");
    this.sizeDigits = 0;
    this.state = this.chunkRemaining === 0 ? State.TrailerLineStart : State.Data;
  }

  /** chunk-ext = *( ";" ext-name [ "=" ( token / quoted-string ) ] ), validated and ignored. */
  private stepExtension(byte: number): void {
    if (++this.extensionBytes > this.limits.maxChunkExtensionBytes) return this.fail("CHUNK_EXTENSIONS_TOO_LARGE");
    switch (this.state) {
      case State.ExtensionNameStart:
        if (TOKEN[byte] !== 1) return this.fail("INVALID_CHUNK_EXTENSION");
        this.state = State.ExtensionName;
        return;
      case State.ExtensionName:
        if (TOKEN[byte] === 1) return;
        if (byte === EQUALS) this.state = State.ExtensionValueStart;
        else this.endExtension(byte);
        return;
      case State.ExtensionValueStart:
        if (byte === DQUOTE) this.state = State.ExtensionQuoted;
        else if (TOKEN[byte] === 1) this.state = State.ExtensionToken;
        else this.fail("INVALID_CHUNK_EXTENSION");
        return;
      case State.ExtensionToken:
        if (TOKEN[byte] !== 1) this.endExtension(byte);
        return;
      case State.ExtensionQuoted:
        if (byte === DQUOTE) this.state = State.ExtensionAfterQuoted;
        else if (byte === BACKSLASH) this.state = State.ExtensionQuotedPair;
        else if (QDTEXT[byte] !== 1) this.fail("INVALID_CHUNK_EXTENSION");
        return;
      case State.ExtensionQuotedPair:
        // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
        if (byte === HTAB || (byte >= SP && byte !== 0x7f)) this.state = State.ExtensionQuoted;
        else this.fail("INVALID_CHUNK_EXTENSION");
        return;
      default: // State.ExtensionAfterQuoted
        this.endExtension(byte);
    }
  }

  /** After an extension name or value: another extension, or the end of the line. */
  private endExtension(byte: number): void {
    if (byte === SEMICOLON) this.state = State.ExtensionNameStart;
    else if (byte === CR) this.state = State.SizeLf;
    else this.fail(byte === LF ? "CR_EXPECTED" : "INVALID_CHUNK_EXTENSION");
  }

  /** The CRLF that must follow each chunk's data. */
  private stepDataEnd(byte: number): void {
    if (this.state === State.DataCr) {
      if (byte === CR) this.state = State.DataLf;
      else this.fail(byte === LF ? "CR_EXPECTED" : "CHUNK_DATA_CRLF_EXPECTED");
      return;
    }
    if (byte !== LF) return this.fail("LF_EXPECTED");
    this.state = State.SizeStart;
  }

  /** trailer-section = *( field-line CRLF ) CRLF, checked like header lines, then dropped. */
  private stepTrailer(byte: number): void {
    if (++this.trailerBytes > this.limits.maxTrailerBytes) return this.fail("TRAILERS_TOO_LARGE");
    switch (this.state) {
      case State.TrailerLineStart: return this.startTrailerLine(byte);
      case State.TrailerName:
        if (TOKEN[byte] === 1) return;
        if (byte === COLON) this.state = State.TrailerValue;
        else if (byte === SP || byte === HTAB) this.fail("INVALID_HEADER_TOKEN");
        else this.fail(byte === LF ? "CR_EXPECTED" : "INVALID_HEADER_TOKEN");
        return;
      case State.TrailerValue:
        if (FIELD_VALUE[byte] === 1) return;
        if (byte === CR) this.state = State.TrailerLf;
        else this.fail(byte === LF ? "CR_EXPECTED" : "INVALID_HEADER_VALUE");
        return;
      case State.TrailerLf:
        if (byte === LF) this.state = State.TrailerLineStart;
        else this.fail("LF_EXPECTED");
        return;
      default: // State.FinalLf
        if (byte !== LF) return this.fail("LF_EXPECTED");
        this.state = State.Done;
        this.status = ParseStatus.Done;
    }
  }

  private startTrailerLine(byte: number): void {
    if (byte === CR) {
      this.state = State.FinalLf;
    } else if (byte === SP || byte === HTAB) {
      this.fail("OBSOLETE_LINE_FOLDING");
    } else if (TOKEN[byte] === 1) {
      if (++this.trailerCount > this.limits.maxTrailerCount) return this.fail("TOO_MANY_TRAILERS");
      this.state = State.TrailerName;
    } else {
      this.fail(byte === LF ? "CR_EXPECTED" : "INVALID_HEADER_TOKEN");
    }
  }
}
