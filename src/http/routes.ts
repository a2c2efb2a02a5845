// Bun.serve's `routes`, compiled once into one handler that runs before `fetch`: exact paths in a Map,
// `:params` and `*` wildcards in a segment tree (static child, then param, then wildcard, backtracking),
// so a lookup costs the path's segments, not the number of routes. Precedence as Bun documents it: exact,
// then parameters, then wildcards, then the global `/*`. A route's value is a handler, a static Response
// (sent as is for every request: never consumed, nothing allocated), an object of per-method values, or
// false (hand the request to `fetch`).
import { ConfigError } from "../errors.ts";
import { runtime } from "../ffi/index.ts";
import type { HandlerContext } from "./handler-context.ts";
import { plainResponse } from "./fast-response.ts";
import { requestPath } from "./request.ts";

export type RouteHandler = (request: Request & { params: Record<string, string> }, server: HandlerContext) => Response | Promise<Response>;
export type RouteTarget = Response | RouteHandler;
export type RouteValue = RouteTarget | Partial<Record<string, RouteTarget>> | false | undefined;
export type Routes = Record<string, RouteValue>;
export type FetchHandler = (request: Request, server: HandlerContext) => Response | Promise<Response>;

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"]);
const PARAM_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** What one path answers: by method, else `any`; `fallthrough` hands it to fetch. */
interface Route {
  readonly path: string;
  readonly any: RouteTarget | null;
  readonly methods: Map<string, RouteTarget> | null;
  readonly fallthrough: boolean;
  /** For 405's Allow header. */
  readonly allow: string;
}

interface Node {
  readonly children: Map<string, Node>;
  param: { name: string; node: Node } | null;
  /** A route ending in `*` at this depth: matches one or more remaining segments, or none after a slash. */
  wildcard: Route | null;
  route: Route | null;
}

const newNode = (): Node => ({ children: new Map(), param: null, wildcard: null, route: null });

interface Match {
  route: Route;
  params: Record<string, string>;
}

export class Router {
  readonly #exact = new Map<string, Route>();
  readonly #tree = newNode();
  /** Set when a route needs the segment tree. */
  #dynamic = false;

  constructor(routes: Routes) {
    if (typeof routes !== "object" || routes === null || Array.isArray(routes)) {
      throw new ConfigError("routes", `must be an object of paths, got ${routes === null ? "null" : Array.isArray(routes) ? "an array" : typeof routes}`);
    }
    for (const [path, value] of Object.entries(routes)) {
      if (value === undefined) continue;
      this.#add(path, compileRoute(path, value));
    }
  }

  #add(path: string, route: Route): void {
    if (path[0] !== "/") throw new ConfigError(`routes[${JSON.stringify(path)}]`, "must start with /");
    const segments = path.slice(1).split("/");
    if (!segments.some((s) => s[0] === ":" || s === "*")) {
      this.#exact.set(path, route);
      return;
    }
    this.#dynamic = true;
    const names = new Set<string>();
    let node = this.#tree;
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i];
      if (segment === "*") {
        if (i !== segments.length - 1) throw new ConfigError(`routes[${JSON.stringify(path)}]`, "may have * only as its last segment");
        node.wildcard = route;
        return;
      }
      if (segment[0] === ":") {
        const name = segment.slice(1);
        if (!PARAM_NAME.test(name)) throw new ConfigError(`routes[${JSON.stringify(path)}]`, `has a bad parameter name ${JSON.stringify(name)}`);
        if (names.has(name)) throw new ConfigError(`routes[${JSON.stringify(path)}]`, `names parameter :${name} twice`);
        names.add(name);
        if (node.param && node.param.name !== name) {
          throw new ConfigError(`routes[${JSON.stringify(path)}]`, `names the parameter :${name} where another route names :${node.param.name}`);
        }
        node.param ??= { name, node: newNode() };
        node = node.param.node;
        continue;
      }
      let child = node.children.get(segment);
      if (!child) node.children.set(segment, (child = newNode()));
      node = child;
    }
    node.route = route;
  }

  /** The route for a path (no query), with its decoded parameters; null when none matches. */
  match(pathname: string): Match | null {
    const exact = this.#exact.get(pathname);
    if (exact) return { route: exact, params: NO_PARAMS };
    if (!this.#dynamic) return null;
    const segments = pathname.slice(1).split("/");
    const values: string[] = [];
    const names: string[] = [];
    const route = find(this.#tree, segments, 0, names, values);
    if (!route) return null;
    const params: Record<string, string> = {};
    for (let i = 0; i < names.length; i++) params[names[i]] = decodeParam(values[i]);
    return { route, params };
  }
}

/** Depth-first: a static child beats a parameter, a parameter beats a wildcard; a dead end backtracks. */
function find(node: Node, segments: string[], depth: number, names: string[], values: string[]): Route | null {
  if (depth === segments.length) return node.route ?? null;
  const segment = segments[depth];
  const child = node.children.get(segment);
  if (child) {
    const found = find(child, segments, depth + 1, names, values);
    if (found) return found;
  }
  if (node.param && segment !== "") {
    names.push(node.param.name);
    values.push(segment);
    const found = find(node.param.node, segments, depth + 1, names, values);
    if (found) return found;
    names.pop();
    values.pop();
  }
  return node.wildcard;
}

const UTF8 = new TextDecoder(); // not fatal: invalid UTF-8 becomes U+FFFD, as Bun decodes parameters

function decodeParam(raw: string): string {
  if (raw.indexOf("%") < 0) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    const bytes: number[] = [];
    for (let i = 0; i < raw.length; i++) {
      const hex = raw[i] === "%" ? parseInt(raw.slice(i + 1, i + 3), 16) : NaN;
      if (Number.isNaN(hex) || !/^[0-9A-Fa-f]{2}$/.test(raw.slice(i + 1, i + 3))) bytes.push(...new TextEncoder().encode(raw[i]));
      else {
        bytes.push(hex);
        i += 2;
      }
    }
    return UTF8.decode(new Uint8Array(bytes));
  }
}

function compileRoute(path: string, value: Exclude<RouteValue, undefined>): Route {
  const where = `routes[${JSON.stringify(path)}]`;
  if (value === false) return { path, any: null, methods: null, fallthrough: true, allow: "" };
  if (typeof value === "function" || runtime.isResponse(value)) {
    return { path, any: target(where, value), methods: null, fallthrough: false, allow: "" };
  }
  if (typeof value !== "object" || value === null) {
    throw new ConfigError(where, `must be a handler, a Response, an object of methods or false, got ${value === null ? "null" : typeof value}`);
  }
  if ("dir" in value) throw new ConfigError(where, "{ dir } routes are not supported yet: serve the directory from fetch");
  const methods = new Map<string, RouteTarget>();
  for (const [method, handler] of Object.entries(value)) {
    if (handler === undefined) continue;
    if (!METHODS.has(method)) throw new ConfigError(`${where}.${method}`, `is not an HTTP method (use one of ${[...METHODS].join(", ")})`);
    methods.set(method, target(`${where}.${method}`, handler));
  }
  if (methods.has("GET") && !methods.has("HEAD")) methods.set("HEAD", methods.get("GET")!); // HEAD is GET without the body
  return { path, any: null, methods, fallthrough: false, allow: [...methods.keys()].join(", ") };
}

function target(where: string, value: unknown): RouteTarget {
  if (typeof value === "function") return value as RouteHandler;
  if (runtime.isResponse(value)) return staticResponse(where, value);
  throw new ConfigError(where, `must be a handler or a Response, got ${value === null ? "null" : typeof value}`);
}

/**
 * A Response a route sends for every request. One whose body the sender reads in place (a string or bytes) is
 * sent itself; any other body (a stream, a Blob, Response.json on Bun) is read once into bytes, and until that
 * is done each request gets a clone.
 */
function staticResponse(where: string, response: Response): RouteTarget {
  if (response.bodyUsed) throw new ConfigError(where, "is a Response whose body was already read");
  if (runtime.staticBody(response) !== undefined) return response;
  let ready: Response | null = null;
  const source = response.clone();
  source.arrayBuffer().then(
    (bytes) => (ready = new runtime.FastResponse(bytes, { status: response.status, statusText: response.statusText, headers: response.headers })),
    () => {}, // a body that fails to read fails each clone the same way, answered as a handler's failure
  );
  return () => ready ?? response.clone();
}


/**
 * One handler for routes and fetch: the route that matches, else `fetch`, else 404; a path whose route has no
 * handler for the method goes to `fetch`, else 405 with Allow.
 */
export function routedHandler(router: Router, fetch: FetchHandler | null): FetchHandler {
  return (request, server) => {
    const match = router.match(requestPath(request));
    if (match === null || match.route.fallthrough) return fetch ? fetch(request, server) : plainResponse("Not Found", 404);
    const { route } = match;
    const chosen = route.any ?? route.methods!.get(request.method);
    if (chosen === undefined) {
      if (fetch) return fetch(request, server);
      return plainResponse("Method Not Allowed", 405, { allow: route.allow });
    }
    if (typeof chosen !== "function") return chosen;
    (request as Request & { params: Record<string, string> }).params = match.params;
    return chosen(request as Request & { params: Record<string, string> }, server);
  };
}
