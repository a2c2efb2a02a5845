// UDP: a reuseport group of datagram servers, batched replies, and kernel drops made visible.
import { assert, test } from "../_harness.ts";
import { Listener } from "../../src/net/listener.ts";
import { DatagramBatch } from "../../src/udp/batch.ts";
import { kernelDrops } from "../../src/udp/server.ts";
import { serveUdp } from "../../src/index.ts";
import { lib } from "../../src/ffi/index.ts";
import { SO_RCVBUF, SOL_SOCKET } from "../../src/net/constants.ts";
import { ConfigError } from "../../src/errors.ts";
import { ClusterChild, UDP_FIXTURE, udpSocketsOn } from "../_cluster.ts";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { runtimeName } from "../_runtime.ts";
import type { UdpServer } from "../../src/udp/server.ts";

test("udp: two servers in one group echo 200 datagrams from 20 clients, both get some", async () => {
  const echo = (message: Uint8Array, _peer: unknown, reply: (b: Uint8Array) => void) => reply(message);
  const first = serveUdp({ hostname: "127.0.0.1", port: 0, onMessage: echo });
  const second = serveUdp({ hostname: "127.0.0.1", port: first.port, onMessage: echo });
  const clients: Listener[] = [];
  const batch = new DatagramBatch(16, 64);
  try {
    for (let c = 0; c < 20; c++) clients.push(await Listener.open({ hostname: "127.0.0.1", port: 0, transport: "udp", reusePort: false }));
    const target = { family: "IPv4" as const, address: "127.0.0.1", port: first.port };
    for (const client of clients) {
      for (let i = 0; i < 10; i++) batch.set(i, new TextEncoder().encode(`ping ${i}`), target);
      assert.equal(batch.send(client.fd, 10), 10);
    }
    let echoed = 0;
    const deadline = Date.now() + 5000;
    while (echoed < 200 && Date.now() < deadline) {
      for (const client of clients) echoed += batch.receive(client.fd);
      // The servers run on this thread's event loop: yield to it (no timed sleep) until the replies are in.
      if (echoed < 200) await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(echoed, 200);
    const [a, b] = [first.stats(), second.stats()];
    assert.equal(a.received + b.received, 200);
    assert.equal(a.sent + b.sent, 200);
    assert.ok(a.received > 0 && b.received > 0, `both servers of the group received: ${a.received}/${b.received}`);
    assert.equal(a.sendDrops + b.sendDrops, 0);
  } finally {
    first.close();
    second.close();
    await Promise.all([first.closed, second.closed]); // Deno's wait on each loop's wake fd has returned
    batch.close();
    for (const client of clients) client.close();
  }
});

test("udp: sendmmsg and recvmmsg move 64 datagrams each way in one call", async () => {
  const server = await Listener.open({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const client = await Listener.open({ hostname: "127.0.0.1", port: 0, transport: "udp", reusePort: false });
  const out = new DatagramBatch(64, 256);
  const into = new DatagramBatch(64, 256);
  try {
    const encoder = new TextEncoder();
    for (let i = 0; i < 64; i++) out.set(i, encoder.encode(`datagram ${i}`), server.address);
    assert.equal(out.send(client.fd, 64), 64);
    let received = 0;
    for (let round = 0; round < 1000 && received < 64; round++) received += into.receive(server.fd, 64 - received);
    assert.equal(received, 64);
    const decoder = new TextDecoder();
    for (let i = 0; i < 64; i++) {
      assert.equal(decoder.decode(into.payload(i)), `datagram ${i}`);
      assert.deepEqual(into.peer(i), client.address);
    }
    assert.equal(into.send(server.fd, 64), 64); // echo: each slot still holds its sender's address
    let echoed = 0;
    for (let round = 0; round < 1000 && echoed < 64; round++) echoed += out.receive(client.fd, 64 - echoed);
    assert.equal(echoed, 64);
    assert.equal(decoder.decode(out.payload(63)), "datagram 63");
  } finally {
    out.close();
    into.close();
    server.close();
    client.close();
  }
});

test("udp: datagrams the kernel drops show up in kernelDrops (/proc/net/udp)", async () => {
  const sink = await Listener.open({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const client = await Listener.open({ hostname: "127.0.0.1", port: 0, transport: "udp", reusePort: false });
  const batch = new DatagramBatch(64, 1024);
  try {
    lib.rp_setsockopt_int(sink.fd, SOL_SOCKET, SO_RCVBUF, 4096); // tiny queue, never read
    for (let i = 0; i < 64; i++) batch.set(i, new Uint8Array(1000), sink.address);
    for (let round = 0; round < 4; round++) batch.send(client.fd, 64);
    assert.ok(kernelDrops(sink.fd) > 0, "an overflowing receive queue is counted");
  } finally {
    batch.close();
    sink.close();
    client.close();
  }
});

test("udp: bad options are refused before anything opens", () => {
  // deno-lint-ignore no-explicit-any
  assert.throws(() => serveUdp({ port: 0 } as any), (e: unknown) => e instanceof ConfigError && /onMessage must be a function/.test(e.message));
  // deno-lint-ignore no-explicit-any
  assert.throws(() => serveUdp({ port: 0, onMessage() {}, colour: 1 } as any), /colour is not a serveUdp\(\) option/);
  assert.throws(() => serveUdp({ port: 70000, onMessage() {} }), /port must be an integer from 0 to 65535/);
});

test("udp: serveUdp with 2 workers: one socket each on the port, datagrams from many clients reach both", async () => {
  const cluster = await ClusterChild.start({ workers: 2 }, UDP_FIXTURE);
  const clients: Listener[] = [];
  const batch = new DatagramBatch(16, 128);
  try {
    assert.equal(udpSocketsOn(cluster.port), 2, "one UDP socket per worker on the port (what ss -lun lists)");
    assert.equal(cluster.io, null, "io is an HTTP server's");
    for (let c = 0; c < 20; c++) clients.push(await Listener.open({ hostname: "127.0.0.1", port: 0, transport: "udp", reusePort: false }));
    const target = { family: "IPv4" as const, address: "127.0.0.1", port: cluster.port };
    for (const client of clients) {
      for (let i = 0; i < 5; i++) batch.set(i, new TextEncoder().encode(`m${i}`), target);
      assert.equal(batch.send(client.fd, 5), 5);
    }
    const tags = new Set<string>();
    let echoed = 0;
    const deadline = Date.now() + 10_000;
    while (echoed < 100 && Date.now() < deadline) {
      for (const client of clients) {
        const n = batch.receive(client.fd);
        for (let i = 0; i < n; i++) tags.add(new TextDecoder().decode(batch.payload(i)).split(" ")[0]);
        echoed += n;
      }
      if (echoed < 100) await new Promise((resolve) => setImmediate(resolve)); // replies come from other workers
    }
    assert.equal(echoed, 100);
    assert.equal(tags.size, 2, "both workers answered");
    const stats = await cluster.statsUntil((s) => s.totals.accepted >= 100);
    assert.equal(stats.totals.accepted, 100, "datagrams received, summed over workers");
    assert.equal(stats.totals.requests, 100, "replies sent");
    assert.equal(stats.totals.writeErrors, 0, "no reply dropped");
    assert.equal(stats.kernelDrops, 0, "the kernel dropped nothing on the port");
  } finally {
    batch.close();
    for (const client of clients) client.close();
    await cluster.stop();
  }
}, { timeoutMs: 40_000 });

test("udp: serveUdp cluster options are checked before anything starts", () => {
  // deno-lint-ignore no-explicit-any
  assert.throws(() => serveUdp({ port: 0, workers: 0, onMessage() {} } as any), /workers must be a positive integer or "auto", got 0/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => serveUdp({ port: 0, workers: 2 } as any), /onMessage must be a function/);
});

const VIEWS_FIXTURE = fileURLToPath(new URL("../fixtures/udp-views.ts", import.meta.url));

/** Runs a fixture in a child of this runtime; ends it (by pid) if it outlives timeoutMs. */
function runChild(fixture: string, timeoutMs: number): Promise<{ code: number | null; signal: string | null; output: string }> {
  const args = runtimeName === "deno" ? ["run", "-A", "--no-check", fixture] : [fixture];
  const child = spawn(process.execPath, args, { env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) => child.on("close", (code, signal) => {
    clearTimeout(timer);
    resolve({ code, signal, output });
  }));
}

function assertNoCrash(run: { code: number | null; signal: string | null; output: string }): void {
  assert.ok(!/panic|Segmentation fault/.test(run.output), `no crash in the child: ${run.output.slice(-3000)}`);
  assert.equal(run.signal, null, `the child was not killed by a signal: ${run.output.slice(-3000)}`);
  assert.equal(run.code, 0, `the child exited 0: ${run.output.slice(-3000)}`);
}

test("udp: message views and batch data read after close(), and close() from the handler mid-batch (also under a flood from another process), never crash", async () => {
  const run = await runChild(VIEWS_FIXTURE, 30_000);
  assertNoCrash(run);
  const line = run.output.split("\n").find((l) => l.startsWith("result "));
  assert.ok(line, `a result line: ${run.output.slice(-3000)}`);
  const result = JSON.parse(line.slice("result ".length));
  assert.deepEqual(result.seen, ["hello0"], "nothing is delivered after close() from the handler");
  assert.ok(["hello0", "TypeError"].includes(result.afterClose), `a kept view reads its bytes or throws: ${result.afterClose}`);
  assert.equal(result.closeStats.received, 1, "received counts what the handler got");
  assert.equal(result.closeStats.closeDrops, 3, "the rest of the batch is counted as dropped by the close");
  assert.ok(["hello0", "TypeError"].includes(result.laterText), `a view kept past close() reads its bytes or throws: ${result.laterText}`);
  assert.ok(["mine", "TypeError"].includes(result.dataText), `batch data after close() reads its bytes or throws: ${result.dataText}`);
  const { underLoad } = result;
  assert.equal(underLoad.delivered, 2000, `the flood reached the handler 2,000 times, then close() stopped it: ${JSON.stringify(underLoad)}`);
  assert.ok(underLoad.flooding, `the other process was still flooding at the close: ${JSON.stringify(underLoad)}`);
  assert.equal(underLoad.received, 2000, "received counts what the handler got");
  assert.ok(underLoad.closeDrops >= 0 && underLoad.closeDrops < 64, `at most the rest of one batch is dropped by the close: ${underLoad.closeDrops}`);
  assert.equal(underLoad.unreadable, 0, `every message kept under load still reads its bytes (${underLoad.kept} kept)`);
}, { timeoutMs: 40_000 });

/** Sends one datagram to port from client and waits (bounded) for the answer's bytes. */
async function exchange(client: Listener, batch: DatagramBatch, port: number, text: string): Promise<Uint8Array> {
  batch.set(0, new TextEncoder().encode(text), { family: "IPv4", address: "127.0.0.1", port });
  assert.equal(batch.send(client.fd, 1), 1);
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (batch.receive(client.fd, 1) === 1) return batch.payload(0).slice();
    await new Promise((resolve) => setImmediate(resolve)); // the server runs on this thread's loop
  }
  throw new Error(`no answer to ${text}`);
}

test("udp: reply() sends strings as UTF-8 and every BufferSource as its bytes; anything else is a TypeError", async () => {
  const shared = new SharedArrayBuffer(4);
  new Uint8Array(shared).set([9, 8, 7, 6]);
  const replies: Record<string, unknown> = {
    text: "héllo ✓",
    arrayBuffer: new Uint8Array([1, 2, 3]).buffer,
    uint8: new Uint8Array([4, 5]),
    offsetView: new Uint8Array([0, 1, 2, 3, 4, 5]).subarray(2, 5),
    uint16: new Uint16Array([0x0102, 0x0304]),
    float64: new Float64Array([1.5]),
    dataView: new DataView(new Uint8Array([10, 11, 12, 13]).buffer, 1, 2),
    shared,
    sharedView: new Uint8Array(shared, 1, 2),
    empty: new Uint8Array(0),
  };
  const refused: Record<string, unknown> = { number: 42, object: { length: 3 }, null: null, array: [1, 2, 3], undefined: undefined };
  const named: Record<string, string> = { number: "number", object: "Object", null: "null", array: "Array", undefined: "undefined" };
  const errors: Record<string, string> = {};
  const server: UdpServer = serveUdp({
    hostname: "127.0.0.1",
    port: 0,
    onMessage(message, _peer, reply) {
      const key = new TextDecoder().decode(message);
      if (key in replies) return reply(replies[key] as Uint8Array);
      try {
        reply(refused[key] as Uint8Array);
        errors[key] = "sent";
      } catch (error) {
        errors[key] = `${(error as Error).name}: ${(error as Error).message}`;
      }
      reply("refused");
    },
  });
  const client = await Listener.open({ hostname: "127.0.0.1", port: 0, transport: "udp", reusePort: false });
  const batch = new DatagramBatch(1, 256);
  try {
    const bytesOf = (value: unknown): number[] => {
      if (typeof value === "string") return [...new TextEncoder().encode(value)];
      if (ArrayBuffer.isView(value)) return [...new Uint8Array(value.buffer, value.byteOffset, value.byteLength)];
      return [...new Uint8Array(value as ArrayBuffer)];
    };
    for (const [key, value] of Object.entries(replies)) {
      assert.deepEqual([...await exchange(client, batch, server.port, key)], bytesOf(value), `reply(${key}) sends its bytes`);
    }
    for (const key of Object.keys(refused)) {
      assert.equal(new TextDecoder().decode(await exchange(client, batch, server.port, key)), "refused");
      assert.ok(errors[key].startsWith("TypeError: "), `reply(${key}) throws a TypeError: ${errors[key]}`);
      assert.ok(errors[key].includes(named[key]), `the error names what it got (${named[key]}): ${errors[key]}`);
    }
    const stats = server.stats();
    assert.equal(stats.sent, Object.keys(replies).length + Object.keys(refused).length);
    assert.equal(stats.sendDrops, 0);
    // The client batch takes the same inputs.
    batch.set(0, "ok ✓", null);
    assert.equal(batch.length(0), new TextEncoder().encode("ok ✓").byteLength);
    assert.throws(() => batch.set(0, 7 as unknown as Uint8Array, null), TypeError);
    assert.throws(() => batch.set(0, "x".repeat(257), null), /257 bytes, the slot holds 256/);
  } finally {
    server.close();
    await server.closed;
    batch.close();
    client.close();
  }
});
