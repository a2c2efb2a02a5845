// The one fetch handler every fetch-style contender serves (ours on Bun and Deno, Bun.serve,
// Deno.serve), routed by path, so each server runs the same handler code. node:http gets the
// same routes as native handlers in servers/node-http.mjs; bench/workloads.mjs says which
// request each workload sends and what its response must be.
import { Hono } from "hono";

/** TechEmpower asks for a Server header on plaintext and JSON; every route sends the same one. */
const SERVER = "bench";
const TEXT_BYTES = 32 * 1024;
const BYTES_BYTES = 256 * 1024;
const STREAM_CHUNKS = 16;
const STREAM_CHUNK_BYTES = 4 * 1024;

const text32k = "x".repeat(TEXT_BYTES);
const bytes256k = new Uint8Array(BYTES_BYTES).fill(120);
const streamChunk = new Uint8Array(STREAM_CHUNK_BYTES).fill(121);

const hono = new Hono();
hono.get("/user/:id", (c) => {
  c.header("server", SERVER);
  return c.json({ id: c.req.param("id"), name: "Ada Lovelace", roles: ["admin", "author"], active: true });
});

function streamed(): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(streamChunk);
      if (++sent === STREAM_CHUNKS) controller.close();
    },
  });
}

async function echo(request: Request): Promise<Response> {
  return Response.json(await request.json(), { headers: { server: SERVER } });
}

async function upload(request: Request): Promise<Response> {
  const body = await request.arrayBuffer();
  return new Response(String(body.byteLength), { headers: { server: SERVER, "content-type": "text/plain" } });
}

/** Not async: routes that need no await answer synchronously, as an app written for speed would. */
export function fetch(request: Request): Response | Promise<Response> {
  const url = request.url;
  const path = url.slice(url.indexOf("/", url.indexOf("//") + 2)); // no URL object on the hot path
  switch (path) {
    case "/plaintext":
      return new Response("Hello, World!", { headers: { server: SERVER, "content-type": "text/plain" } });
    case "/json":
      return Response.json({ message: "Hello, World!" }, { headers: { server: SERVER } });
    case "/echo":
      return echo(request);
    case "/upload":
      return upload(request);
    case "/text32k":
      return new Response(text32k, { headers: { server: SERVER, "content-type": "text/plain" } });
    case "/bytes256k":
      return new Response(bytes256k, { headers: { server: SERVER, "content-type": "application/octet-stream" } });
    case "/stream":
      return new Response(streamed(), { headers: { server: SERVER, "content-type": "application/octet-stream" } });
  }
  if (path.startsWith("/user/")) return hono.fetch(request);
  return new Response("not found", { status: 404, headers: { server: SERVER } });
}
