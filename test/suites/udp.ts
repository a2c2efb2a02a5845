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
    batch.close();
    for (const client of clients) client.close();
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
