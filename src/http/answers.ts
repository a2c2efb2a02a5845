// What answers a request: the handler's Response, or, when the handler throws, rejects, returns something
// else or its Response cannot be sent before its head, the error handler's answer, and last a plain 500.
// Nothing a handler does escapes into the poll round; every failure is counted and logged (rate-limited).
import { runtime } from "../ffi/index.ts";
import type { Connection } from "./connection.ts";
import { ErrorLog } from "./error-log.ts";
import { HandlerContext, type ServerSurface } from "./handler-context.ts";
import { Answer } from "./response-sender.ts";
import type { Upgrades } from "./upgrade.ts";

/** The handler's second argument is Bun's server and Deno's info in one (handler-context.ts). */
export type Handler = (request: Request, server: HandlerContext) => Response | Promise<Response>;
export type ErrorHandler = (error: unknown) => Response | Promise<Response>;

export class Answers {
  /** This worker's error lines, rate-limited (a flood of failing handlers must not flood stderr). */
  private readonly errorLog = new ErrorLog();

  /** The server the handlers' second argument speaks for (set by Server once it exists). */
  surface: ServerSurface | null = null;
  /** Completes the upgrades handlers ask for (src/ws/); null until the server sets it. */
  upgrades: Upgrades | null = null;

  constructor(
    private handler: Handler,
    private errorHandler: ErrorHandler | null,
    private readonly stats: { handlerErrors: number },
    /** Promises are work the loop must not sleep through (ConnectionHost.asyncBegan). */
    private readonly async: { asyncBegan(): void; asyncEnded(): void },
  ) {}

  /**
   * Calls the handler; a throw, a rejection, a non-Response or a Response that fails before its head is
   * written becomes a 500 (or the error handler's answer). Nothing a handler does escapes into the round.
   */
  invoke(conn: Connection, request: Request): void {
    conn.sender.request = request;
    let result: Response | Promise<Response>;
    try {
      result = this.handler(request, new HandlerContext(this.surface!, conn));
    } catch (error) {
      this.answerError(conn, error);
      return;
    }
    // server.upgrade() or upgradeWebSocket() marked the connection: the answer completes the upgrade (a
    // promise's once it settles: Deno's idiom answers with the upgrade's Response).
    if (conn.pendingUpgrade !== null && !(result instanceof Promise) && this.upgrades!.complete(conn, result)) return;
    if (runtime.isResponse(result)) {
      conn.sender.send(result, Answer.Handler);
      return;
    }
    this.whenSettled(
      result,
      (response) => {
        if (conn.pendingUpgrade !== null && this.upgrades!.complete(conn, response)) return;
        if (runtime.isResponse(response)) this.complete(conn, response, Answer.Handler);
        else this.answerError(conn, new TypeError(`fetch handler must return a Response, got ${describe(response)}`));
      },
      (error) => this.answerError(conn, error),
    );
  }

  /** server.reload(): requests from now on go to these (one in flight finishes with its own). */
  replace(handler: Handler, errorHandler: ErrorHandler | null): void {
    this.handler = handler;
    this.errorHandler = errorHandler;
  }

  /** Promise.resolve(value).then(onValue, onError), counted as async work until it settles. */
  private whenSettled<T>(value: T | Promise<T>, onValue: (value: T) => void, onError: (error: unknown) => void): void {
    this.async.asyncBegan();
    Promise.resolve(value).then(
      (settled) => {
        this.async.asyncEnded();
        onValue(settled);
      },
      (error) => {
        this.async.asyncEnded();
        onError(error);
      },
    );
  }

  /** Sends a response that arrived outside the handler's call (a promise, an error answer), then flushes it. */
  private complete(conn: Connection, response: Response, answer: Answer): void {
    if (conn.closed) return;
    conn.sender.send(response, answer); // a failure comes back through responseFailed, never as a throw
    conn.sender.flush();
  }

  /**
   * A response failed before its head was written (ResponseSender.send rolled its bytes back): the handler's
   * is answered like a throw; a failed error answer falls back to the plain 500.
   */
  responseFailed(conn: Connection, error: unknown, answer: Answer): void {
    if (answer === Answer.Handler) {
      this.answerError(conn, error);
      return;
    }
    this.reportError(error, answer === Answer.ErrorHandler ? "the error handler's response failed:" : "the 500 failed:");
    if (answer === Answer.ErrorHandler) this.complete(conn, internalError(), Answer.Fallback);
    else conn.destroy(); // the plain 500 itself failed: nothing is left to answer with
  }

  private answerError(conn: Connection, error: unknown): void {
    this.stats.handlerErrors++;
    if (conn.closed) return;
    const fallback = () => this.complete(conn, internalError(), Answer.Fallback);
    if (!this.errorHandler) {
      this.reportError(error);
      fallback();
      return;
    }
    let answer: Response | Promise<Response>;
    try {
      answer = this.errorHandler(error);
    } catch (secondary) {
      this.reportError(secondary, "the error handler threw:");
      fallback();
      return;
    }
    this.whenSettled(
      answer,
      (response) => {
        if (runtime.isResponse(response)) this.complete(conn, response, Answer.ErrorHandler);
        else {
          this.reportError(new TypeError(`error handler must return a Response, got ${describe(response)}`));
          fallback();
        }
      },
      (secondary) => {
        this.reportError(secondary, "the error handler threw:");
        fallback();
      },
    );
  }

  reportError(error: unknown, what = "handler error:"): void {
    this.errorLog.report(`reuseport: ${what}`, error);
  }

  /** Tells what the rate limit left out, before the engine goes. */
  summarize(): void {
    this.errorLog.summarize();
  }
}

function internalError(): Response {
  return new Response("Internal Server Error", { status: 500, headers: { "content-type": "text/plain;charset=utf-8" } });
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return (value as object).constructor?.name ?? "object";
  return typeof value;
}
