// File responses: `file(path)` (ours, both runtimes) and Bun's `new Response(Bun.file(path))` are sent with
// sendfile(2) from the Zig core. Here: opening (beneath a root for serveDir, so no request path leaves it),
// the head a file gets (Content-Type from the extension, Content-Length, Last-Modified, ETag), and the
// request's conditions (If-None-Match, If-Modified-Since → 304; one Range → 206, 416 when unsatisfiable;
// If-Range). The bytes themselves go out through ResponseSender.sendFile.
import { lib, runtime } from "../ffi/index.ts";
import { errnoName } from "../ffi/errno.ts";
import { LAYOUT } from "../ffi/symbols.ts";
import { ConfigError } from "../errors.ts";
import { contentTypeOf } from "./mime.ts";
import { plainResponse } from "./fast-response.ts";
import { requestPath } from "./request.ts";

const FILE = Symbol("reuseport.file");
const EPERM = 1;
const EACCES = 13;
const EISDIR = 21;

/** Where a file body comes from: a path, opened when the response is sent (beneath `root` when >= 0). */
export interface FileSource {
  path: string;
  root: number;
  /** The body's size where the body may be a part of the file (a Bun.file slice): sent as a stream then. */
  size?: number;
}

const encoder = new TextEncoder();
const info = new Uint32Array(LAYOUT.fileInfoBytes / 4);
const infoBytes = new Uint8Array(info.buffer);

export interface OpenFile {
  fd: number;
  size: number;
  mtimeMs: number;
  etag: string;
  lastModified: string;
}

/** Opens a file body; -errno when it cannot be (ENOENT, EACCES, EISDIR, EXDEV out of the root, ...). */
export function openFile(source: FileSource): OpenFile | number {
  const path = encoder.encode(source.path);
  const fd = lib.rp_file_open(source.root, path, path.byteLength, infoBytes);
  if (fd < 0) return fd;
  const size = info[0] + info[1] * 2 ** 32;
  const mtimeSeconds = info[2] + info[3] * 2 ** 32;
  const mtimeMs = mtimeSeconds * 1000 + Math.floor(info[4] / 1e6);
  const inode = (info[6] + info[7] * 2 ** 32).toString(36);
  return {
    fd,
    size,
    mtimeMs,
    // Strong: the same inode, size and modification time (to the nanosecond) are the same bytes.
    etag: `"${inode}-${size.toString(36)}-${mtimeSeconds.toString(36)}.${info[4].toString(36)}"`,
    lastModified: new Date(mtimeSeconds * 1000).toUTCString(),
  };
}

/** The status a failed open answers with: 404 for what is not there (or not a file, or outside the root), 403 for what may not be read. */
export function openFailureStatus(errno: number): 403 | 404 {
  return errno === EACCES || errno === EPERM ? 403 : 404;
}

export function describeOpenError(errno: number, path: string): string {
  return `open ${JSON.stringify(path)}: ${errnoName(errno)}`;
}

/**
 * A Response whose body is the file at `path`, sent with sendfile(2) by reuseport's server (with Range,
 * conditional requests, Last-Modified and ETag). Anywhere else (another server, `await response.text()`)
 * it reads like any other Response: its body streams the file.
 */
export function file(path: string, init?: ResponseInit): Response {
  if (typeof path !== "string" || path === "") throw new ConfigError("file(path)", `needs a path, got ${JSON.stringify(path)}`);
  return fileResponse({ path, root: -1 }, init);
}

function fileResponse(source: FileSource, init?: ResponseInit): Response {
  const response = new runtime.FastResponse(streamOf(source), init);
  (response as unknown as Record<symbol, FileSource>)[FILE] = source;
  return response;
}

/** A file body read through JS, for when the Response is consumed outside the server. */
function streamOf(source: FileSource): ReadableStream<Uint8Array> {
  let opened: OpenFile | null = null;
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (opened === null) {
        // Opened on the first read, not at construction: a Response the server sends by sendfile never opens it here.
        const result = openFile(source);
        if (typeof result === "number") {
          controller.error(new Error(describeOpenError(-result, source.path)));
          return;
        }
        opened = result;
      }
      const chunk = new Uint8Array(Math.min(64 * 1024, opened!.size - offset));
      const read = chunk.byteLength === 0 ? 0 : lib.rp_pread(opened!.fd, chunk, chunk.byteLength, Math.floor(offset / 2 ** 32), offset >>> 0);
      if (read < 0) {
        controller.error(new Error(`read ${JSON.stringify(source.path)}: ${errnoName(-read)}`));
        return;
      }
      if (read === 0) {
        lib.rp_close(opened!.fd);
        controller.close();
        return;
      }
      offset += read;
      controller.enqueue(chunk.subarray(0, read));
    },
    cancel() {
      if (opened) lib.rp_close(opened.fd);
    },
  }, { highWaterMark: 0 }); // no read ahead: nothing is opened until someone reads
}

/** The file a Response sends, if any: ours (file(), serveDir) or Bun's `new Response(Bun.file(path))`. */
export function fileSourceOf(response: Response): FileSource | null {
  const ours = (response as unknown as Record<symbol, FileSource | undefined>)[FILE];
  if (ours !== undefined) return ours;
  const body = runtime.fileBodyOf(response);
  return body === null ? null : { path: body.path, root: -1, size: body.size };
}

/** What a file response puts in its head and sends: status, headers to add, and the byte range. */
export interface FilePlan {
  status: 200 | 206 | 304 | 416;
  headers: [string, string][];
  offset: number;
  length: number;
}

/** What of the request decides a file answer. */
export interface FileRequest {
  readonly method: string;
  readonly headers: { get(name: string): string | null };
}

/** Before any request: no conditions. */
export const NO_REQUEST: FileRequest = { method: "GET", headers: new Headers() };

/**
 * The answer for a file the response gives with status 200 (a handler's other statuses are sent as they
 * are, whole): RFC 9110's conditions in its order, then Range.
 */
export function planFile(file: OpenFile, request: FileRequest, responseType: string | null, path: string): FilePlan {
  const headers: [string, string][] = [["last-modified", file.lastModified], ["etag", file.etag], ["accept-ranges", "bytes"]];
  if (responseType === null) headers.push(["content-type", contentTypeOf(path)]);
  const method = request.method;
  const cacheable = method === "GET" || method === "HEAD";
  const noneMatch = request.headers.get("if-none-match");
  if (cacheable && noneMatch !== null) {
    if (etagListMatches(noneMatch, file.etag)) return { status: 304, headers, offset: 0, length: 0 };
  } else if (cacheable) {
    const since = request.headers.get("if-modified-since");
    const sinceMs = since === null ? NaN : Date.parse(since);
    if (!Number.isNaN(sinceMs) && Math.floor(file.mtimeMs / 1000) * 1000 <= sinceMs) return { status: 304, headers, offset: 0, length: 0 };
  }
  const range = method === "GET" ? request.headers.get("range") : null;
  if (range !== null && ifRangeHolds(request.headers.get("if-range"), file)) {
    const parsed = parseRange(range, file.size);
    if (parsed === "unsatisfiable") {
      headers.push(["content-range", `bytes */${file.size}`]);
      return { status: 416, headers, offset: 0, length: 0 };
    }
    if (parsed !== null) {
      headers.push(["content-range", `bytes ${parsed.start}-${parsed.end}/${file.size}`]);
      return { status: 206, headers, offset: parsed.start, length: parsed.end - parsed.start + 1 };
    }
  }
  return { status: 200, headers, offset: 0, length: file.size };
}

function etagListMatches(list: string, etag: string): boolean {
  if (list.trim() === "*") return true;
  const weak = (tag: string) => tag.trim().replace(/^W\//, "");
  return list.split(",").some((tag) => weak(tag) === weak(etag));
}

/** If-Range: a strong ETag equal to ours, or exactly our Last-Modified; else the whole file is sent. */
function ifRangeHolds(ifRange: string | null, file: OpenFile): boolean {
  if (ifRange === null) return true;
  const value = ifRange.trim();
  if (value.startsWith('"')) return value === file.etag;
  return value === file.lastModified;
}

/** One `bytes=` range; null for a form we ignore (several ranges, another unit: the whole file is sent). */
function parseRange(header: string, size: number): { start: number; end: number } | "unsatisfiable" | null {
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match || (match[1] === "" && match[2] === "")) return null;
  if (match[1] === "") {
    const suffix = Number(match[2]);
    if (suffix === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || (match[2] !== "" && Number(match[2]) < start)) return "unsatisfiable";
  return { start, end };
}

export interface ServeDirOptions {
  /** The URL path the directory is served under ("/static/" for a "/static/*" route); default "/". */
  prefix?: string;
  /** The file a directory's URL (ending in "/") answers with; false: 404. Default "index.html". */
  index?: string | false;
}

/**
 * A handler that serves the files beneath `root`: the path after `prefix`, percent-decoded once, opened with
 * openat2(RESOLVE_BENEATH), so neither "..", nor an absolute path, nor a symlink can leave the root. Paths
 * that are not canonical (".", "..", empty segments, an encoded "/" or NUL) are 404, so the file served is
 * always the path the URL names; a directory without its trailing "/" is redirected (301) to it.
 */
/** serveDir's handler; close() lets go of the root directory (it is also let go when the handler is collected). */
export type DirHandler = ((request: Request) => Response) & { close(): void };

const closeRoot = new FinalizationRegistry<number>((fd) => lib.rp_close(fd));

export function serveDir(root: string, options: ServeDirOptions = {}): DirHandler {
  const prefix = options.prefix ?? "/";
  if (typeof prefix !== "string" || !prefix.startsWith("/") || !prefix.endsWith("/")) {
    throw new ConfigError("serveDir prefix", `must start and end with /, got ${JSON.stringify(prefix)}`);
  }
  const index = options.index ?? "index.html";
  if (index !== false && (typeof index !== "string" || index === "" || index.includes("/"))) {
    throw new ConfigError("serveDir index", `must be a file name or false, got ${JSON.stringify(index)}`);
  }
  const rootPath = encoder.encode(root);
  const rootFd = lib.rp_dir_open(rootPath, rootPath.byteLength);
  if (rootFd < 0) throw new ConfigError("serveDir root", `${JSON.stringify(root)} cannot be opened as a directory: ${errnoName(-rootFd)}`);
  const handler = (request: Request): Response => {
    const pathname = requestPath(request);
    const relative = pathname.startsWith(prefix) ? canonicalPath(pathname.slice(prefix.length)) : null;
    if (relative === null) return notFound();
    if (relative === "" || relative.endsWith("/")) {
      return index === false ? notFound() : fileResponse({ path: relative + index, root: rootFd });
    }
    const probe = lib.rp_file_open(rootFd, encoder.encode(relative), encoder.encode(relative).byteLength, infoBytes);
    if (probe === -EISDIR) return new runtime.FastResponse(null, { status: 301, headers: { location: `${pathname}/` } });
    if (probe >= 0) lib.rp_close(probe);
    return fileResponse({ path: relative, root: rootFd });
  };
  let open = true;
  const dirHandler = Object.assign(handler, {
    close() {
      if (!open) return;
      open = false;
      closeRoot.unregister(dirHandler);
      lib.rp_close(rootFd);
    },
  });
  closeRoot.register(dirHandler, rootFd, dirHandler);
  return dirHandler;
}


/** The decoded relative path, or null when it is not canonical (then nothing is served). */
function canonicalPath(raw: string): string | null {
  if (/%(2f|5c|00)/i.test(raw)) return null; // an encoded "/", "\" or NUL would name another path than the URL shows
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return null;
  }
  if (decoded.includes("\0") || decoded.includes("\\")) return null;
  const segments = decoded.split("/");
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    if (segment === "." || segment === "..") return null;
    if (segment === "" && i !== segments.length - 1) return null; // "a//b", or a leading "/" after the prefix
  }
  return decoded;
}

const notFound = () => plainResponse("Not Found", 404);
