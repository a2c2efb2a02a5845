// The one check of each contender's answer to a workload before it is measured: the same request
// wrk will send (all of a pipelined batch in one write), over a raw socket; every answer must have
// status 200, the workload's header fields, its body length and, where it says so, its body.
import { connect } from "node:net";

const CHECK_TIMEOUT_MS = 5_000;
const CRLF2 = Buffer.from("\r\n\r\n");

/** The request bytes wrk sends for a workload's request shape (lua: wrk.format()). */
export function requestBytes(request, port) {
  const body = request.body ?? "";
  const head = [`${request.method} ${request.path} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
  if (request.body !== undefined) head.push(`Content-Type: ${request.contentType}`, `Content-Length: ${Buffer.byteLength(body)}`);
  return Buffer.from(`${head.join("\r\n")}\r\n\r\n${body}`);
}

/** Decodes a chunked body starting at `at`; null while incomplete. */
function chunked(buffer, at) {
  const parts = [];
  for (let chunks = 0; chunks < 1_000_000; chunks++) {
    const lineEnd = buffer.indexOf("\r\n", at);
    if (lineEnd < 0) return null;
    const size = parseInt(buffer.subarray(at, lineEnd).toString("latin1"), 16);
    if (!Number.isFinite(size)) throw new Error(`bad chunk size line ${JSON.stringify(buffer.subarray(at, lineEnd).toString("latin1"))}`);
    const dataStart = lineEnd + 2;
    if (size === 0) {
      const trailerEnd = buffer.indexOf(CRLF2, lineEnd); // no trailers expected: "0\r\n\r\n"
      return trailerEnd < 0 ? null : { body: Buffer.concat(parts), end: trailerEnd + 4 };
    }
    if (buffer.length < dataStart + size + 2) return null;
    parts.push(buffer.subarray(dataStart, dataStart + size));
    at = dataStart + size + 2;
  }
  throw new Error("more than a million chunks");
}

/** Parses one response at `at`: { status, headers (lower-case names), body, end }, or null while incomplete. */
export function parseResponse(buffer, at = 0) {
  const headEnd = buffer.indexOf(CRLF2, at);
  if (headEnd < 0) return null;
  const [statusLine, ...lines] = buffer.subarray(at, headEnd).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? NaN);
  const headers = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const bodyStart = headEnd + 4;
  if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
    const decoded = chunked(buffer, bodyStart);
    return decoded && { status, headers, ...decoded };
  }
  const length = Number(headers["content-length"] ?? 0);
  if (buffer.length < bodyStart + length) return null;
  return { status, headers, body: buffer.subarray(bodyStart, bodyStart + length), end: bodyStart + length };
}

/** Sends `bytes` in one write and resolves with the first `count` responses (bounded wait). */
function exchange(port, bytes, count) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let received = Buffer.alloc(0);
    const done = (error, responses) => {
      clearTimeout(timer);
      socket.destroy();
      error ? reject(error) : resolve(responses);
    };
    const timer = setTimeout(() => done(new Error(`no ${count} complete responses within ${CHECK_TIMEOUT_MS} ms (got ${received.length} bytes)`)), CHECK_TIMEOUT_MS);
    socket.on("error", (error) => done(error));
    socket.on("connect", () => socket.write(bytes));
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk]);
      const responses = [];
      try {
        for (let at = 0; responses.length < count;) {
          const response = parseResponse(received, at);
          if (!response) return;
          responses.push(response);
          at = response.end;
        }
      } catch (error) { return done(error); }
      done(null, responses);
    });
    socket.on("end", () => done(new Error(`connection closed after ${received.length} bytes`)));
  });
}

/** What is wrong with one response for `expect`, or null. */
function problem(response, expect) {
  if (response.status !== 200) return `status ${response.status}`;
  const missing = expect.headers.filter((name) => !(name in response.headers));
  if (missing.length > 0) return `header fields missing: ${missing.join(", ")}`;
  if (response.body.length !== expect.bodyBytes) return `body of ${response.body.length} bytes, expected ${expect.bodyBytes}`;
  const verdict = expect.body ? expect.body(response.body.toString("utf8")) : true;
  return verdict === true ? null : verdict;
}

/** Throws naming the contender, the workload and what was wrong; resolves with the first response's head. */
export async function checkWorkload(server, workload) {
  const count = workload.request.pipeline ?? 1;
  const one = requestBytes(workload.request, server.port);
  let responses;
  try {
    responses = await exchange(server.port, Buffer.concat(Array.from({ length: count }, () => one)), count);
  } catch (error) {
    throw new Error(`${server.id} does not answer workload ${workload.id} (${workload.request.method} ${workload.request.path}): ${error.message}`);
  }
  responses.forEach((response, index) => {
    const why = problem(response, workload.expect);
    if (why) throw new Error(`${server.id} answers workload ${workload.id} (${workload.request.method} ${workload.request.path}) wrongly${count > 1 ? ` (response ${index + 1} of ${count})` : ""}: ${why}`);
  });
  return { status: responses[0].status, headers: responses[0].headers, bodyBytes: responses[0].body.length };
}
