// Bun.serve and Deno.serve programs with only the import changed: the handler's second argument (Bun's
// server, Deno's info), Bun's routes, numeric-string ports, the startup line, options not supported yet (TLS).
import { assert, test } from "../_harness.ts";
import { withClient, withServer } from "../_http.ts";
import { announcedPort, listenersOn } from "../_cluster.ts";
import { ConfigError, serve } from "../../src/index.ts";
import { Router } from "../../src/http/routes.ts";
import { runtimeName } from "../_runtime.ts";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";

const CLI = fileURLToPath(new URL("../../bin/reuseport.mjs", import.meta.url));
const ROUTES_APP = fileURLToPath(new URL("../fixtures/routes-app.ts", import.meta.url));
const STARTUP = fileURLToPath(new URL("../fixtures/startup-line.ts", import.meta.url));
type Params = Request & { params: Record<string, string> };

async function get(base: string, path: string, init?: RequestInit): Promise<{ status: number; body: string; headers: Headers }> {
  const response = await fetch(base + path, { redirect: "manual", ...init });
  return { status: response.status, body: await response.text(), headers: response.headers };
}

/** Bun's own routes example (docs: Bun.serve), unchanged but for the import. */
const bunDocsRoutes = () => ({
  // Static routes
  "/api/status": new Response("OK"),
  // Dynamic routes
  "/users/:id": (req: Params) => {
    return new Response(`Hello User ${req.params.id}!`);
  },
  // Per-HTTP method handlers
  "/api/posts": {
    GET: () => new Response("List posts"),
    POST: async (req: Request) => {
      const body = await req.json();
      return Response.json({ created: true, ...body });
    },
  },
  // Wildcard route for all routes that start with "/api/" and aren't otherwise matched
  "/api/*": Response.json({ message: "Not found" }, { status: 404 }),
  // Redirect from /blog/hello to /blog/hello/world
  "/blog/hello": Response.redirect("http://localhost/blog/hello/world"),
});

test("dropin: Bun's routes example answers as Bun documents it", () =>
  withServer(() => new Response("fetch"), { routes: bunDocsRoutes() }, async (_server, base) => {
    assert.deepEqual([(await get(base, "/api/status")).status, (await get(base, "/api/status")).body], [200, "OK"]);
    assert.equal((await get(base, "/users/42")).body, "Hello User 42!");
    assert.equal((await get(base, "/users/%E2%9C%93%20x")).body, "Hello User ✓ x!", "parameters are percent-decoded");
    assert.equal((await get(base, "/api/posts")).body, "List posts");
    const created = await get(base, "/api/posts", { method: "POST", body: JSON.stringify({ title: "t" }) });
    assert.deepEqual(JSON.parse(created.body), { created: true, title: "t" });
    const missing = await get(base, "/api/nothing/here");
    assert.equal(missing.status, 404);
    assert.deepEqual(JSON.parse(missing.body), { message: "Not found" });
    assert.match(missing.headers.get("content-type") ?? "", /^application\/json/);
    const redirect = await get(base, "/blog/hello");
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get("location"), "http://localhost/blog/hello/world");
    assert.equal((await get(base, "/elsewhere?x=1")).body, "fetch", "unmatched paths go to fetch");
    const head = await fetch(`${base}/api/posts`, { method: "HEAD" });
    assert.equal(head.status, 200, "HEAD takes the GET handler");
    assert.equal(await head.text(), "");
  }));

test("dropin: route precedence: exact, then parameters, then wildcards, then the global catch-all", () =>
  withServer(() => new Response("fetch"), {
    routes: {
      "/api/users/me": () => new Response("Current user"),
      "/api/users/:id": (req: Params) => new Response(`User ${req.params.id}`),
      "/api/*": () => new Response("API catch-all"),
      "/*": () => new Response("Global catch-all"),
      "/orgs/:org/repos/:repo": (req: Params) => Response.json(req.params),
      "/orgs/:org/settings": (req: Params) => new Response(`settings of ${req.params.org}`),
      "/skip": false,
    },
  }, async (_server, base) => {
    assert.equal((await get(base, "/api/users/me")).body, "Current user");
    assert.equal((await get(base, "/api/users/7")).body, "User 7");
    assert.equal((await get(base, "/api/users/7/more")).body, "API catch-all", "a parameter takes one segment");
    assert.equal((await get(base, "/api/")).body, "API catch-all");
    assert.equal((await get(base, "/")).body, "Global catch-all");
    assert.equal((await get(base, "/x/y/z")).body, "Global catch-all");
    assert.deepEqual(JSON.parse((await get(base, "/orgs/a/repos/b")).body), { org: "a", repo: "b" });
    assert.equal((await get(base, "/orgs/a/settings")).body, "settings of a", "a static segment after a parameter");
    assert.equal((await get(base, "/skip")).body, "fetch", "false hands the request to fetch");
  }));

test("dropin: without fetch, no route is 404 and a route without the method is 405 with Allow", () => {
  const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {}, routes: { "/only-post": { POST: () => new Response("posted") } } });
  return (async () => {
    try {
      const base = `http://127.0.0.1:${server.port}`;
      assert.equal((await get(base, "/nothing")).status, 404);
      const wrong = await get(base, "/only-post");
      assert.equal(wrong.status, 405);
      assert.equal(wrong.headers.get("allow"), "POST");
      assert.equal((await get(base, "/only-post", { method: "POST", body: "" })).body, "posted");
    } finally {
      await server.stop(false);
    }
  })();
});

test("dropin: a static route's Response is sent for every request without calling anything, unconsumed", () => {
  const health = new Response("OK", { headers: { "x-ready": "1" } });
  let fetches = 0;
  return withServer(() => (fetches++, new Response("fetch")), { routes: { "/health": health } }, async (_server, base) => {
    for (let i = 0; i < 50; i++) {
      const answer = await get(base, "/health");
      assert.deepEqual([answer.status, answer.body, answer.headers.get("x-ready")], [200, "OK", "1"]);
    }
    assert.equal(fetches, 0);
    assert.equal(health.bodyUsed, false, "the route's Response itself is never read");
  });
});

test("dropin: bad routes are refused before anything opens, naming the route", () => {
  const bad: [unknown, RegExp][] = [
    [{ "no-slash": () => new Response("") }, /routes\["no-slash"\] must start with \//],
    [{ "/a/*/b": () => new Response("") }, /may have \* only as its last segment/],
    [{ "/a/:x/:x": () => new Response("") }, /names parameter :x twice/],
    [{ "/a": { FETCH: () => new Response("") } }, /routes\["\/a"\]\.FETCH is not an HTTP method/],
    [{ "/a": 42 }, /must be a handler, a Response, an object of methods or false, got number/],
    [{ "/static/*": { dir: "./public" } }, /\{ dir \} routes are not supported yet/],
    ["/a", /routes must be an object of paths, got string/],
  ];
  for (const [routes, message] of bad) {
    // deno-lint-ignore no-explicit-any
    assert.throws(() => serve({ port: 0, routes: routes as any, onListen() {} }), (e: unknown) => e instanceof ConfigError && message.test((e as Error).message), String(message));
  }
});

test("dropin: route lookup cost stays flat from 10 to 1,000 parameter routes", () => {
  const routesOf = (n: number) => {
    const routes: Record<string, () => Response> = {};
    for (let i = 0; i < n; i++) routes[`/r${i}/:id/items/:item`] = () => new Response("");
    return new Router(routes);
  };
  const perLookup = (router: Router, n: number) => {
    const paths = Array.from({ length: 64 }, (_, i) => `/r${(i * 7919) % n}/42/items/${i}`);
    let best = Infinity;
    for (let round = 0; round < 5; round++) {
      const start = performance.now();
      for (let i = 0; i < 20_000; i++) assert.ok(router.match(paths[i & 63]));
      best = Math.min(best, performance.now() - start);
    }
    return best;
  };
  const small = perLookup(routesOf(10), 10);
  const large = perLookup(routesOf(1000), 1000);
  // A linear scan would cost ~100x more at 1,000 routes; a lookup by segments costs about the same.
  assert.ok(large < small * 5 + 5, `1,000 routes: ${large.toFixed(1)} ms against ${small.toFixed(1)} ms for 10 (20,000 lookups)`);
});

test("dropin: the handler's second argument is Bun's server and Deno's info, per request", () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const seen: Record<string, unknown>[] = [];
  return withServer(async (req, server) => {
    const path = new URL(req.url).pathname;
    if (path === "/wait") await gate; // read the argument after another request was answered
    const completed = server.completed;
    seen.push({ path, ip: server.requestIP(req), remote: server.remoteAddr, port: server.port, pending: server.pendingRequests });
    void completed.then(() => seen.push({ completed: path }));
    return Response.json({ path, remotePort: server.remoteAddr.port, hostname: server.hostname, url: server.url.href });
  }, {}, async (served, base) => {
    const waiting = fetch(`${base}/wait`);
    const quick = await (await fetch(`${base}/quick`)).json();
    release();
    const late = await (await waiting).json();
    assert.equal(quick.path, "/quick");
    assert.equal(late.path, "/wait");
    assert.notEqual(late.remotePort, quick.remotePort, "two connections, each request sees its own");
    assert.equal(late.hostname, "127.0.0.1");
    assert.equal(late.url, served.url.href);
    for (const entry of seen.filter((e) => "ip" in e)) {
      const { ip, remote, port } = entry as { ip: { address: string; port: number; family: string }; remote: { hostname: string; port: number; transport: string }; port: number };
      assert.equal(ip.address, "127.0.0.1");
      assert.equal(ip.family, "IPv4");
      assert.equal(ip.port, remote.port, "requestIP(req) and info.remoteAddr agree");
      assert.equal(remote.transport, "tcp");
      assert.equal(port, served.port);
      assert.ok((entry.pending as number) >= 1, "pendingRequests counts this one");
    }
    for (let i = 0; i < 100 && seen.filter((e) => "completed" in e).length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(seen.filter((e) => "completed" in e).map((e) => e.completed).sort(), ["/quick", "/wait"], "info.completed settles for each request");
  });
});

test("dropin: without websocket handlers server.upgrade() throws saying what to pass; publish to no subscriber sends nothing", () =>
  withServer((req, server) => {
    let upgrade = "";
    try {
      server.upgrade(req);
    } catch (error) {
      upgrade = (error as Error).message;
    }
    return Response.json({ upgrade, published: server.publish("topic", "x"), subscribers: server.subscriberCount("topic"), sockets: server.pendingWebSockets });
  }, {}, async (_server, base) => {
    const answer = await (await fetch(`${base}/`)).json();
    assert.match(answer.upgrade, /pass websocket: \{ message/);
    assert.equal(answer.published, 0);
    assert.equal(answer.subscribers, 0);
    assert.equal(answer.sockets, 0);
  }));

test("dropin: server.reload({ routes, fetch }) swaps what answers; other options are refused", () =>
  withServer(() => new Response("v1"), { routes: { "/r": new Response("route v1") } }, async (server, base) => {
    assert.equal((await get(base, "/")).body, "v1");
    assert.equal((await get(base, "/r")).body, "route v1");
    server.reload({ fetch: () => new Response("v2"), routes: { "/r": () => new Response("route v2"), "/new": new Response("new") } });
    assert.equal((await get(base, "/")).body, "v2");
    assert.equal((await get(base, "/r")).body, "route v2");
    assert.equal((await get(base, "/new")).body, "new");
    // deno-lint-ignore no-explicit-any
    assert.throws(() => server.reload({ port: 1 } as any), /port cannot change in server.reload\(\)/);
    assert.equal((await get(base, "/")).body, "v2", "a refused reload changes nothing");
  }));

test("dropin: port takes a numeric string (process.env.PORT); other strings are refused naming port", async () => {
  const server = serve({ hostname: "127.0.0.1", port: "0", onListen() {}, fetch: () => new Response("string port") });
  try {
    assert.ok(server.port > 0);
    assert.equal((await get(`http://127.0.0.1:${server.port}`, "/")).body, "string port");
  } finally {
    await server.stop(false);
  }
  for (const port of ["80a", "", "-1", "1.5"]) {
    assert.throws(() => serve({ port, onListen() {}, fetch: () => new Response("") }), (e: unknown) => e instanceof ConfigError && /^port must be an integer from 0 to 65535/.test((e as Error).message), port);
  }
  assert.throws(() => serve({ port: "70000", onListen() {}, fetch: () => new Response("") }), /port/);
});

test("dropin: tls, cert and key are refused as not supported yet, with what to do instead", () => {
  for (const [key, value, message] of [
    ["tls", { cert: "x", key: "y" }, /tls is not supported yet: TLS .* terminate TLS in front/],
    ["cert", "x", /cert is not supported yet/],
    ["key", "y", /key is not supported yet/],
  ] as const) {
    assert.throws(() => serve({ port: 0, fetch: () => new Response(""), [key]: value } as never), (e: unknown) => e instanceof ConfigError && message.test((e as Error).message), key);
  }
});

test("dropin: a one-engine serve() prints one startup line on stderr, as Deno.serve does; onListen replaces it", () => {
  const runtime = runtimeName === "deno" ? [process.execPath, "run", "-A", "--no-check", STARTUP] : [process.execPath, STARTUP];
  const loud = spawnSync(runtime[0], [...runtime.slice(1)], { encoding: "utf8", timeout: 30_000 });
  assert.equal(loud.status, 0, loud.stderr);
  const port = /port (\d+)/.exec(loud.stdout)?.[1];
  assert.ok(port, loud.stdout);
  assert.equal(loud.stderr.trim(), `Listening on http://127.0.0.1:${port}/`);
  const quiet = spawnSync(runtime[0], [...runtime.slice(1), "quiet"], { encoding: "utf8", timeout: 30_000 });
  assert.equal(quiet.status, 0, quiet.stderr);
  assert.equal(quiet.stderr, "", "with onListen nothing is printed");
});

test("dropin: reuseport serve runs a module's default export { routes, fetch } in every worker", async () => {
  const child = spawn("node", [CLI, "serve", ROUTES_APP, "--port", "0", "--workers", "2", "--hostname", "127.0.0.1"], {
    env: { ...process.env, REUSEPORT_RUNTIME: runtimeName, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  try {
    const port = await announcedPort(child);
    assert.equal(listenersOn(port), 2);
    const base = `http://127.0.0.1:${port}`;
    const pids = new Set<number>();
    for (let i = 0; i < 40 && pids.size < 2; i++) {
      const agent = await fetch(`${base}/users/u${i}`, { headers: { connection: "close" } });
      const body = await agent.json();
      assert.equal(body.id, `u${i}`);
      pids.add(body.pid);
    }
    assert.equal((await get(base, "/health")).body, "OK");
    assert.deepEqual(JSON.parse((await get(base, "/items", { method: "POST", body: "[1]" })).body), { got: [1] });
    assert.equal((await get(base, "/other")).body, "fallback");
    if (runtimeName === "deno") assert.equal(pids.size, 2, "both worker processes answered routes");
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
  assert.doesNotMatch(stderr, /panic|Segmentation fault/);
}, { timeoutMs: 40_000 });

test("dropin: under Deno, one error names every permission flag that is missing", () => {
  if (runtimeName !== "deno") return; // Bun has no permissions
  const run = (flags: string[], workers: string) =>
    spawnSync(process.execPath, ["run", "--no-check", ...flags, STARTUP, "loud", workers], { encoding: "utf8", timeout: 30_000 });
  const bare = run(["--allow-net"], "1");
  assert.notEqual(bare.status, 0);
  assert.match(bare.stderr, /PermissionError: reuseport needs --allow-env --allow-read --allow-ffi to load its native library/);
  const single = run(["--allow-env", "--allow-read", "--allow-ffi"], "1");
  assert.equal(single.status, 0, single.stderr);
  const cluster = run(["--allow-env", "--allow-read", "--allow-ffi"], "2");
  assert.notEqual(cluster.status, 0);
  assert.match(cluster.stderr, /PermissionError: reuseport needs --allow-run --allow-sys --allow-write --allow-net to run a cluster/);
});

test("dropin: a Deno.serve program that reads info, with only the import changed", async () => {
  // Deno's docs: Deno.serve({ port, hostname, onListen }, (req, info) => ...) becomes serve(...).
  const server = serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req, info) => {
    return new Response(`Hello ${info.remoteAddr.hostname} from ${new URL(req.url).pathname}`);
  });
  try {
    assert.equal(await (await fetch(`http://127.0.0.1:${server.port}/deno`)).text(), "Hello 127.0.0.1 from /deno");
    assert.equal(server.addr.port, server.port);
  } finally {
    await server.shutdown();
  }
});
/** The runtime's own server (Bun.serve or Deno.serve) with the same handler. */
function runtimeServe(fetch: (request: Request) => Response | Promise<Response>): { base: string; stop: () => Promise<void> } {
  const g = globalThis as unknown as {
    Bun?: { serve(o: object): { port: number; stop(force: boolean): Promise<void> } };
    Deno?: { serve(o: object, h: typeof fetch): { addr: { port: number }; shutdown(): Promise<void> } };
  };
  if (runtimeName === "bun") {
    const server = g.Bun!.serve({ hostname: "127.0.0.1", port: 0, fetch });
    return { base: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
  }
  const server = g.Deno!.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, fetch);
  return { base: `http://127.0.0.1:${server.addr.port}`, stop: () => server.shutdown() };
}

const BODY_KINDS: Record<string, () => Response> = {
  "string": () => new Response("text"),
  "string, init": () => new Response("text", { status: 201 }),
  "Response.json": () => Response.json({ a: 1 }),
  "Response.json, status": () => Response.json({ a: 1 }, { status: 404 }),
  "Uint8Array": () => new Response(new Uint8Array([1, 2, 3])),
  "ArrayBuffer": () => new Response(new Uint8Array([1, 2, 3]).buffer),
  "Blob with a type": () => new Response(new Blob(["<b>x</b>"], { type: "text/html" })),
  "Blob without a type": () => new Response(new Blob(["x"])),
  "File": () => new Response(new File(["{}"], "a.json", { type: "application/json" })),
  "URLSearchParams": () => new Response(new URLSearchParams({ a: "1", b: "2" })),
  "FormData": () => {
    const form = new FormData();
    form.append("a", "1");
    return new Response(form);
  },
  "ReadableStream": () => new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("s")); c.close(); } })),
  "null body": () => new Response(null, { status: 204 }),
  "explicit Content-Type": () => new Response("x", { headers: { "content-type": "application/x-custom" } }),
};

test("dropin: every body kind gets the Content-Type the runtime's own server sends", async () => {
  const handler = (request: Request) => BODY_KINDS[decodeURIComponent(new URL(request.url).pathname.slice(1))]();
  const theirs = runtimeServe(handler);
  const ours = serve({ hostname: "127.0.0.1", port: 0, onListen() {}, fetch: handler });
  const differences: string[] = [];
  try {
    for (const kind of Object.keys(BODY_KINDS)) {
      const path = `/${encodeURIComponent(kind)}`;
      const [a, b] = await Promise.all([fetch(theirs.base + path), fetch(`http://127.0.0.1:${ours.port}${path}`)]);
      const [bodyA, bodyB] = await Promise.all([a.arrayBuffer(), b.arrayBuffer()]);
      // A multipart boundary is random: compare what comes before it.
      const type = (r: Response) => (r.headers.get("content-type") ?? "(none)").replace(/boundary=.*/, "boundary=…").toLowerCase();
      if (type(a) !== type(b)) differences.push(`${kind}: ${runtimeName} sends ${type(a)}, ours ${type(b)}`);
      if (a.status !== b.status) differences.push(`${kind}: status ${a.status} against ${b.status}`);
      if (kind !== "FormData" && bodyA.byteLength !== bodyB.byteLength) differences.push(`${kind}: ${bodyA.byteLength} body bytes against ${bodyB.byteLength}`);
    }
  } finally {
    await Promise.all([theirs.stop(), ours.stop(false)]);
  }
  assert.deepEqual(differences, []);
});

test("dropin: server.timeout(request, seconds) sets that connection's idle timeout; 0 lets it stay idle", async () => {
  const handler = (req: Request, server: { timeout(r: Request, s: number): void }) => {
    const path = new URL(req.url).pathname;
    if (path === "/short") server.timeout(req, 0.2);
    if (path === "/forever") server.timeout(req, 0);
    return new Response(path);
  };
  const ask = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
  // /short on a server whose idle timeout is 30 s: closed after its own 0.2 s.
  await withServer(handler, { idleTimeout: 30 }, (server) =>
    withClient(server.port, async (client) => {
      await client.write(ask("/short"));
      await client.closedByPeer(10_000);
    }));
  // /forever on a server whose idle timeout is 0.4 s: still served after four of those.
  await withServer(handler, { idleTimeout: 0.4 }, async (server) => {
    await withClient(server.port, async (client) => {
      await client.write(ask("/forever"));
      await client.until((text) => text.endsWith("/forever"));
      await new Promise((resolve) => setTimeout(resolve, 1600));
      await client.write(ask("/again"));
      assert.match(await client.until((text) => text.endsWith("/again")), /\/again$/);
    });
    assert.throws(() => server.timeout(new Request("http://x/"), -1), /timeout seconds must be a non-negative number/);
  });
});

test("dropin: health answers its path before routes and handler, 503 while stop() drains; bad health options are refused", async () => {
  let calls = 0;
  const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {}, health: { drainDelayMs: 300 }, routes: { "/*": () => (calls++, new Response("route")) } });
  const base = `http://127.0.0.1:${server.port}`;
  assert.deepEqual([(await get(base, "/healthz")).status, (await get(base, "/healthz?probe=1")).body], [200, "ok"]);
  assert.equal((await get(base, "/healthz", { method: "POST", body: "" })).body, "route", "only GET and HEAD are the endpoint's");
  assert.equal(calls, 1);
  const stopped = server.stop();
  const draining = await get(base, "/healthz");
  assert.deepEqual([draining.status, draining.body, draining.headers.get("cache-control")], [503, "draining", "no-store"]);
  assert.equal((await get(base, "/other")).body, "route", "still serving while it drains");
  await stopped;
  for (const [health, message] of [
    [{ path: "healthz" }, /health.path must be a path starting with \//],
    [{ drainDelayMs: -1 }, /health.drainDelayMs must be an integer from 0 to 60000/],
    [{ every: 1 }, /health.every is not a health option/],
    ["yes", /health must be true, false or/],
  ] as const) {
    assert.throws(() => serve({ port: 0, onListen() {}, fetch: () => new Response(""), health: health as never }), (e: unknown) => e instanceof ConfigError && message.test((e as Error).message));
  }
});

test("dropin: a streamed body's first chunk goes out before its second is made (an event stream is not held back)", async () => {
  let release!: () => void;
  const secondMayCome = new Promise<void>((resolve) => (release = resolve));
  await withServer(() => new Response(new ReadableStream({
    async start(controller) {
      controller.enqueue(new TextEncoder().encode("data: first\n\n"));
      await secondMayCome; // made only once the client has the first
      controller.enqueue(new TextEncoder().encode("data: second\n\n"));
      controller.close();
    },
  }), { headers: { "content-type": "text/event-stream" } }), {}, async (_server, base) => {
    const response = await fetch(`${base}/`);
    const reader = response.body!.getReader();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const first = await Promise.race([
      reader.read(),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("the first chunk was held back")), 5000))),
    ]);
    clearTimeout(timer);
    assert.equal(new TextDecoder().decode(first.value), "data: first\n\n");
    release();
    let rest = "";
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value);
    assert.equal(rest, "data: second\n\n");
  });
});
