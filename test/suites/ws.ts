// WebSockets on one server: Bun's idiom (server.upgrade + websocket handlers) and Deno's (upgradeWebSocket),
// with the runtime's own client as the peer; pub/sub in one server; bad frames over raw TCP closed with the
// right code; a graceful stop closes open sockets with 1001; every socket and message counted in stats().
import { assert, test } from "../_harness.ts";
import { startServer } from "../_http.ts";
import { Client, clientFrame, closeCodeOf, rawUpgrade, serverFrames } from "../_ws.ts";
import process from "node:process";
import { ConfigError, serve, type Server, type ServerWebSocket, upgradeWebSocket } from "../../src/index.ts";

const encoder = new TextEncoder();

/** An echo server in Bun's idiom that greets with ws.data and records closes. */
function bunEcho(extra: Record<string, unknown> = {}): { server: Server; closes: [number, string][] } {
  const closes: [number, string][] = [];
  const server = startServer((request, server) => {
    if (server.upgrade(request, { data: { path: new URL(request.url).pathname } })) return undefined as unknown as Response;
    return new Response("not a websocket", { status: 400 });
  }, {
    websocket: {
      open(ws: ServerWebSocket<{ path: string }>) {
        ws.send(`hello ${ws.data.path}`);
      },
      message(ws: ServerWebSocket<unknown>, message: string | Uint8Array) {
        ws.send(message);
      },
      close(_ws: ServerWebSocket<unknown>, code: number, reason: string) {
        closes.push([code, reason]);
      },
      ...extra,
    },
  });
  return { server, closes };
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test("ws: Bun's idiom echoes text and binary, carries ws.data, and reports the client's close code and reason", async () => {
  const { server, closes } = bunEcho();
  try {
    const client = await Client.open(`ws://127.0.0.1:${server.port}/room`);
    assert.deepEqual(await client.take(), ["hello /room"]);
    client.socket.send("ping é");
    client.socket.send(new Uint8Array([0, 1, 255]));
    const [text, binary] = await client.take(2);
    assert.equal(text, "ping é");
    assert.deepEqual([...new Uint8Array(binary as ArrayBuffer)], [0, 1, 255]);
    client.close(4000, "bye");
    const event = await client.closed();
    assert.equal(event.code, 4000);
    await until(() => closes.length === 1, "the server's close handler");
    assert.deepEqual(closes, [[4000, "bye"]]);
    const stats = server.stats();
    assert.equal(stats.wsOpened, 1);
    assert.equal(stats.wsClosed, 1);
    assert.equal(stats.wsMessagesIn, 2);
    assert.equal(stats.wsMessagesOut, 3);
    assert.equal(stats.wsClosesOther, 1);
  } finally {
    await server.stop(false);
  }
});

test("ws: a request that is not an upgrade gets false from server.upgrade and the handler's own answer", async () => {
  const { server } = bunEcho();
  try {
    const response = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.equal(response.status, 400);
    assert.equal(await response.text(), "not a websocket");
  } finally {
    await server.stop(false);
  }
});

test("ws: Deno's idiom: upgradeWebSocket gives a WebSocket with onopen, onmessage, onclose and addEventListener", async () => {
  const events: string[] = [];
  const server = startServer((request) => {
    const { socket, response } = upgradeWebSocket(request);
    socket.onopen = () => events.push("open");
    socket.addEventListener("message", (event) => socket.send(`echo ${(event as MessageEvent).data}`));
    socket.onclose = (event) => events.push(`close ${event.code} ${event.reason} ${event.wasClean}`);
    assert.equal(response.status, 101);
    return response;
  });
  try {
    const client = await Client.open(`ws://127.0.0.1:${server.port}/`);
    client.socket.send("one");
    assert.deepEqual(await client.take(), ["echo one"]);
    client.close(1000, "done");
    await client.closed();
    await until(() => events.length === 2, "open and close events");
    assert.deepEqual(events, ["open", "close 1000 done true"]);
  } finally {
    await server.stop(false);
  }
});

test("ws: Deno's idiom: the server closes with a code and reason; binaryType arraybuffer; bad close codes throw", async () => {
  const server = startServer((request) => {
    const { socket, response } = upgradeWebSocket(request);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      assert.ok(event.data instanceof ArrayBuffer);
      assert.throws(() => socket.close(1006), /1000 or 3000-4999/);
      socket.close(4001, `got ${(event.data as ArrayBuffer).byteLength}`);
    };
    return response;
  });
  try {
    const client = await Client.open(`ws://127.0.0.1:${server.port}/`);
    client.socket.send(new Uint8Array(5));
    const event = await client.closed();
    assert.equal(event.code, 4001);
    assert.equal(event.reason, "got 5");
  } finally {
    await server.stop(false);
  }
});

test("ws: pub/sub in one server: server.publish reaches every subscriber, ws.publish all but the sender, subscriberCount", async () => {
  const server = startServer((request, server) => {
    if (server.upgrade(request)) return undefined as unknown as Response;
    return new Response("no", { status: 400 });
  }, {
    websocket: {
      open(ws: ServerWebSocket<unknown>) {
        ws.subscribe("chat");
        ws.send(`subscribed ${ws.isSubscribed("chat")} ${ws.subscriptions.join(",")}`);
      },
      message(ws: ServerWebSocket<unknown>, message: string | Uint8Array) {
        ws.publish("chat", message);
      },
    },
  });
  try {
    const clients = await Promise.all([0, 1, 2].map(() => Client.open(`ws://127.0.0.1:${server.port}/`)));
    for (const client of clients) assert.deepEqual(await client.take(), ["subscribed true chat"]);
    assert.equal(server.subscriberCount("chat"), 3);
    assert.ok(server.publish("chat", "to all") > 0);
    for (const client of clients) assert.deepEqual(await client.take(), ["to all"]);
    clients[0].socket.send("from 0");
    assert.deepEqual(await clients[1].take(), ["from 0"]);
    assert.deepEqual(await clients[2].take(), ["from 0"]);
    clients[2].close();
    await clients[2].closed();
    await until(() => server.subscriberCount("chat") === 2, "the closed socket to leave its topic");
    for (const client of clients.slice(0, 2)) client.close();
    await Promise.all(clients.slice(0, 2).map((client) => client.closed()));
    assert.equal(clients[0].messages.length, 0, "the sender does not get its own publish");
  } finally {
    await server.stop(false);
  }
});

/** Sends `frames` after the handshake on a raw connection; returns the code of the server's close frame. */
async function closeCodeFor(server: Server, ...frames: Uint8Array[]): Promise<number> {
  const client = await rawUpgrade(server.port);
  try {
    for (const frame of frames) await client.write(frame);
    await client.closedByPeer();
    const close = serverFrames(client.bytes).find(([opcode]) => opcode === 8);
    assert.ok(close, `no close frame in ${JSON.stringify(client.text.slice(-80))}`);
    return closeCodeOf(close[1]);
  } finally {
    client.close();
  }
}

test("ws: bad frames close with the right code: unmasked 1002, bad UTF-8 1007, too large 1009, reserved opcode 1002", async () => {
  const { server } = bunEcho({ maxPayloadLength: 1024 });
  try {
    assert.equal(await closeCodeFor(server, clientFrame(1, encoder.encode("x"), { mask: false })), 1002);
    assert.equal(await closeCodeFor(server, clientFrame(1, new Uint8Array([0xc3, 0x28]))), 1007);
    assert.equal(await closeCodeFor(server, clientFrame(2, new Uint8Array(2048))), 1009);
    assert.equal(await closeCodeFor(server, clientFrame(3, new Uint8Array(1))), 1002);
    assert.equal(await closeCodeFor(server, clientFrame(1, encoder.encode("x"), { rsv: 4 })), 1002);
    const stats = server.stats();
    assert.ok(stats.protocolErrors >= 5, `protocolErrors ${stats.protocolErrors}`);
    assert.ok(stats.wsClosesError >= 5, `wsClosesError ${stats.wsClosesError}`);
  } finally {
    await server.stop(false);
  }
});

test("ws: a ping is answered with a pong of the same payload; a close is echoed and the server closes TCP", async () => {
  const { server } = bunEcho();
  const client = await rawUpgrade(server.port);
  try {
    await client.write(clientFrame(9, encoder.encode("abc")));
    await client.until(() => serverFrames(client.bytes).some(([opcode]) => opcode === 10));
    const pong = serverFrames(client.bytes).find(([opcode]) => opcode === 10)!;
    assert.equal(new TextDecoder().decode(pong[1]), "abc");
    await client.write(clientFrame(8, new Uint8Array([0x03, 0xe8])));
    await client.closedByPeer();
    const close = serverFrames(client.bytes).find(([opcode]) => opcode === 8)!;
    assert.equal(closeCodeOf(close[1]), 1000);
  } finally {
    client.close();
    await server.stop(false);
  }
});

test("ws: a graceful stop sends 1001 to every open socket and finishes once they answered", async () => {
  const { server } = bunEcho();
  const clients = await Promise.all([0, 1, 2, 3].map(() => Client.open(`ws://127.0.0.1:${server.port}/`)));
  for (const client of clients) await client.take();
  assert.equal(server.pendingWebSockets, 4);
  const stopped = server.stop();
  const events = await Promise.all(clients.map((client) => client.closed()));
  for (const event of events) assert.equal(event.code, 1001);
  await stopped;
  assert.equal(server.stats().wsClosesNormal, 4);
});

test("ws: a message handler that throws is counted and the socket goes on", async () => {
  const { server } = bunEcho({
    message(ws: ServerWebSocket<unknown>, message: string | Uint8Array) {
      if (message === "boom") throw new Error("handler failure (expected by the test)");
      ws.send(message);
    },
  });
  try {
    const client = await Client.open(`ws://127.0.0.1:${server.port}/`);
    await client.take();
    client.socket.send("boom");
    client.socket.send("after");
    assert.deepEqual(await client.take(), ["after"]);
    assert.equal(server.stats().handlerErrors, 1);
    client.close();
    await client.closed();
  } finally {
    await server.stop(false);
  }
});

test("ws: bad websocket options are ConfigErrors naming the field", () => {
  assert.throws(() => serve({ port: 0, fetch: () => new Response(""), websocket: {} as never }), (e: unknown) => e instanceof ConfigError && /websocket\.message/.test(String(e)));
  assert.throws(() => serve({ port: 0, fetch: () => new Response(""), websocket: { message() {}, idleTimeout: -1 } as never }), /websocket\.idleTimeout/);
  assert.throws(() => serve({ port: 0, fetch: () => new Response(""), websocket: { message() {}, nope: 1 } as never }), /websocket\.nope/);
});

test("ws: a client that does not keep up: send() gives bytes, then -1, then 0 (dropped, counted) past backpressureLimit; drain once it reads", async () => {
  const codes: number[] = [];
  let drains = 0;
  const limit = 256 * 1024;
  const chunk = new Uint8Array(16 * 1024).fill(7);
  const { server } = bunEcho({
    backpressureLimit: limit,
    open(ws: ServerWebSocket<unknown>) {
      for (let i = 0; i < 2000; i++) codes.push(ws.send(chunk));
      codes.push(ws.getBufferedAmount());
    },
    drain() {
      drains++;
    },
  });
  const client = await rawUpgrade(server.port).then(async (c) => c); // reads into memory as it comes
  try {
    await until(() => codes.length === 2001, "the open handler's sends");
    const buffered = codes.pop()!;
    assert.ok(codes.some((c) => c === chunk.byteLength), "some sends went at once");
    assert.ok(codes.includes(-1), "some were queued under backpressure");
    const dropped = codes.filter((c) => c === 0).length;
    assert.ok(dropped > 0, "some were dropped past the limit");
    assert.ok(buffered <= limit + 2 * chunk.byteLength, `buffered ${buffered} bytes, limit ${limit}`);
    assert.equal(server.stats().wsDropped, dropped);
    const sent = codes.length - dropped;
    await client.until(() => client.bytes.byteLength >= sent * (chunk.byteLength + 4), 10_000);
    await until(() => drains === 1, "the drain event");
  } finally {
    client.close();
    await server.stop(false);
  }
});

test("ws: an idle socket is pinged after idleTimeout, then closed with 1001 when it stays silent", async () => {
  const { server, closes } = bunEcho({ idleTimeout: 1 });
  const client = await rawUpgrade(server.port);
  try {
    await client.closedByPeer(10_000);
    const frames = serverFrames(client.bytes).map(([opcode, payload]) => (opcode === 8 ? `close ${closeCodeOf(payload)}` : String(opcode)));
    assert.deepEqual(frames.filter((f) => f !== "1"), ["9", "close 1001"]); // after the greeting (text): a ping, then the close
    await until(() => closes.length === 1, "the close handler");
    assert.equal(server.stats().timeouts, 1);
  } finally {
    client.close();
    await server.stop(false);
  }
});

test("ws: subprotocols: Deno's protocol option answers one the client offered; Bun's via the upgrade headers", async () => {
  const deno = startServer((request) => upgradeWebSocket(request, { protocol: "chat.v2" }).response);
  const bun = startServer((request, server) => {
    server.upgrade(request, { headers: { "Sec-WebSocket-Protocol": "chat.v1", "X-Extra": "yes" } });
    return undefined as unknown as Response;
  }, { websocket: { message() {} } });
  try {
    const a = await Client.open(`ws://127.0.0.1:${deno.port}/`, ["chat.v1", "chat.v2"]);
    assert.equal(a.socket.protocol, "chat.v2");
    const b = await Client.open(`ws://127.0.0.1:${bun.port}/`, ["chat.v1"]);
    assert.equal(b.socket.protocol, "chat.v1");
    a.close();
    b.close();
    await Promise.all([a.closed(), b.closed()]);
  } finally {
    await Promise.all([deno.stop(false), bun.stop(false)]);
  }
});

test("ws: Deno.upgradeWebSocket takes a request of ours (Deno); upgradeWebSocket refuses a request from elsewhere", async () => {
  assert.throws(() => upgradeWebSocket(new Request("http://x/", { headers: { upgrade: "websocket" } })), /did not come from a reuseport server/);
  const native = (globalThis as { Deno?: { upgradeWebSocket?: typeof upgradeWebSocket } }).Deno?.upgradeWebSocket;
  if (native === undefined) return; // Bun has no Deno.upgradeWebSocket
  const server = startServer((request) => {
    const { socket, response } = (globalThis as unknown as { Deno: { upgradeWebSocket: typeof upgradeWebSocket } }).Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => socket.send(`deno ${event.data}`);
    return response;
  });
  try {
    const client = await Client.open(`ws://127.0.0.1:${server.port}/`);
    client.socket.send("hi");
    assert.deepEqual(await client.take(), ["deno hi"]);
    client.close();
    await client.closed();
  } finally {
    await server.stop(false);
  }
});

test("ws: a Hono app's upgradeWebSocket (hono/bun on Bun, hono/deno on Deno) runs unchanged on serve()", async () => {
  const { Hono } = await import("hono");
  const onBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
  const adapter = onBun ? await import("hono/bun") : await import("hono/deno");
  const app = new Hono();
  app.get("/ws", adapter.upgradeWebSocket(() => ({
    onMessage(event, ws) {
      ws.send(`hono ${event.data}`);
    },
  })));
  const websocket = onBun ? (adapter as typeof import("hono/bun")).websocket : undefined;
  const server = startServer(app.fetch as never, websocket ? { websocket } : {});
  try {
    const client = await Client.open(`ws://127.0.0.1:${server.port}/ws`);
    client.socket.send("hi");
    assert.deepEqual(await client.take(), ["hono hi"]);
    client.close();
    await client.closed();
  } finally {
    await server.stop(false);
  }
});

/** Runs the `ws` package's client under Node against url; returns its one line of JSON. */
async function nodePeer(url: string, deflate: boolean): Promise<{ echoed: number; pong: boolean; closeCode: number; extensions: string; error?: string }> {
  const { spawn } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  const script = fileURLToPath(new URL("../fixtures/ws-node-client.mjs", import.meta.url));
  const child = spawn("node", [script, url], { env: { ...process.env, WS_DEFLATE: deflate ? "1" : "0" }, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => (out += chunk));
  await new Promise((resolve) => child.once("close", resolve));
  return JSON.parse(out.trim().split("\n").pop() ?? "{}");
}

for (const deflate of [false, true]) {
  test(`ws: the ws package under Node, an independent peer: every length encoding echoed, a ping answered, a clean close (deflate ${deflate ? "offered" : "off"})`, async () => {
    const { server } = bunEcho({ open() {}, perMessageDeflate: true, maxPayloadLength: 4 << 20 });
    try {
      const result = await nodePeer(`ws://127.0.0.1:${server.port}/`, deflate);
      assert.equal(result.error, undefined, `the ws peer failed: ${result.error}`);
      assert.deepEqual({ echoed: result.echoed, pong: result.pong, closeCode: result.closeCode }, { echoed: 16, pong: true, closeCode: 1000 });
    } finally {
      await server.stop(false);
    }
  }, { timeoutMs: 30_000 });
}
