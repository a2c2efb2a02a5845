// Socket addresses: parse host strings, resolve names, and encode/decode Linux sockaddr bytes
// (sockaddr_in 16 bytes, sockaddr_in6 28 bytes, sockaddr_un 110 bytes; family in host order).
import { lookup } from "node:dns/promises";
import { ConfigError } from "../errors.ts";

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;

export interface SocketAddress {
  family: "IPv4" | "IPv6" | "unix";
  /** IP literal, or the path for unix sockets. */
  address: string;
  port: number;
}

export function formatAddress(a: SocketAddress): string {
  if (a.family === "unix") return a.address;
  return a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

export function checkPort(port: unknown, option = "port"): number {
  if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(option, `must be an integer from 0 to 65535, got ${JSON.stringify(port)}`);
  }
  return port;
}

export function parseIPv4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes = parts.map((part) => (/^(0|[1-9]\d{0,2})$/.test(part) ? Number(part) : 256));
  return bytes.every((b) => b <= 255) ? bytes : null;
}

/** 16 bytes, or null when text is not an IPv6 literal (no zone ids). */
export function parseIPv6(text: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length > 45) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const words: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIPv4(piece);
        if (!v4) return null;
        words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        words.push(parseInt(piece, 16));
      } else return null;
    }
    return words;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const words = [...head, ...new Array(halves.length === 2 ? missing : 0).fill(0), ...tail];
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

export function formatIPv6(bytes: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i] << 8) | bytes[i + 1]);
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  // RFC 5952: compress the longest run of two or more zero words.
  let bestStart = -1, bestLength = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) { bestStart = i; bestLength = j - i; }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** Resolves a host option to an IP literal and family; names go through the system resolver. */
export async function resolveHost(host: string): Promise<{ family: "IPv4" | "IPv6"; address: string }> {
  if (typeof host !== "string" || host === "") throw new ConfigError("hostname", `must be a non-empty string, got ${JSON.stringify(host)}`);
  const literal = literalHost(host);
  if (literal) return literal;
  try {
    const found = await lookup(host, { verbatim: false });
    return { family: found.family === 6 ? "IPv6" : "IPv4", address: found.address };
  } catch (error) {
    const code = (error as { code?: string }).code ?? "ENOTFOUND";
    throw new ConfigError("hostname", `"${host}" could not be resolved (getaddrinfo ${code})`);
  }
}

export function literalHost(host: string): { family: "IPv4" | "IPv6"; address: string } | null {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (parseIPv4(bare)) return { family: "IPv4", address: bare };
  const v6 = parseIPv6(bare);
  if (v6) return { family: "IPv6", address: formatIPv6(new Uint8Array(v6)) };
  if (host === "localhost") return { family: "IPv4", address: "127.0.0.1" };
  return null;
}

/** Writes the sockaddr for an address into out (>= 110 bytes) and returns its length. */
export function encodeSockaddr(a: SocketAddress, out: Uint8Array): number {
  out.fill(0);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (a.family === "unix") {
    const path = new TextEncoder().encode(a.address);
    if (path.byteLength === 0 || path.byteLength > 107) {
      throw new ConfigError("path", `must be 1 to 107 bytes for a unix socket, got ${path.byteLength}`);
    }
    view.setUint16(0, AF_UNIX, true);
    out.set(path, 2);
    return 2 + path.byteLength + 1;
  }
  view.setUint16(2, a.port, false);
  if (a.family === "IPv4") {
    view.setUint16(0, AF_INET, true);
    out.set(parseIPv4(a.address)!, 4);
    return 16;
  }
  view.setUint16(0, AF_INET6, true);
  out.set(parseIPv6(a.address)!, 8);
  return 28;
}

export function decodeSockaddr(bytes: Uint8Array, length: number): SocketAddress {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const family = view.getUint16(0, true);
  if (family === AF_INET) {
    return { family: "IPv4", address: `${bytes[4]}.${bytes[5]}.${bytes[6]}.${bytes[7]}`, port: view.getUint16(2, false) };
  }
  if (family === AF_INET6) {
    return { family: "IPv6", address: formatIPv6(bytes.subarray(8, 24)), port: view.getUint16(2, false) };
  }
  if (family === AF_UNIX) {
    let end = 2;
    while (end < length && bytes[end] !== 0) end++;
    return { family: "unix", address: new TextDecoder().decode(bytes.subarray(2, end)), port: 0 };
  }
  return { family: "unix", address: `<family ${family}>`, port: 0 };
}
