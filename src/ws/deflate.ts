// permessage-deflate (RFC 7692): the offer negotiation and one inflater and one deflater per connection,
// synchronous (they run inside the socket's read and send paths) with node:zlib's one-shot calls only.
// Context takeover is kept as a dictionary: raw deflate's LZ77 window is exactly the last 2^windowBits bytes
// of the uncompressed data, so each message is (de)compressed by a fresh zlib call primed with what the
// earlier messages left in the window. node:zlib has no portable synchronous call on a long-lived handle:
// its internal `_processChunk` closes the handle after one call, on Bun and on Deno as on Node.
import zlib from "node:zlib";
import { MessageTooLargeError } from "./frames.ts";

/** What the server is willing to do (Bun's `perMessageDeflate: true | {...}` maps onto it). */
export interface DeflateOptions {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  /** 8..15; the largest window the server compresses with. */
  serverMaxWindowBits?: number;
  /** Messages shorter than this many bytes are sent uncompressed (default DEFLATE_THRESHOLD_BYTES_DEFAULT). */
  thresholdBytes?: number;
}

/** The parameters agreed for one connection. */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
  thresholdBytes: number;
}

/** Below this a deflated message is rarely shorter than the plain one and costs a zlib call. */
export const DEFLATE_THRESHOLD_BYTES_DEFAULT = 32;
const WINDOW_BITS_MIN = 8;
const WINDOW_BITS_MAX = 15;
/** What a sender's Z_SYNC_FLUSH ends a message with, removed on the wire (RFC 7692 §7.2.1). */
const TAIL = new Uint8Array([0x00, 0x00, 0xff, 0xff]);

/** A compressed message zlib could not inflate (corrupt or not deflate): the peer is failed, as with bad UTF-8. */
export class DeflateDataError extends Error {
  constructor(readonly zlibCode: string, message: string) {
    super(`permessage-deflate: ${message}`);
    this.name = "DeflateDataError";
  }
}

type Offer = Map<string, string | null>;
const KNOWN = new Set(["server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits", "client_max_window_bits"]);

/**
 * The client's Sec-WebSocket-Extensions header (null when absent) against our options: the first acceptable
 * permessage-deflate offer wins; returns the response header value and the params, or null (no deflate).
 * An offer with unknown or repeated or malformed parameters is declined (the next offer is tried), as RFC 7692 says.
 */
export function negotiateDeflate(header: string | null, options: DeflateOptions): { response: string; params: DeflateParams } | null {
  if (header === null) return null;
  const ours = options.serverMaxWindowBits ?? WINDOW_BITS_MAX;
  if (!isWindowBits(ours)) throw new RangeError(`permessage-deflate: serverMaxWindowBits must be ${WINDOW_BITS_MIN}..${WINDOW_BITS_MAX}, got ${ours}`);
  for (const element of header.split(",")) {
    const offer = parseOffer(element);
    if (offer === null) continue;
    const accepted = accept(offer, options, ours);
    if (accepted !== null) return accepted;
  }
  return null;
}

/** One comma-separated element: null unless it is permessage-deflate with well-formed, known, unrepeated parameters. */
function parseOffer(element: string): Offer | null {
  const parts = element.split(";").map((part) => part.trim());
  if (parts[0]!.toLowerCase() !== "permessage-deflate") return null;
  const offer: Offer = new Map();
  for (const part of parts.slice(1)) {
    const equals = part.indexOf("=");
    const name = (equals < 0 ? part : part.slice(0, equals)).trim().toLowerCase();
    let value = equals < 0 ? null : part.slice(equals + 1).trim();
    // RFC 7692 §7.1: a value may be a quoted-string whose content is a token.
    if (value !== null && value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (!KNOWN.has(name) || offer.has(name)) return null;
    if (name.endsWith("_context_takeover") && value !== null) return null;
    if (name === "server_max_window_bits" && (value === null || !isWindowBitsText(value))) return null;
    if (name === "client_max_window_bits" && value !== null && !isWindowBitsText(value)) return null;
    offer.set(name, value);
  }
  return offer;
}

/** The response to a well-formed offer; null where our options cannot meet it (never, as they stand). */
function accept(offer: Offer, options: DeflateOptions, ours: number): { response: string; params: DeflateParams } | null {
  const requested = offer.get("server_max_window_bits");
  const serverMaxWindowBits = requested === undefined || requested === null ? ours : Math.min(ours, Number(requested));
  const clientBits = offer.get("client_max_window_bits");
  const params: DeflateParams = {
    serverNoContextTakeover: offer.has("server_no_context_takeover") || options.serverNoContextTakeover === true,
    clientNoContextTakeover: offer.has("client_no_context_takeover") || options.clientNoContextTakeover === true,
    serverMaxWindowBits,
    // We inflate with the largest window whatever the client uses, so we never ask it to shrink its own.
    clientMaxWindowBits: clientBits === undefined || clientBits === null ? WINDOW_BITS_MAX : Number(clientBits),
    thresholdBytes: options.thresholdBytes ?? DEFLATE_THRESHOLD_BYTES_DEFAULT,
  };
  let response = "permessage-deflate";
  if (params.serverNoContextTakeover) response += "; server_no_context_takeover";
  if (params.clientNoContextTakeover) response += "; client_no_context_takeover";
  if (requested !== undefined || serverMaxWindowBits < WINDOW_BITS_MAX) response += `; server_max_window_bits=${serverMaxWindowBits}`;
  return { response, params };
}

function isWindowBits(bits: number): boolean {
  return Number.isInteger(bits) && bits >= WINDOW_BITS_MIN && bits <= WINDOW_BITS_MAX;
}

/** RFC 7692 §7.1.2: 1*DIGIT without leading zeros, 8..15. */
function isWindowBitsText(text: string): boolean {
  return /^(?:[89]|1[0-5])$/.test(text);
}

/** The last windowBytes of the uncompressed data, in one buffer allocated once. */
class History {
  private readonly bytes: Uint8Array;
  private length = 0;
  constructor(windowBytes: number) {
    this.bytes = new Uint8Array(windowBytes);
  }
  /** What zlib is primed with; undefined at the start (zlib rejects an empty dictionary). */
  get dictionary(): Uint8Array | undefined {
    return this.length === 0 ? undefined : this.bytes.subarray(0, this.length);
  }
  append(message: Uint8Array): void {
    const windowBytes = this.bytes.byteLength;
    if (message.byteLength >= windowBytes) {
      this.bytes.set(message.subarray(message.byteLength - windowBytes));
      this.length = windowBytes;
      return;
    }
    const kept = Math.min(this.length, windowBytes - message.byteLength);
    this.bytes.copyWithin(0, this.length - kept, this.length);
    this.bytes.set(message, kept);
    this.length = kept + message.byteLength;
  }
}

/**
 * Whether this runtime's raw deflate and inflate honour `dictionary` (Deno's node:zlib ignores it for raw
 * streams). Checked once: bytes compressed against a dictionary equal to them shrink to a back-reference, and
 * inflate back with it. Where they do not, the history goes in front of the message as a stored block instead.
 */
export const RAW_DICTIONARY_WORKS = ((): boolean => {
  const sample = new Uint8Array(256);
  for (let i = 0, x = 7; i < sample.byteLength; i++) sample[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  try {
    const packed = zlib.deflateRawSync(sample, { dictionary: sample, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    if (packed.byteLength >= sample.byteLength / 4) return false;
    const unpacked = zlib.inflateRawSync(packed, { dictionary: sample, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    return unpacked.byteLength === sample.byteLength && unpacked.every((b, i) => b === sample[i]);
  } catch {
    return false;
  }
})();

/** RFC 1951 stored block (not final) holding `history` (at most 32 KiB), then `data` and the sync-flush tail. */
function behindHistory(history: Uint8Array, data: Uint8Array): Uint8Array {
  const n = history.byteLength;
  const input = new Uint8Array(5 + n + data.byteLength + TAIL.byteLength);
  input[1] = n & 0xff;
  input[2] = n >>> 8;
  input[3] = ~n & 0xff;
  input[4] = (~n >>> 8) & 0xff;
  input.set(history, 5);
  input.set(data, 5 + n);
  input.set(TAIL, 5 + n + data.byteLength);
  return input;
}

/** Implements frames.ts's Inflater for the client's messages. */
export class MessageInflater {
  private readonly history: History | null;
  constructor(params: DeflateParams) {
    this.history = params.clientNoContextTakeover ? null : new History(1 << params.clientMaxWindowBits);
  }

  /** data is the joined payload without 00 00 ff ff; throws MessageTooLargeError past maxBytes, having inflated at most about maxBytes. */
  inflate(data: Uint8Array, maxBytes: number): Uint8Array {
    const dictionary = this.history?.dictionary;
    const stored = dictionary !== undefined && !RAW_DICTIONARY_WORKS ? dictionary.byteLength : 0;
    let input: Uint8Array;
    if (stored > 0) input = behindHistory(dictionary!, data);
    else {
      input = new Uint8Array(data.byteLength + TAIL.byteLength);
      input.set(data);
      input.set(TAIL, data.byteLength);
    }
    let output: Uint8Array;
    try {
      output = zlib.inflateRawSync(input, {
        // The largest window inflates whatever smaller one the client compressed with, 8 included.
        windowBits: WINDOW_BITS_MAX,
        dictionary: stored > 0 ? undefined : dictionary,
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
        // zlib stops once its output passes this, so a small message that inflates to gigabytes costs little.
        maxOutputLength: Math.max(1, maxBytes + stored),
      });
      if (stored > 0) output = output.subarray(stored);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "ERR_BUFFER_TOO_LARGE") throw new MessageTooLargeError(`inflated message over ${maxBytes} bytes`);
      throw new DeflateDataError(typeof code === "string" ? code : "unknown", (error as Error).message);
    }
    if (output.byteLength > maxBytes) throw new MessageTooLargeError(`inflated message over ${maxBytes} bytes`);
    this.history?.append(output);
    return output;
  }

  close(): void {}
}

/** Compresses the server's messages. */
export class MessageDeflater {
  private readonly history: History | null;
  private readonly windowBits: number;
  constructor(params: DeflateParams) {
    // zlib refuses a raw deflate window of 8 and uses 9, which is still safe for a peer that agreed on 8:
    // deflate never emits a distance over 2^windowBits - 262 (MAX_DIST in zlib's deflate.h), 250 for 9.
    this.windowBits = Math.max(9, params.serverMaxWindowBits);
    this.history = params.serverNoContextTakeover ? null : new History(1 << params.serverMaxWindowBits);
  }

  /** The compressed payload without the 00 00 ff ff tail. */
  deflate(message: Uint8Array): Uint8Array {
    const output = zlib.deflateRawSync(message, {
      windowBits: this.windowBits,
      // Without raw dictionaries each message is compressed on its own: still valid for the peer's context.
      dictionary: RAW_DICTIONARY_WORKS ? this.history?.dictionary : undefined,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    this.history?.append(message);
    return output.subarray(0, output.byteLength - TAIL.byteLength);
  }

  close(): void {}
}
