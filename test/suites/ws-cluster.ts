// WebSockets across a cluster: a publish in one worker reaches the subscribers of every worker (threads and
// processes), in publish order, counted; a reload with open sockets closes them with 1001 and clients
// reconnect to the new workers.
import { assert, test } from "../_harness.ts";
import { ClusterChild } from "../_cluster.ts";
import { Client } from "../_ws.ts";
import { fileURLToPath } from "node:url";

const FIXTURE = fileURLToPath(new URL("../fixtures/ws-cluster-app.ts", import.meta.url));
const MESSAGES = 50;

/** Opens clients until both workers hold some (kernel hashing decides), at most `max`; returns them by worker. */
async function clientsOnBothWorkers(port: number, perWorker: number, max = 60): Promise<Map<string, Client[]>> {
  const byWorker = new Map<string, Client[]>();
  for (let i = 0; i < max; i++) {
    const client = await Client.open(`ws://127.0.0.1:${port}/`);
    const [greeting] = await client.take();
    const list = byWorker.get(String(greeting)) ?? [];
    list.push(client);
    byWorker.set(String(greeting), list);
    if (byWorker.size === 2 && [...byWorker.values()].every((l) => l.length >= perWorker)) return byWorker;
  }
  throw new Error(`${max} connections did not reach both workers ${perWorker} times each: ${[...byWorker].map(([w, l]) => `${w}=${l.length}`)}`);
}

/** Closes the clients, stops the cluster, and checks it exited cleanly: code 0, no panic, no segfault. */
async function closeAndStop(cluster: ClusterChild, clients: Client[]): Promise<void> {
  for (const client of clients) client.close();
  await Promise.all(clients.map((client) => client.closed().catch(() => null)));
  const code = await cluster.stop();
  assert.equal(code, 0, cluster.stderr);
  assert.doesNotMatch(cluster.stderr, /panic|Segmentation fault/);
}

for (const mode of ["thread", "process"] as const) {
  test(`ws cluster: server.publish and ws.publish in one worker reach every subscriber of both workers, in order (${mode})`, async () => {
    const cluster = await ClusterChild.start({ workers: 2, mode }, FIXTURE);
    const all: Client[] = [];
    try {
      const byWorker = await clientsOnBothWorkers(cluster.port, 2);
      for (const list of byWorker.values()) all.push(...list);
      const [publisher] = all;
      for (let i = 0; i < MESSAGES; i++) publisher.socket.send(`pub m${i}`);
      const expected = Array.from({ length: MESSAGES }, (_, i) => `m${i}`);
      for (const client of all) assert.deepEqual(await client.take(MESSAGES, 10_000), expected);
      publisher.socket.send("wspub from-socket");
      for (const client of all.slice(1)) assert.deepEqual(await client.take(1, 10_000), ["from-socket"]);
      cluster.command("publish from-primary"); // the ClusterServer's publish: to every worker
      for (const client of all) assert.deepEqual(await client.take(1, 10_000), ["from-primary"]);
      const stats = await cluster.statsUntil((s) => s.totals.wsMessagesOut >= all.length * (MESSAGES + 2) + all.length - 1);
      assert.equal(stats.totals.wsOpened, all.length);
      assert.equal(stats.totals.wsDropped, 0);
      assert.equal(publisher.messages.length, 0, "ws.publish does not reach its own socket");
      assert.equal(stats.control?.pubsubDropped, 0);
    } finally {
      await closeAndStop(cluster, all);
    }
  }, { timeoutMs: 60_000 });
}

/** Sends a message, waits for its echo, again, until the socket closes; returns how many came back. */
async function echoLoop(client: Client): Promise<number> {
  let echoed = 0;
  for (let i = 0; client.closeEvent === null && i < 1_000_000; i++) {
    if (client.socket.readyState !== 1) break;
    client.socket.send(`e${i}`);
    const got = await client.take(1, 15_000).catch(() => null);
    if (got === null) break;
    echoed++;
  }
  return echoed;
}

for (const mode of ["thread", "process"] as const) {
  test(`ws cluster: a reload under echo load closes 200 open sockets with 1001, and the clients reconnect to the new workers (${mode})`, async () => {
    const cluster = await ClusterChild.start({ workers: 2, mode, stopTimeoutMs: 10_000 }, FIXTURE);
    let clients: Client[] = [];
    try {
      for (let i = 0; i < 200; i += 20) {
        clients.push(...await Promise.all(Array.from({ length: 20 }, () => Client.open(`ws://127.0.0.1:${cluster.port}/`))));
      }
      const before = new Set<string>();
      for (const client of clients) before.add(String((await client.take())[0]));
      // A sixth of them keep the workers busy with echoes (a synchronous handler) through the reload.
      const echoes = Promise.all(clients.filter((_, i) => i % 6 === 0).map(echoLoop));
      cluster.command("reload");
      await cluster.line((l) => l === "reloaded", 30_000);
      const events = await Promise.all(clients.map((client) => client.closed(15_000)));
      const echoed = (await echoes).reduce((a, b) => a + b, 0);
      const codes = new Map<number, number>();
      for (const event of events) codes.set(event.code, (codes.get(event.code) ?? 0) + 1);
      assert.deepEqual([...codes], [[1001, 200]], `close codes ${JSON.stringify([...codes])}`);
      assert.ok(echoed > 0, "the echo load ran");
      clients = await Promise.all(Array.from({ length: 20 }, () => Client.open(`ws://127.0.0.1:${cluster.port}/`)));
      // The new generation's workers answer (the greeting names worker id and generation).
      for (const client of clients) assert.ok(!before.has(String((await client.take())[0])), "a new worker answers");
      clients[0].socket.send("pub after-reload");
      for (const client of clients) assert.deepEqual(await client.take(1, 10_000), ["after-reload"]);
      const stats = await cluster.statsUntil((s) => s.totals.wsClosesNormal >= 200);
      assert.ok(stats.totals.wsOpened >= 220);
      assert.equal(stats.webSockets.lost, 0);
    } finally {
      await closeAndStop(cluster, clients);
    }
  }, { timeoutMs: 90_000 });
}

test("ws cluster: a worker killed with open sockets: its sockets are counted lost, the other worker's stay open", async () => {
  const cluster = await ClusterChild.start({ workers: 2, mode: "process" }, FIXTURE);
  const all: Client[] = [];
  try {
    const byWorker = await clientsOnBothWorkers(cluster.port, 2);
    for (const list of byWorker.values()) all.push(...list);
    const victims = [...byWorker].find(([who]) => who.startsWith("worker 0:"))![1];
    const survivors = all.filter((client) => !victims.includes(client));
    cluster.command("kill 0");
    for (const client of victims) await client.closed(10_000);
    const stats = await cluster.statsUntil((s) => s.webSockets.lost === victims.length);
    assert.equal(stats.webSockets.open, survivors.length);
    survivors[0].socket.send("pub still-here");
    for (const client of survivors) assert.deepEqual(await client.take(1, 10_000), ["still-here"]);
  } finally {
    await closeAndStop(cluster, all);
  }
}, { timeoutMs: 60_000 });

interface RedisServer { port: number; url: string; stop(signal?: string): Promise<unknown> }
const redisScript: { ensureRedis(): Promise<{ path: string | null; reason?: string }>; startRedis(): Promise<RedisServer> } =
  await import(new URL("../../scripts/redis.mjs", import.meta.url).href);
const redisFound = await redisScript.ensureRedis();

test("ws cluster: two clusters on two ports share topics through the Redis bridge: each subscriber gets each message once", async () => {
  const redis = await redisScript.startRedis();
  const clusters: ClusterChild[] = [];
  const all: Client[] = [];
  try {
    for (let i = 0; i < 2; i++) clusters.push(await ClusterChild.start({ workers: 2, bridgeUrl: redis.url }, FIXTURE));
    const [a, b] = await Promise.all(clusters.map((cluster) => clientsOnBothWorkers(cluster.port, 1)));
    const clientsA = [...a.values()].flat();
    const clientsB = [...b.values()].flat();
    all.push(...clientsA, ...clientsB);
    // The bridges subscribe when the first socket of a worker subscribes: wait until a message crosses.
    for (let i = 0; i < 100 && clientsB[0].messages.length === 0; i++) {
      clientsA[0].socket.send(`pub probe${i}`);
      await clientsB[0].take(1, 200).catch(() => null);
    }
    // Probes still in flight: a marker behind them on the same paths, and everything up to it is dropped.
    clientsA[0].socket.send("pub marker");
    for (const client of all) {
      for (let i = 0; i < 200 && (await client.take(1, 10_000))[0] !== "marker"; i++);
    }
    for (let i = 0; i < 20; i++) clientsA[0].socket.send(`pub x${i}`);
    const expected = Array.from({ length: 20 }, (_, i) => `x${i}`);
    for (const client of all) assert.deepEqual(await client.take(20, 10_000), expected);
    // A copy that came back through Redis to its own cluster would follow within Redis' round trip.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const client of all) assert.equal(client.messages.length, 0, "no message came twice");
  } finally {
    for (const [i, cluster] of clusters.entries()) await closeAndStop(cluster, i === 0 ? all : []);
    await redis.stop();
  }
}, { timeoutMs: 90_000, skip: redisFound.path === null ? redisFound.reason! : false });
