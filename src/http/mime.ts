// Content-Type from a file name's extension, for file responses: the common web types, with charset=utf-8
// on text (as Bun.serve and Deno's serveFile send them); anything else is application/octet-stream.

const UTF8 = ";charset=utf-8";
const TYPES: Record<string, string> = {
  html: "text/html" + UTF8, htm: "text/html" + UTF8, css: "text/css" + UTF8, txt: "text/plain" + UTF8,
  md: "text/markdown" + UTF8, csv: "text/csv" + UTF8, xml: "application/xml", js: "text/javascript" + UTF8,
  mjs: "text/javascript" + UTF8, cjs: "text/javascript" + UTF8, json: "application/json" + UTF8,
  map: "application/json" + UTF8, webmanifest: "application/manifest+json", wasm: "application/wasm",
  svg: "image/svg+xml", png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif",
  webp: "image/webp", avif: "image/avif", ico: "image/x-icon", bmp: "image/bmp",
  woff: "font/woff", woff2: "font/woff2", ttf: "font/ttf", otf: "font/otf",
  mp4: "video/mp4", webm: "video/webm", mp3: "audio/mpeg", ogg: "audio/ogg", wav: "audio/wav",
  pdf: "application/pdf", zip: "application/zip", gz: "application/gzip", tar: "application/x-tar",
};

export function contentTypeOf(path: string): string {
  const slash = path.lastIndexOf("/");
  const dot = path.lastIndexOf(".");
  if (dot <= slash + 1) return "application/octet-stream"; // no extension, or a dot file
  return TYPES[path.slice(dot + 1).toLowerCase()] ?? "application/octet-stream";
}
