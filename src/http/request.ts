// A Request that costs nothing until the handler looks at it. It is a real `instanceof
// Request` (its prototype chain ends at Request.prototype), keeps method/url/headers as plain
// fields built on first access, reads its body from the connection's RequestBody (bytes in
// memory, a stream only for request.body), and materialises a native Request only for what needs
// one (clone, signal, ...). Deno's `new Request(url, {headers})` costs ~3.7 us and Bun's ~1.3 us
// per call (docs/event-loop.md), more than the rest of a small request.
import { RequestBody } from "./body.ts";
import { BODY_READERS, type BodyReader, readGathered, readThroughResponse } from "./body-readers.ts";

const REAL = Symbol("reuseport.request");
/** The connection a request arrived on (server.requestIP reads it; see requestOwner). */
const OWNER = Symbol("reuseport.request.owner");

export class LazyRequest {
  // Flat fields, no source object per request. #host: the Host header (the URL's authority), or null
  // for #defaultOrigin (the listener's). The URL string is built on first access.
  #method: string;
  #target: string;
  #host: string | null;
  #defaultOrigin: string;
  #flatHeaders: string[];
  #body: RequestBody | null;
  /** The native Request was made with the body: body, bodyUsed and the readers are its from then on. */
  #bodyInReal = false;
  #url: string | null = null;
  #headers: Headers | null = null;
  [REAL]: Request | null = null;
  [OWNER]: unknown;

  constructor(
    method: string,
    host: string | null,
    defaultOrigin: string,
    target: string,
    headers: string[],
    body: RequestBody | null,
    owner: unknown = null,
  ) {
    this.#method = method;
    this.#host = host;
    this.#defaultOrigin = defaultOrigin;
    this.#target = target;
    this.#flatHeaders = headers;
    this.#body = body;
    this[OWNER] = owner;
  }

  get method(): string {
    return this.#method;
  }

  /** Not part of Request: the raw request-target (see requestTarget()). */
  get target(): string {
    return this.#target;
  }

  get url(): string {
    if (this.#url === null) {
      const origin = this.#host ? `http://${this.#host}` : this.#defaultOrigin;
      const target = this.#target;
      this.#url = target.charCodeAt(0) === 47 /* / */ ? origin + target : target === "*" ? origin + "/" : target;
    }
    return this.#url;
  }

  get headers(): Headers {
    if (this[REAL]) return this[REAL].headers;
    if (this.#headers === null) {
      const flat = this.#flatHeaders;
      const headers = new Headers();
      for (let i = 0; i < flat.length; i += 2) headers.append(flat[i], flat[i + 1]);
      this.#headers = headers;
    }
    return this.#headers;
  }

  get body(): ReadableStream<Uint8Array> | null {
    return this.#bodyInReal ? this[REAL]!.body : (this.#body?.stream ?? null);
  }

  get bodyUsed(): boolean {
    return this.#bodyInReal ? this[REAL]!.bodyUsed : (this.#body?.used ?? false);
  }

  /**
   * A GET or HEAD that came with a body: the Request constructor refuses one for these methods (Deno
   * throws), yet the handler may read it, as Deno.serve and Bun.serve allow. The body then stays here.
   */
  get bodyOutside(): boolean {
    if (this.#body === null) return false;
    const method = this.#method.toUpperCase(); // the constructor normalises the method the same way
    return method === "GET" || method === "HEAD";
  }

  /** A body reader: from the bytes in memory, through the stream once request.body was taken, or the native Request's. */
  readBody(name: BodyReader): Promise<unknown> {
    const body = this.#body;
    if (this.#bodyInReal || body === null) return (this.toRequest() as unknown as Record<BodyReader, () => Promise<unknown>>)[name]();
    if (body.streamed) return readThroughResponse(body.stream, name, this.headers.get("content-type"));
    return readGathered(body, name, name === "blob" || name === "formData" ? this.headers.get("content-type") : null);
  }

  clone(): Request {
    const body = this.#body;
    if (body !== null && !this.#bodyInReal) {
      if (body.used) throw new TypeError("Request.clone: Body already used");
      if (this.bodyOutside) return this.cloneOutside(body);
    }
    return this.toRequest().clone();
  }

  /** A copy whose body is the second branch of a tee, for clone() of a request whose body stays here. */
  private cloneOutside(body: RequestBody): Request {
    const [mine, theirs] = body.stream.tee();
    this.#body = RequestBody.ofStream(mine);
    const copy = new LazyRequest(
      this.#method, this.#host, this.#defaultOrigin, this.#target, this.#flatHeaders, RequestBody.ofStream(theirs), this[OWNER],
    );
    return copy as unknown as Request;
  }

  /**
   * The native Request, built once; it holds the body unless a reader took it already or the method
   * cannot have one (bodyOutside): an ended body as its bytes, one still arriving as the stream.
   */
  toRequest(): Request {
    if (this[REAL] === null) {
      const body = this.#body;
      const init: RequestInit & { duplex?: "half" } = { method: this.method, headers: this.headers };
      if (body && !this.bodyOutside && !body.used) {
        const bytes = body.bytesIfWhole();
        if (bytes !== null) init.body = bytes as Uint8Array<ArrayBuffer>;
        else {
          init.body = body.stream;
          init.duplex = "half";
        }
        this.#bodyInReal = true;
      }
      this[REAL] = new Request(this.url, init);
    }
    return this[REAL];
  }
}

// The body readers, from the request's own body (or the native Request's, see readBody).
for (const name of BODY_READERS) {
  Object.defineProperty(LazyRequest.prototype, name, {
    value: function (this: LazyRequest) {
      return this.readBody(name);
    },
    writable: true,
    configurable: true,
  });
}
const getters = [
  "signal", "cache", "credentials", "destination", "integrity", "keepalive", "mode", "redirect",
  "referrer", "referrerPolicy", "duplex", "isHistoryNavigation", "isReloadNavigation", "targetAddressSpace",
];
for (const name of getters) {
  if (!(name in Request.prototype)) continue;
  Object.defineProperty(LazyRequest.prototype, name, {
    get(this: LazyRequest) {
      return (this.toRequest() as unknown as Record<string, unknown>)[name];
    },
    configurable: true,
  });
}
Object.defineProperty(LazyRequest.prototype, Symbol.toStringTag, { value: "Request", configurable: true });
Object.setPrototypeOf(LazyRequest.prototype, Request.prototype);

/** The request-target as sent ("/path?query"), without building a URL for our own requests. */
export function requestTarget(request: Request): string {
  if (request instanceof LazyRequest) return request.target;
  const url = new URL(request.url);
  return url.pathname + url.search;
}

/** The native Request behind a handler's argument (for APIs that insist on one). */
export function toNativeRequest(request: Request): Request {
  return request instanceof LazyRequest ? request.toRequest() : request;
}

/** The owner a LazyRequest was made with (its Connection), or undefined for any other value. */
/** A request's path without its query: from its raw request-target when it is one of ours, else from its URL. */
export function requestPath(request: Request): string {
  const target = (request as unknown as { target?: string }).target;
  if (target !== undefined && target.charCodeAt(0) === 47 /* / */) {
    const query = target.indexOf("?");
    return query < 0 ? target : target.slice(0, query);
  }
  if (target === "*") return "*";
  return new URL(request.url).pathname;
}

export function requestOwner(request: unknown): unknown {
  if (typeof request !== "object" || request === null) return undefined;
  return (request as { [OWNER]?: unknown })[OWNER] ?? undefined;
}
