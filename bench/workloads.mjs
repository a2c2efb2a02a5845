// The workloads of `npm run bench`: what wrk sends, what a correct answer is (checked once per
// contender before measuring), which contenders run it and which goals apply. The routes are
// bench/app.ts's (and servers/node-http.mjs's).

const JSON_BODY_BYTES = 1024;
const UPLOAD_BYTES = 64 * 1024;
const PIPELINE_DEPTH = 16;

/** A deterministic JSON document of exactly `bytes` bytes that survives JSON.parse + JSON.stringify unchanged. */
export function jsonBody(bytes) {
  const items = [];
  for (let id = 0; JSON.stringify({ items }).length < bytes - 64; id++) {
    items.push({ id, name: `item-${String(id).padStart(4, "0")}`, tags: ["a", "b"], ok: id % 2 === 0 });
  }
  const without = JSON.stringify({ items, pad: "" }).length;
  const text = JSON.stringify({ items, pad: "x".repeat(bytes - without) });
  if (text.length !== bytes) throw new Error(`jsonBody: built ${text.length} bytes, wanted ${bytes}`);
  return text;
}

/** Header fields TechEmpower's plaintext and JSON rules ask for (lower case); every answer of a known
 * length must carry them, a streamed one all but Content-Length. */
const HEADERS = ["server", "date", "content-type", "content-length"];
const STREAMED_HEADERS = ["server", "date", "content-type"];

// Goals: ratio of ours to the runtime's own server, in req/CPU-s (perCpuS) and in req/s (rps).
const RUNTIME_GOALS = [
  { ours: "ours-bun", than: "bun-serve", perCpuS: 1.2, rps: 1.0 },
  { ours: "ours-deno", than: "deno-serve", perCpuS: 1.1, rps: 1.0 },
];
const PIPELINED_GOALS = [
  { ours: "ours-bun", than: "bun-serve", rps: 5 },
  { ours: "ours-deno", than: "deno-serve", rps: 5 },
];
const FLOOR_RATIOS = [{ ours: "ours-bun", than: "floor" }, { ours: "ours-deno", than: "floor" }];

const plaintextBody = (text) => text === "Hello, World!" || "body is not \"Hello, World!\"";
const FETCH_CONTENDERS = ["ours-bun", "ours-deno", "bun-serve", "deno-serve", "node-http"];
const WITH_FLOOR = [...FETCH_CONTENDERS, "floor"];

/**
 * Each workload: id, title, request ({ method, path, body?, contentType?, pipeline? }), connections
 * (null: the run's CONNECTIONS), contenders, expect ({ bodyBytes, headers, body? (text => true or why
 * not) }), goals and floor ratios.
 */
export function workloads() {
  const json = jsonBody(JSON_BODY_BYTES);
  return [
    {
      id: "plaintext", title: "Plaintext (TechEmpower rules)", request: { method: "GET", path: "/plaintext" },
      contenders: WITH_FLOOR, expect: { bodyBytes: 13, headers: HEADERS, body: plaintextBody },
      goals: RUNTIME_GOALS, floorRatios: FLOOR_RATIOS,
    },
    {
      id: "json", title: "JSON (TechEmpower rules, Response.json)", request: { method: "GET", path: "/json" },
      contenders: FETCH_CONTENDERS,
      expect: {
        bodyBytes: 27, headers: HEADERS,
        body: (text) => text === '{"message":"Hello, World!"}' || `body is not {"message":"Hello, World!"}`,
      },
      goals: RUNTIME_GOALS,
    },
    {
      id: "hono-user", title: "Hono route with a parameter, c.json()", request: { method: "GET", path: "/user/42" },
      contenders: FETCH_CONTENDERS,
      expect: { bodyBytes: 74, headers: HEADERS, body: (text) => JSON.parse(text).id === "42" || "id is not \"42\"" },
      goals: RUNTIME_GOALS,
    },
    {
      id: "post-echo-1k", title: "POST 1 KiB JSON echo (await req.json())",
      request: { method: "POST", path: "/echo", body: json, contentType: "application/json" },
      contenders: FETCH_CONTENDERS,
      expect: { bodyBytes: JSON_BODY_BYTES, headers: HEADERS, body: (text) => text === json || "echo differs from the request body" },
      goals: RUNTIME_GOALS,
    },
    {
      id: "upload-64k", title: "POST 64 KiB upload read with arrayBuffer()",
      request: { method: "POST", path: "/upload", body: "u".repeat(UPLOAD_BYTES), contentType: "application/octet-stream" },
      contenders: FETCH_CONTENDERS,
      expect: { bodyBytes: 5, headers: HEADERS, body: (text) => text === String(UPLOAD_BYTES) || `answer is not ${UPLOAD_BYTES}` },
      goals: RUNTIME_GOALS,
    },
    {
      id: "text-32k", title: "32 KiB string body", request: { method: "GET", path: "/text32k" },
      contenders: FETCH_CONTENDERS, expect: { bodyBytes: 32 * 1024, headers: HEADERS }, goals: RUNTIME_GOALS,
    },
    {
      id: "bytes-256k", title: "256 KiB Uint8Array body", request: { method: "GET", path: "/bytes256k" },
      contenders: FETCH_CONTENDERS, expect: { bodyBytes: 256 * 1024, headers: HEADERS }, goals: RUNTIME_GOALS,
    },
    {
      id: "stream-16x4k", title: "ReadableStream body, 16 chunks of 4 KiB", request: { method: "GET", path: "/stream" },
      contenders: FETCH_CONTENDERS, expect: { bodyBytes: 16 * 4 * 1024, headers: STREAMED_HEADERS },
      goals: RUNTIME_GOALS,
    },
    {
      id: "pipelined-16", title: `Plaintext, ${PIPELINE_DEPTH} pipelined requests per write`,
      request: { method: "GET", path: "/plaintext", pipeline: PIPELINE_DEPTH },
      contenders: WITH_FLOOR, expect: { bodyBytes: 13, headers: HEADERS, body: plaintextBody },
      goals: PIPELINED_GOALS, floorRatios: FLOOR_RATIOS,
    },
    {
      id: "plaintext-c1", title: "Plaintext, 1 connection", request: { method: "GET", path: "/plaintext" }, connections: 1,
      contenders: WITH_FLOOR, expect: { bodyBytes: 13, headers: HEADERS, body: plaintextBody },
      goals: RUNTIME_GOALS, floorRatios: FLOOR_RATIOS,
    },
    {
      id: "plaintext-c256", title: "Plaintext, 256 connections", request: { method: "GET", path: "/plaintext" }, connections: 256,
      contenders: WITH_FLOOR, expect: { bodyBytes: 13, headers: HEADERS, body: plaintextBody },
      goals: RUNTIME_GOALS, floorRatios: FLOOR_RATIOS,
    },
  ];
}
