// The readiness endpoint (`health: { path, drainDelayMs }`): GET or HEAD of its path is answered before the
// routes and the handler (200 "ok"), and turns 503 "draining" once a graceful stop begins. The stop then waits
// drainDelayMs with the listeners still open, so a load balancer that polls the path stops sending before the
// sockets go (Kubernetes' preStop pattern); only then does the graceful stop proceed.
import { ConfigError } from "../errors.ts";
import { runtime } from "../ffi/index.ts";
import { requestPath } from "./request.ts";

export interface HealthOptions {
  /** Default "/healthz". */
  path?: string;
  /** How long a graceful stop answers 503 here, listeners open, before it closes them (default 0). */
  drainDelayMs?: number;
}

type Handler<A> = (request: Request, server: A) => Response | Promise<Response>;
const HEADERS = { "content-type": "text/plain;charset=utf-8", "cache-control": "no-store" };
/** The longest drain delay taken: a minute is beyond any load balancer's polling period. */
const DRAIN_DELAY_MS_MAX = 60_000;

export class Health {
  readonly path: string;
  readonly drainDelayMs: number;
  /** A graceful stop began: the endpoint answers 503. */
  draining = false;
  private readonly ok = new runtime.FastResponse("ok", { headers: HEADERS });
  private readonly unavailable = new runtime.FastResponse("draining", { status: 503, headers: HEADERS });

  private constructor(options: HealthOptions) {
    this.path = options.path ?? "/healthz";
    this.drainDelayMs = options.drainDelayMs ?? 0;
  }

  /** The option checked (true: the defaults); null when there is no endpoint. */
  static from(option: unknown): Health | null {
    if (option === undefined || option === false) return null;
    const given = option === true ? {} : option;
    if (typeof given !== "object" || given === null) throw new ConfigError("health", `must be true, false or { path, drainDelayMs }, got ${typeof option}`);
    for (const key of Object.keys(given)) if (key !== "path" && key !== "drainDelayMs") throw new ConfigError(`health.${key}`, "is not a health option (path, drainDelayMs)");
    const { path, drainDelayMs } = given as HealthOptions;
    if (path !== undefined && (typeof path !== "string" || !path.startsWith("/") || path.includes("?"))) {
      throw new ConfigError("health.path", `must be a path starting with /, got ${JSON.stringify(path)}`);
    }
    if (drainDelayMs !== undefined && (!Number.isInteger(drainDelayMs) || drainDelayMs < 0 || drainDelayMs > DRAIN_DELAY_MS_MAX)) {
      throw new ConfigError("health.drainDelayMs", `must be an integer from 0 to ${DRAIN_DELAY_MS_MAX}, got ${JSON.stringify(drainDelayMs)}`);
    }
    return new Health(given as HealthOptions);
  }

  /** The handler with the endpoint in front of it. */
  wrap<A>(handler: Handler<A>): Handler<A> {
    const path = this.path;
    return (request, server) => {
      if (requestPath(request) === path && (request.method === "GET" || request.method === "HEAD")) {
        return this.draining ? this.unavailable : this.ok;
      }
      return handler(request, server);
    };
  }

  /** Turns the endpoint 503 and resolves after the drain delay. */
  drain(): Promise<void> {
    this.draining = true;
    if (this.drainDelayMs === 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, this.drainDelayMs));
  }
}
