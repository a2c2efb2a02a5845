// Contender node-http: node:http under node, with native handlers for the same routes as
// bench/app.ts (same bodies, same Server header). Listens on 127.0.0.1, port 0 (or $PORT), and
// prints exactly one line `listening <port>` when ready. BENCH_WORKERS=N (unset: no cluster): a
// node:cluster of N workers behind one accept point (the primary accepts and hands each connection
// to a worker round-robin, SCHED_RR, node's default on Linux); the primary prints the line once
// all listen.
import cluster from "node:cluster";
import { createServer } from "node:http";

const SERVER = "bench";
const TEXT_BYTES = 32 * 1024;
const BYTES_BYTES = 256 * 1024;
const STREAM_CHUNKS = 16;
const STREAM_CHUNK_BYTES = 4 * 1024;
const LISTEN_TIMEOUT_MS = 20_000;

const workers = Number(process.env.BENCH_WORKERS ?? 0);
const text32k = "x".repeat(TEXT_BYTES);
const bytes256k = Buffer.alloc(BYTES_BYTES, 120);
const streamChunk = Buffer.alloc(STREAM_CHUNK_BYTES, 121);
const USER = /^\/user\/([^/]+)$/;

function send(response, status, type, body) {
  response.writeHead(status, { server: SERVER, "content-type": type, "content-length": Buffer.byteLength(body) });
  response.end(body);
}

function readBody(request, done) {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => done(Buffer.concat(chunks)));
}

/** 16 chunks, each written once the socket took the previous one (as a pulled stream is). */
function stream(response) {
  response.writeHead(200, { server: SERVER, "content-type": "application/octet-stream" });
  let sent = 0;
  const next = () => {
    while (sent < STREAM_CHUNKS) {
      sent++;
      if (!response.write(streamChunk)) return response.once("drain", next);
    }
    response.end();
  };
  next();
}

function handle(request, response) {
  const path = request.url;
  switch (path) {
    case "/plaintext": return send(response, 200, "text/plain", "Hello, World!");
    case "/json": return send(response, 200, "application/json", JSON.stringify({ message: "Hello, World!" }));
    case "/echo": return readBody(request, (body) => send(response, 200, "application/json", JSON.stringify(JSON.parse(body.toString("utf8")))));
    case "/upload": return readBody(request, (body) => send(response, 200, "text/plain", String(body.byteLength)));
    case "/text32k": return send(response, 200, "text/plain", text32k);
    case "/bytes256k": return send(response, 200, "application/octet-stream", bytes256k);
    case "/stream": return stream(response);
  }
  const user = USER.exec(path);
  if (user) {
    const body = JSON.stringify({ id: user[1], name: "Ada Lovelace", roles: ["admin", "author"], active: true });
    return send(response, 200, "application/json", body);
  }
  send(response, 404, "text/plain", "not found");
}

function listen(onPort) {
  const server = createServer({ keepAliveTimeout: 60_000 }, handle);
  server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => onPort(server.address().port));
}

if (workers === 0) {
  listen((port) => console.log(`listening ${port}`));
} else if (cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_RR; // the default on Linux, set so NODE_CLUSTER_SCHED_POLICY cannot change it
  const ports = [];
  const timer = setTimeout(() => { console.error(`workers did not listen within ${LISTEN_TIMEOUT_MS} ms`); process.exit(1); }, LISTEN_TIMEOUT_MS);
  for (let i = 0; i < workers; i++) {
    cluster.fork().on("message", (message) => {
      ports.push(message.port);
      if (ports.length < workers) return;
      clearTimeout(timer);
      console.log(`listening ${ports[0]}`);
    });
  }
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => {
      for (const worker of Object.values(cluster.workers)) worker.process.kill("SIGTERM");
      process.exit(0);
    });
  }
} else {
  listen((port) => process.send({ port }));
}
