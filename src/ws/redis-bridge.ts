// A PubSubBridge over Redis pub/sub, with ioredis as the client (an optional peer, imported by start()). Each
// topic is the channel `channelPrefix + topic`; each message is a small header (format, text or binary, the
// publishing cluster's id) and then the payload's bytes, so binary messages cross unchanged.
import { Buffer } from "node:buffer";
import { ConfigError } from "../errors.ts";
import type { PubSubBridge } from "./bridge.ts";
import type { Redis as RedisClient, RedisOptions } from "ioredis";

/** Header: format version (1 byte), kind (1 byte), cluster id length (1 byte), the cluster id. */
const FORMAT_VERSION = 1;
const KIND_TEXT = 0;
const KIND_BINARY = 1;
const HEADER_BYTES_FIXED = 3;
const CLUSTER_ID_BYTES_MAX = 255;
const CHANNEL_PREFIX_DEFAULT = "reuseport:";
/** Messages waiting for a connection or for Redis's reply; past either bound a publish is dropped. */
const QUEUED_MESSAGES_MAX_DEFAULT = 1024;
const QUEUED_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;
/** Channels per SUBSCRIBE when a reconnected subscriber takes up every topic again. */
const SUBSCRIBE_BATCH_CHANNELS = 1000;
/** How long close() waits for a connection that is still opening to end. */
const CLOSE_WAIT_MS = 5000;
/**
 * ioredis's disconnectTimeout: after disconnect() it destroys a socket that has not closed by then. Short, as
 * pub/sub needs no graceful QUIT; and disconnect() arms this timer even when the socket is long gone (while
 * reconnecting), so close() waits it out rather than leave it running.
 */
const DISCONNECT_TIMEOUT_MS = 10;

export interface RedisBridgeOptions {
  /** Prepended to each topic to make its channel (default "reuseport:"). */
  channelPrefix?: string;
  /** Publishes waiting for a connection or a reply, at most (default 1024); more are dropped and counted. */
  maxQueuedMessages?: number;
  /** Bytes of those, at most (default 16 MiB). */
  maxQueuedBytes?: number;
}

/** A Redis bridge: a PubSubBridge that also says where it connects (password hidden) and whether it is connected. */
export interface RedisBridge extends PubSubBridge {
  readonly url: string;
  /** Both connections (subscriber and publisher) are ready. */
  readonly connected: boolean;
}

/** The bridge could not be used: ioredis is missing, or the first connection failed; names the url. */
export class RedisBridgeError extends Error {
  override readonly name = "RedisBridgeError";
  constructor(readonly url: string, message: string, options?: { cause?: unknown }) {
    super(`redisBridge ${url}: ${message}`, options);
  }
}

type RedisConstructor = new (url: string, options: RedisOptions) => RedisClient;

/** A bridge to the Redis at `url` (redis:// or rediss://); nothing connects until start(). */
export function redisBridge(url: string, options: RedisBridgeOptions = {}): RedisBridge {
  const shown = redactUrl(String(url));
  let protocol = "";
  try {
    protocol = new URL(url).protocol;
  } catch {
    // not a URL at all: refused below, naming it
  }
  if (typeof url !== "string" || (protocol !== "redis:" && protocol !== "rediss:")) {
    throw new ConfigError("redisBridge(url)", `must be a redis:// or rediss:// URL, got ${JSON.stringify(shown)}`);
  }
  const prefix = options.channelPrefix ?? CHANNEL_PREFIX_DEFAULT;
  if (typeof prefix !== "string") throw new ConfigError("redisBridge channelPrefix", `must be a string, got ${JSON.stringify(prefix)}`);
  const messagesMax = positiveInteger("maxQueuedMessages", options.maxQueuedMessages, QUEUED_MESSAGES_MAX_DEFAULT);
  const bytesMax = positiveInteger("maxQueuedBytes", options.maxQueuedBytes, QUEUED_BYTES_MAX_DEFAULT);
  return new RedisPubSubBridge(url, shown, prefix, messagesMax, bytesMax);
}

function positiveInteger(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) throw new ConfigError(`redisBridge ${option}`, `must be a positive integer, got ${JSON.stringify(value)}`);
  return value;
}

/** The url as errors show it: a password becomes "***". */
function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/]*:)[^@/]*@/i, "$1***@");
}

/** ioredis's Redis class, imported now (the package is an optional peer of reuseport). */
export async function loadRedisClient(url: string, specifier = "ioredis"): Promise<RedisConstructor> {
  let module: { default?: unknown; Redis?: unknown };
  try {
    module = await import(specifier);
  } catch (error) {
    const missing = (error as { code?: string }).code === "ERR_MODULE_NOT_FOUND" || /cannot find|not found|not a dependency/i.test(String(error));
    const message = missing ? "install ioredis to use redisBridge (npm install ioredis)" : `ioredis did not load: ${error}`;
    throw new RedisBridgeError(redactUrl(url), message, { cause: error });
  }
  const Redis = module.Redis ?? module.default;
  if (typeof Redis !== "function") throw new RedisBridgeError(redactUrl(url), `${specifier} exports no Redis class`);
  return Redis as RedisConstructor;
}

/** One message as it goes on a channel: the header, then the payload's bytes. */
export function encodeMessage(clusterId: Buffer, data: string | Uint8Array): Buffer {
  const text = typeof data === "string";
  const start = HEADER_BYTES_FIXED + clusterId.length;
  const length = text ? Buffer.byteLength(data, "utf8") : data.byteLength;
  const message = Buffer.allocUnsafe(start + length);
  message[0] = FORMAT_VERSION;
  message[1] = text ? KIND_TEXT : KIND_BINARY;
  message[2] = clusterId.length;
  clusterId.copy(message, HEADER_BYTES_FIXED);
  if (text) message.write(data, start, "utf8");
  else message.set(data, start);
  return message;
}

/** A received message: its payload, "own" when this cluster published it, null when it is not ours to read. */
export function decodeMessage(message: Buffer, clusterId: Buffer): string | Uint8Array | "own" | null {
  if (message.length < HEADER_BYTES_FIXED || message[0] !== FORMAT_VERSION) return null;
  const kind = message[1];
  const start = HEADER_BYTES_FIXED + message[2];
  if ((kind !== KIND_TEXT && kind !== KIND_BINARY) || message.length < start) return null;
  if (message.subarray(HEADER_BYTES_FIXED, start).equals(clusterId)) return "own";
  if (kind === KIND_TEXT) return message.toString("utf8", start);
  // A copy: ioredis's parser assembles a large message in a pool of its own that it later reuses.
  return new Uint8Array(message.subarray(start));
}

/** The connections of one start(), until close(). */
interface Session {
  subscriber: RedisClient;
  publisher: RedisClient;
  clusterId: Buffer;
  deliver: (topic: string, data: string | Uint8Array) => void;
}

class RedisPubSubBridge implements RedisBridge {
  readonly stats = { published: 0, delivered: 0, dropped: 0, errors: 0 };
  #session: Session | null = null;
  /** Topics someone in this worker wants; the subscriber follows this set (again after each reconnect). */
  readonly #topics = new Set<string>();
  /** Publishes waiting for the publisher to be ready, in order. */
  #waiting: { channel: string; message: Buffer }[] = [];
  /** Publishes waiting (above) or sent and not yet answered, and their bytes. */
  #queuedMessages = 0;
  #queuedBytes = 0;

  constructor(
    private readonly href: string,
    readonly url: string,
    private readonly prefix: string,
    private readonly queuedMessagesMax: number,
    private readonly queuedBytesMax: number,
  ) {}

  get connected(): boolean {
    return this.#session?.subscriber.status === "ready" && this.#session.publisher.status === "ready";
  }

  async start(deliver: (topic: string, data: string | Uint8Array) => void, clusterId = randomClusterId()): Promise<void> {
    if (this.#session !== null) throw new Error(`redisBridge ${this.url}: start() was called twice without close()`);
    const id = Buffer.from(clusterId, "utf8");
    if (id.length === 0 || id.length > CLUSTER_ID_BYTES_MAX) throw new ConfigError("redisBridge clusterId", `must be 1 to ${CLUSTER_ID_BYTES_MAX} bytes, got ${id.length}`);
    const Redis = await loadRedisClient(this.url);
    // Reconnecting is ioredis's (its default backoff). The publisher never queues a command itself (the bridge
    // keeps its own bounded queue); the subscriber takes up the topics itself on each ready.
    const common: RedisOptions = { lazyConnect: true, autoResubscribe: false, disconnectTimeout: DISCONNECT_TIMEOUT_MS };
    const session: Session = {
      subscriber: new Redis(this.href, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: null }),
      publisher: new Redis(this.href, { ...common, enableOfflineQueue: false }),
      clusterId: id,
      deliver,
    };
    this.#session = session;
    this.#listen(session);
    const connecting = [session.subscriber.connect(), session.publisher.connect()];
    for (const attempt of connecting) attempt.catch(() => {}); // the first failure is reported below, once
    try {
      await Promise.all(connecting);
    } catch (error) {
      // ioredis keeps retrying; the bridge works once Redis answers, until close().
      throw new RedisBridgeError(this.url, `did not connect (retrying until close()): ${(error as Error).message}`, { cause: error });
    }
  }

  #listen(session: Session): void {
    const { subscriber, publisher } = session;
    const countError = () => void this.stats.errors++;
    subscriber.on("error", countError);
    publisher.on("error", countError);
    subscriber.on("ready", () => this.#resubscribe(session));
    // "ready" comes after ioredis resent what it had in flight, so the waiting publishes follow them in order.
    publisher.on("ready", () => this.#flush(session));
    subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) => this.#receive(session, channel, message));
  }

  #receive(session: Session, channel: Buffer, message: Buffer): void {
    if (this.#session !== session) return;
    const name = channel.toString("utf8");
    const topic = name.slice(this.prefix.length);
    if (!name.startsWith(this.prefix) || !this.#topics.has(topic)) return; // unsubscribed while on its way
    const data = decodeMessage(message, session.clusterId);
    if (data === "own") return;
    if (data === null) {
      this.stats.errors++;
      return;
    }
    this.stats.delivered++;
    try {
      session.deliver(topic, data);
    } catch {
      this.stats.errors++; // the receiver's fault; the next message is still delivered
    }
  }

  publish(topic: string, data: string | Uint8Array): void {
    const session = this.#session;
    if (session === null) {
      this.stats.dropped++;
      return;
    }
    const message = encodeMessage(session.clusterId, data);
    if (this.#queuedMessages + 1 > this.queuedMessagesMax || this.#queuedBytes + message.length > this.queuedBytesMax) {
      this.stats.dropped++;
      return;
    }
    this.#queuedMessages++;
    this.#queuedBytes += message.length;
    const channel = this.prefix + topic;
    if (session.publisher.status === "ready" && this.#waiting.length === 0) this.#send(session, channel, message);
    else this.#waiting.push({ channel, message });
  }

  #send(session: Session, channel: string, message: Buffer): void {
    this.stats.published++;
    const settled = () => {
      this.#queuedMessages--;
      this.#queuedBytes -= message.length;
    };
    session.publisher.publish(channel, message).then(settled, () => {
      settled();
      if (this.#session === session) this.stats.errors++;
    });
  }

  #flush(session: Session): void {
    if (this.#session !== session) return;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const { channel, message } of waiting) this.#send(session, channel, message);
  }

  subscribe(topic: string): void {
    if (this.#topics.has(topic)) return;
    this.#topics.add(topic);
    const subscriber = this.#session?.subscriber;
    if (subscriber?.status === "ready") subscriber.subscribe(this.prefix + topic).catch(() => void this.stats.errors++);
  }

  unsubscribe(topic: string): void {
    if (!this.#topics.delete(topic)) return;
    const subscriber = this.#session?.subscriber;
    if (subscriber?.status === "ready") subscriber.unsubscribe(this.prefix + topic).catch(() => void this.stats.errors++);
  }

  /** A (re)connected subscriber: every topic wanted here, in batches. */
  #resubscribe(session: Session): void {
    if (this.#session !== session) return;
    const channels = [...this.#topics].map((topic) => this.prefix + topic);
    for (let i = 0; i < channels.length; i += SUBSCRIBE_BATCH_CHANNELS) {
      session.subscriber.subscribe(...channels.slice(i, i + SUBSCRIBE_BATCH_CHANNELS)).catch(() => void this.stats.errors++);
    }
  }

  async close(): Promise<void> {
    const session = this.#session;
    if (session === null) return;
    this.#session = null;
    this.stats.dropped += this.#waiting.length;
    this.#waiting = [];
    this.#queuedMessages = 0;
    this.#queuedBytes = 0;
    await Promise.all([disconnect(session.subscriber), disconnect(session.publisher)]);
  }
}

/** Ends one connection and waits until its socket is closed (a reconnect timer is cleared by disconnect()). */
async function disconnect(client: RedisClient): Promise<void> {
  // "reconnecting" has no socket, and disconnect() clears its timer; "end" is over already.
  const done = client.status === "end" || client.status === "reconnecting";
  const ended = done ? Promise.resolve() : new Promise<void>((resolve) => client.once("end", resolve));
  client.disconnect();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)));
  await Promise.race([ended, late]);
  clearTimeout(timer);
  // Armed by disconnect() before this one, with the same delay: it has fired when this one does.
  await new Promise((resolve) => setTimeout(resolve, DISCONNECT_TIMEOUT_MS));
  client.removeAllListeners();
  client.on("error", () => {}); // nothing is left to report to; ioredis would print an unhandled one
}

function randomClusterId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
