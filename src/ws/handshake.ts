// The opening handshake (RFC 6455 §4.2): what makes a request a valid WebSocket upgrade, and the 101 head
// that accepts it (Sec-WebSocket-Accept, the chosen subprotocol and extensions, the caller's headers).
import { createHash } from "node:crypto";

const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** The base64 of 16 bytes: 22 characters and "==". */
const KEY_PATTERN = /^[A-Za-z0-9+/]{22}==$/;
const encoder = new TextEncoder();

/** A request's upgrade fields once checked. */
export interface UpgradeRequest {
  key: string;
  /** Sec-WebSocket-Protocol's offers, in the client's order. */
  protocols: string[];
  /** Sec-WebSocket-Extensions as sent (null when absent). */
  extensions: string | null;
}

/** Why a request is not a WebSocket upgrade, or null when it is one (then `into` holds its fields). */
export function checkUpgrade(request: Request, into: UpgradeRequest): string | null {
  if (request.method !== "GET") return `method is ${request.method}, not GET`;
  const headers = request.headers;
  if (!hasToken(headers.get("upgrade"), "websocket")) return "the Upgrade header does not name websocket";
  if (!hasToken(headers.get("connection"), "upgrade")) return "the Connection header does not name upgrade";
  const version = headers.get("sec-websocket-version");
  if (version?.trim() !== "13") return `Sec-WebSocket-Version is ${version === null ? "missing" : JSON.stringify(version)}, not 13`;
  const key = headers.get("sec-websocket-key")?.trim() ?? "";
  if (!KEY_PATTERN.test(key)) return "Sec-WebSocket-Key is not the base64 of 16 bytes";
  into.key = key;
  const protocols = headers.get("sec-websocket-protocol");
  into.protocols = protocols === null ? [] : protocols.split(",").map((p) => p.trim()).filter((p) => p.length > 0);
  into.extensions = headers.get("sec-websocket-extensions");
  return null;
}

/** Sec-WebSocket-Accept for a client's key. */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + ACCEPT_GUID).digest("base64");
}

/** The 101 Switching Protocols head: accept, then protocol and extensions when chosen, then `headers`. */
export function switchingHead(key: string, protocol: string | null, extensions: string | null, headers: [string, string][]): Uint8Array {
  let head = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n`;
  if (protocol !== null) head += `Sec-WebSocket-Protocol: ${protocol}\r\n`;
  if (extensions !== null) head += `Sec-WebSocket-Extensions: ${extensions}\r\n`;
  for (const [name, value] of headers) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new TypeError(`upgrade header ${JSON.stringify(name)} holds a line break`);
    head += `${name}: ${value}\r\n`;
  }
  return encoder.encode(head + "\r\n");
}

/** The header fields the caller passed (Headers, a record or pairs), as pairs; the handshake's own are refused. */
export function headerPairs(headers: unknown): [string, string][] {
  if (headers === undefined || headers === null) return [];
  const pairs: [string, string][] = [];
  const add = (name: string, value: string) => {
    const lower = name.toLowerCase();
    if (lower === "upgrade" || lower === "connection" || lower === "sec-websocket-accept") {
      throw new TypeError(`upgrade headers may not set ${name}: the handshake writes it`);
    }
    pairs.push([name, String(value)]);
  };
  if (typeof (headers as Headers).forEach === "function" && !Array.isArray(headers)) (headers as Headers).forEach((value, name) => add(name, value));
  else if (Array.isArray(headers)) for (const [name, value] of headers as [string, string][]) add(name, value);
  else if (typeof headers === "object") for (const [name, value] of Object.entries(headers as Record<string, string>)) add(name, value);
  else throw new TypeError(`upgrade headers must be Headers, an object or pairs, got ${typeof headers}`);
  return pairs;
}

function hasToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  for (const part of value.split(",")) if (part.trim().toLowerCase() === token) return true;
  return false;
}
