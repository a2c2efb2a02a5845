// Reads test/http/cases/*.md: llhttp-style parser cases written as data.
//
// A case is a `### name` heading, an optional `<!-- meta={...} -->` line (limits), an ```http block and a
// ```json block. In the http block, physical line breaks are IGNORED and every byte is written out:
// `\r`, `\n`, `\t`, `\\` and `\xNN` are escapes, everything else is literal. So `GET / HTTP/1.1\r\n` on a
// line of its own is exactly those 16 bytes, and a bare LF or CR is as visible as any other byte.
// The json block is one expected message, or an array of them for pipelined input (see http-parser.ts).
import { readdirSync, readFileSync } from "node:fs";

export interface CaseMeta {
  maxHeaderBytes?: number;
  maxHeaderCount?: number;
  maxBodyBytes?: number;
  maxChunkExtensionBytes?: number;
  maxTrailerBytes?: number;
  maxTrailerCount?: number;
}

export interface ParserCase {
  file: string;
  name: string;
  meta: CaseMeta;
  bytes: Uint8Array;
  expected: Record<string, unknown>[];
}

const CASES_DIR = new URL("./cases/", import.meta.url);

export function loadCases(): ParserCase[] {
  const files = readdirSync(CASES_DIR).filter((file) => file.endsWith(".md")).sort();
  return files.flatMap((file) => parseCaseFile(file, readFileSync(new URL(file, CASES_DIR), "utf8")));
}

function parseCaseFile(file: string, text: string): ParserCase[] {
  const cases: ParserCase[] = [];
  const lines = text.split("\n");
  let current: { name: string; meta: CaseMeta; http?: string; json?: string } | null = null;
  const flush = (): void => {
    if (current === null) return;
    if (current.http === undefined || current.json === undefined) throw new Error(`${file}: case "${current.name}" needs an http and a json block`);
    const parsed = JSON.parse(current.json) as Record<string, unknown> | Record<string, unknown>[];
    cases.push({ file, name: current.name, meta: current.meta, bytes: unescape(current.http), expected: Array.isArray(parsed) ? parsed : [parsed] });
    current = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("### ")) {
      flush();
      current = { name: line.slice(4).trim(), meta: {} };
    } else if (current !== null && line.startsWith("<!-- meta=")) {
      current.meta = JSON.parse(line.slice("<!-- meta=".length, line.lastIndexOf("-->")).trim()) as CaseMeta;
    } else if (current !== null && (line.startsWith("```http") || line.startsWith("```json"))) {
      const body: string[] = [];
      let j = i + 1;
      for (; j < lines.length && !lines[j]!.startsWith("```"); j++) body.push(lines[j]!);
      if (line.startsWith("```http")) current.http = body.join("");
      else current.json = body.join("\n");
      i = j;
    }
  }
  flush();
  return cases;
}

/** Turns the http block into bytes: escapes as listed above, other characters as latin1 bytes. */
export function unescape(text: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch !== "\\") {
      out.push(text.charCodeAt(i) & 0xff);
      continue;
    }
    const next = text[++i];
    if (next === "r") out.push(0x0d);
    else if (next === "n") out.push(0x0a);
    else if (next === "t") out.push(0x09);
    else if (next === "\\") out.push(0x5c);
    else if (next === "x") {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else throw new Error(`unknown escape \\${next}`);
  }
  return Uint8Array.from(out);
}
