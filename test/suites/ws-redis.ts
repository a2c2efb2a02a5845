// The Redis pub/sub bridge against a real redis-server that each test starts (scripts/redis.mjs): messages of
// another cluster arrive exactly and in order, a cluster never gets its own back, subscriptions gate delivery,
// publishing while Redis is down drops and counts, and close() leaves nothing open (Deno's sanitizers check).
import { Buffer } from "node:buffer";
import process from "node:process";
import { assert, test } from "../_harness.ts";
import { ConfigError } from "../../src/errors.ts";
import { type RedisBridge, RedisBridgeError, loadRedisClient, redisBridge } from "../../src/ws/redis-bridge.ts";

interface RedisServer { port: number; url: string; stop(signal?: string): Promise<unknown> }
/** What this suite uses of scripts/redis.mjs (plain JavaScript, so typed here). */
interface RedisScript {
  ensureRedis(): Promise<{ path: string | null; reason?: string }>;
  startRedis(options?: { port?: number }): Promise<RedisServer>;
}
// Imported by URL: the script has no type declarations, and a literal specifier would make tsc ask for one.
const redisScript: RedisScript = await import(new URL("../../scripts/redis.mjs", import.meta.url).href);
const found = await redisScript.ensureRedis();
const skip = found.path === null ? found.reason! : false;

const WAIT_MS_MAX = 10_000;
type Data = string | Uint8Array;

/** Waits (bounded) until predicate holds; the bridge's state changes on socket events this test cannot await. */
async function until(what: string, predicate: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`not within ${WAIT_MS_MAX} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Subscribers Redis counts on a channel (PUBSUB NUMSUB), through a connection of the test's own. */
async function subscribersOf(url: string, channel: string): Promise<number> {
  const Redis = await loadRedisClient(url);
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on("error", () => {});
  try {
    await client.connect();
    const reply = (await client.call("PUBSUB", "NUMSUB", channel)) as [string, number];
    return Number(reply[1]);
  } finally {
    const ended = new Promise((resolve) => client.once("end", resolve));
    client.disconnect();
    await ended;
  }
}

/** A started bridge and what it delivered; `next(n)` resolves once n messages in all have come. */
async function started(url: string, clusterId: string, options = {}) {
  const bridge = redisBridge(url, options);
  const received: [string, Data][] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  await bridge.start((topic, data) => {
    received.push([topic, data]);
    for (const waiter of waiters.filter((w) => received.length >= w.count)) waiter.resolve();
  }, clusterId);
  const next = (count: number) =>
    received.length >= count ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ count, resolve }));
  return { bridge, received, next };
}

async function withRedis(fn: (redis: RedisServer, bridges: RedisBridge[]) => Promise<void>): Promise<void> {
  const redis = await redisScript.startRedis();
  const bridges: RedisBridge[] = [];
  try {
    await fn(redis, bridges);
  } finally {
    await Promise.all(bridges.map((bridge) => bridge.close()));
    await redis.stop();
  }
}

/** Timers this process has running (Deno and Node count them; Bun lists none, and has no sanitizer to satisfy). */
const timersRunning = () => (process.getActiveResourcesInfo?.() ?? []).filter((kind) => kind === "Timeout").length;

const MEBIBYTE = Uint8Array.from({ length: 1024 * 1024 }, (_, i) => (i * 7 + (i >> 10)) & 0xff);

test("ws redis: text and binary (0x00, 0xff, 1 MiB) reach the other cluster exactly and in order; never the publishing one", async () => {
  const timers = timersRunning();
  await withRedis(async (redis, bridges) => {
    const a = await started(redis.url, "cluster-a");
    const b = await started(redis.url, "cluster-b");
    bridges.push(a.bridge, b.bridge);
    assert.ok(a.bridge.connected && b.bridge.connected);
    a.bridge.subscribe("chat");
    b.bridge.subscribe("chat");
    await until("both subscribed", async () => (await subscribersOf(redis.url, "reuseport:chat")) === 2);
    const sent: Data[] = ["hello", "", "ünïcødé ✓ 🎉", Uint8Array.of(0x00, 0xff, 0x00), new Uint8Array(0), MEBIBYTE, "\u0000 text with a NUL", "end"];
    for (const data of sent) a.bridge.publish("chat", data);
    await b.next(sent.length);
    assert.equal(b.received.length, sent.length);
    b.received.forEach(([topic, data], i) => {
      assert.equal(topic, "chat");
      assert.equal(typeof data, typeof sent[i], `message ${i} keeps its kind`);
      assert.deepEqual(typeof data === "string" ? data : Array.from(data.subarray(0, 16)), typeof sent[i] === "string" ? sent[i] : Array.from((sent[i] as Uint8Array).subarray(0, 16)));
      if (typeof data !== "string") assert.ok(Buffer.from(data).equals(sent[i] as Uint8Array), `message ${i}: the same bytes`);
    });
    // Redis sends a channel's messages to each subscriber in publish order: once A has B's reply, A's own would have come.
    b.bridge.publish("chat", "from b");
    await a.next(1);
    assert.deepEqual(a.received, [["chat", "from b"]], "A gets B's message and none of its own");
    assert.deepEqual(a.bridge.stats, { published: sent.length, delivered: 1, dropped: 0, errors: 0 });
    assert.deepEqual(b.bridge.stats, { published: 1, delivered: sent.length, dropped: 0, errors: 0 });
  });
  // A message that spans socket reads is assembled in redis-parser's module-wide pool, which an interval of its
  // own shrinks back (50 ms ticks, about 2 s from 3 MiB) and then clears: Deno's sanitizer counts it as this test's.
  await until("redis-parser's pool-shrinking interval ended", () => timersRunning() <= timers);
}, { skip });

test("ws redis: subscribe and unsubscribe gate delivery (per topic, with the channel prefix)", () =>
  withRedis(async (redis, bridges) => {
    const a = await started(redis.url, "a", { channelPrefix: "app1/" });
    const b = await started(redis.url, "b", { channelPrefix: "app1/" });
    bridges.push(a.bridge, b.bridge);
    b.bridge.subscribe("x");
    b.bridge.subscribe("x"); // a second subscribe of a topic is a no-op
    await until("b on x", async () => (await subscribersOf(redis.url, "app1/x")) === 1);
    a.bridge.publish("y", "not wanted");
    a.bridge.publish("x", "x1");
    await b.next(1);
    b.bridge.unsubscribe("x");
    b.bridge.subscribe("z");
    await until("b off x, on z", async () => (await subscribersOf(redis.url, "app1/x")) === 0 && (await subscribersOf(redis.url, "app1/z")) === 1);
    a.bridge.publish("x", "x2 after unsubscribe");
    a.bridge.publish("z", "z1");
    await b.next(2);
    assert.deepEqual(b.received, [["x", "x1"], ["z", "z1"]]);
    assert.equal(a.bridge.stats.published, 4, "A sends every publish; Redis drops what no one wants");
  }), { skip });

test("ws redis: while Redis is down a publish never throws: a bounded queue waits, the rest is dropped and counted; both reconnect", () =>
  withRedis(async (first, bridges) => {
    const a = await started(first.url, "a", { maxQueuedMessages: 3 });
    const b = await started(first.url, "b");
    bridges.push(a.bridge, b.bridge);
    b.bridge.subscribe("t");
    await until("b on t", async () => (await subscribersOf(first.url, "reuseport:t")) === 1);
    await first.stop();
    await until("both see Redis gone", () => !a.bridge.connected && !b.bridge.connected);
    for (let i = 0; i < 5; i++) a.bridge.publish("t", `down ${i}`);
    assert.equal(a.bridge.stats.dropped, 2, "3 wait, 2 are dropped");
    assert.equal(a.bridge.stats.published, 0);
    const second = await redisScript.startRedis({ port: first.port });
    try {
      await until("both reconnected", () => a.bridge.connected && b.bridge.connected);
      await until("the 3 waiting sent", () => a.bridge.stats.published === 3);
      await until("b on t again", async () => (await subscribersOf(second.url, "reuseport:t")) === 1);
      a.bridge.publish("t", "up");
      await until("b got up", () => b.received.some(([, data]) => data === "up"));
      const texts = b.received.map(([, data]) => data);
      assert.deepEqual(texts, [...["down 0", "down 1", "down 2"].slice(3 - (texts.length - 1)), "up"], "what came came in order");
    } finally {
      await Promise.all(bridges.splice(0).map((bridge) => bridge.close()));
      await second.stop();
    }
  }), { skip, timeoutMs: 30_000 });

test("ws redis: start() with no Redis rejects with RedisBridgeError naming the url; close() ends the reconnecting", async () => {
  const redis = await redisScript.startRedis();
  await redis.stop(); // a port nothing listens on now
  const bridge = redisBridge(`redis://:hunter2@127.0.0.1:${redis.port}`);
  try {
    await assert.rejects(bridge.start(() => {}, "x"), (error: Error) => {
      assert.ok(error instanceof RedisBridgeError);
      assert.match(error.message, new RegExp(`^redisBridge redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redis.port}: did not connect`));
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
    bridge.publish("t", "nowhere"); // waits for a connection
    assert.equal(bridge.stats.dropped, 0);
  } finally {
    await bridge.close();
  }
  assert.equal(bridge.stats.dropped, 1, "what still waited at close() is dropped");
  assert.equal(bridge.connected, false);
  await bridge.close(); // twice is fine
}, { skip });

test("ws redis: a bad url or option, and a missing ioredis, are typed errors naming them", async () => {
  for (const url of ["http://127.0.0.1:6379", "127.0.0.1:6379", "", "redis//x"]) {
    assert.throws(() => redisBridge(url), (error: Error) => error instanceof ConfigError && error.message.includes(JSON.stringify(url)));
  }
  assert.throws(() => redisBridge("ftp://user:secret@h/"), (error: Error) => error instanceof ConfigError && !error.message.includes("secret"));
  assert.throws(() => redisBridge("redis://h", { maxQueuedMessages: 0 }), /redisBridge maxQueuedMessages must be a positive integer, got 0/);
  assert.throws(() => redisBridge("redis://h", { maxQueuedBytes: 1.5 }), /redisBridge maxQueuedBytes/);
  await assert.rejects(redisBridge("redis://h").start(() => {}, ""), /redisBridge clusterId must be 1 to 255 bytes/);
  await assert.rejects(loadRedisClient("redis://h", "ioredis-not-installed-here"), (error: Error) =>
    error instanceof RedisBridgeError && /^redisBridge redis:\/\/h: install ioredis to use redisBridge/.test(error.message));
  // Never started: nothing to send with, nothing to close.
  const idle = redisBridge("rediss://h:1");
  idle.subscribe("t");
  idle.publish("t", "x");
  assert.deepEqual(idle.stats, { published: 0, delivered: 0, dropped: 1, errors: 0 });
  await idle.close();
});
