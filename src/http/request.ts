// A Request that costs nothing until the handler looks at it. It is a real `instanceof
// Request` (its prototype chain ends at Request.prototype), keeps method/url/headers as plain
// fields built on first access, and materialises a native Request only for what needs one
// (body readers, clone, signal, ...). Deno's `new Request(url, {headers})` costs ~3.7 us and
// Bun's ~1.3 us per call (docs/event-loop.md), more than the rest of a small request.

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
  #body: ReadableStream<Uint8Array> | null;
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
    body: ReadableStream<Uint8Array> | null,
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
    return this[REAL] && !this.bodyOutside ? this[REAL].body : this.#body;
  }

  get bodyUsed(): boolean {
    return this[REAL] && !this.bodyOutside ? this[REAL].bodyUsed : (this.#body?.locked ?? false);
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

  /** Reads the body that the native Request cannot hold, through a Response (same readers, same errors). */
  readOutside(name: BodyReader): Promise<unknown> {
    const type = this.headers.get("content-type");
    const response = new Response(this.#body, type === null ? undefined : { headers: { "content-type": type } });
    return (response as unknown as Record<BodyReader, () => Promise<unknown>>)[name]();
  }

  /** A copy whose body is the second branch of a tee, for clone() of a request whose body stays here. */
  cloneOutside(): Request {
    const [mine, theirs] = this.#body!.tee();
    this.#body = mine;
    const copy = new LazyRequest(this.#method, this.#host, this.#defaultOrigin, this.#target, this.#flatHeaders, theirs, this[OWNER]);
    return copy as unknown as Request;
  }

  /** The native Request, built once; from then on everything delegates to it. */
  toRequest(): Request {
    if (this[REAL] === null) {
      const body = this.#body;
      const init: RequestInit & { duplex?: "half" } = { method: this.method, headers: this.headers };
      if (body && !this.bodyOutside) {
        init.body = body;
        init.duplex = "half";
      }
      this[REAL] = new Request(this.url, init);
    }
    return this[REAL];
  }
}

type BodyReader = "arrayBuffer" | "blob" | "bytes" | "formData" | "json" | "text";

// Everything else a Request has, delegated to the materialised one (or, for a body the native
// Request cannot hold, read here).
const bodyReaders: readonly BodyReader[] = ["arrayBuffer", "blob", "bytes", "formData", "json", "text"];
for (const name of [...bodyReaders, "clone"] as const) {
  Object.defineProperty(LazyRequest.prototype, name, {
    value: function (this: LazyRequest, ...args: unknown[]) {
      if (this.bodyOutside) return name === "clone" ? this.cloneOutside() : this.readOutside(name);
      const real = this.toRequest() as unknown as Record<string, (...a: unknown[]) => unknown>;
      return real[name](...args);
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
export function requestOwner(request: unknown): unknown {
  if (typeof request !== "object" || request === null) return undefined;
  return (request as { [OWNER]?: unknown })[OWNER] ?? undefined;
}
