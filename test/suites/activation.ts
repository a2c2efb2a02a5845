// systemd socket activation, with Debian's systemd-socket-activate (npm test installs it where apt can):
// a cluster and a single engine serve the socket systemd passed instead of binding, reload under load with
// no failed request, and refuse what does not fit (a datagram socket for HTTP, LISTEN_PID of another).
import { assert, test } from "../_harness.ts";
import { listenersOn } from "../_cluster.ts";
import { crashLine, LoadClient } from "../_load.ts";
import { runtimeName } from "../_runtime.ts";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { Listener } from "../../src/net/listener.ts";

const APP = fileURLToPath(new URL("../fixtures/activated-app.ts", import.meta.url));
const ACTIVATE = spawnSync("sh", ["-c", "command -v systemd-socket-activate"], { encoding: "utf8" }).stdout.trim();
const skip = ACTIVATE === "" ? "systemd-socket-activate is not installed (Debian's systemd package; npm test installs it as root)" : false;
const runtimeArgs = (workers: number, mode?: string) =>
  runtimeName === "deno" ? [process.execPath, "run", "-A", "--no-check", APP, String(workers), mode ?? ""] : [process.execPath, APP, String(workers), mode ?? ""];

interface Activated {
  child: ChildProcess;
  port: number;
  output: () => string;
  /** Resolves with the "ready <port> <env>" line once the app serves (the first connection launched it). */
  ready: Promise<string>;
}

/** A port free a moment ago (systemd-socket-activate takes no port 0). */
async function freePort(transport: "tcp" | "udp" = "tcp"): Promise<number> {
  const probe = await Listener.open({ hostname: "127.0.0.1", port: 0, transport, reusePort: false });
  const port = probe.port;
  probe.close();
  return port;
}

/** systemd-socket-activate on a free port; the app is started by the first connection, as systemd does. */
async function activate(workers: number, mode?: string, extra: string[] = []): Promise<Activated> {
  const listen = `127.0.0.1:${await freePort(extra.includes("-d") ? "udp" : "tcp")}`;
  const child = spawn(ACTIVATE, ["-l", listen, ...extra, "--", ...runtimeArgs(workers, mode)], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  child.stderr!.on("data", (chunk) => (out += chunk));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "Listening on" line: ${out}`)), 10_000);
    const look = () => {
      const match = /Listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout!.on("data", look);
    child.stderr!.on("data", look);
    child.once("exit", (code) => reject(new Error(`systemd-socket-activate exited ${code}: ${out}`)));
  });
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the app never said ready: ${out}`)), 20_000);
    const look = () => {
      const line = /^ready .*$/m.exec(out)?.[0];
      if (line) {
        clearTimeout(timer);
        resolve(line);
      }
    };
    child.stdout!.on("data", look);
    child.once("exit", () => look());
  });
  ready.catch(() => {});
  return { child, port, output: () => out, ready };
}

/** Waits (bounded: 30 s) until the app's output satisfies predicate. */
async function untilOutput(activated: Activated, predicate: (text: string) => boolean): Promise<void> {
  for (let waited = 0; !predicate(activated.output()); waited += 20) {
    if (waited > 30_000 || activated.child.exitCode !== null) throw new Error(`not in the output: ${activated.output().slice(-1500)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function stop(activated: Activated): Promise<number | null> {
  if (activated.child.exitCode !== null) return activated.child.exitCode;
  const exited = new Promise<number | null>((resolve) => activated.child.once("exit", (code) => resolve(code)));
  process.kill(activated.child.pid!, "SIGTERM");
  return await exited;
}

for (const mode of ["thread", "process"]) {
  test(`activation: a 2-worker cluster serves the one socket systemd passed (no bind of its own), reloads under load with no failed request (${mode})`, async () => {
    const app = await activate(2, mode);
    try {
      const first = await fetch(`http://127.0.0.1:${app.port}/`, { headers: { connection: "close" } }); // launches the app
      assert.equal(first.status, 200);
      const [, portText] = (await first.text()).split(" ");
      assert.equal(Number(portText), app.port, "server.port is the activated socket's");
      assert.match(await app.ready, /^ready \d+ unset$/, "LISTEN_* are unset once taken, so no child takes them");
      assert.equal(listenersOn(app.port), 1, "one socket: systemd's, no bind of our own");
      const load = await LoadClient.start(app.port);
      for (let i = 1; i <= 3; i++) {
        process.kill(app.child.pid!, "SIGHUP");
        await untilOutput(app, (text) => (text.match(/reuseport: reload finished/g) ?? []).length >= i); // the primary's lifecycle line
      }
      const totals = await load.stop();
      console.log(`activated ${mode}: ${totals.requests} requests, 3 SIGHUP reloads, ${totals.failed} failed`);
      assert.ok(totals.requests > 1000, `the load ran: ${totals.requests}`);
      assert.equal(totals.failed, 0, `failed requests: ${totals.errors.slice(0, 5).join("; ")}`);
      assert.equal(listenersOn(app.port), 1);
      assert.equal(await stop(app), 0, app.output());
      assert.equal(crashLine(app.output()), null, app.output());
    } finally {
      app.child.kill("SIGKILL");
    }
  }, { timeoutMs: 90_000, skip });
}

test("activation: one engine serves systemd's socket; a datagram socket for HTTP and LISTEN_PID of another process are told apart", async () => {
  const single = await activate(1);
  try {
    assert.equal(await (await fetch(`http://127.0.0.1:${single.port}/`)).text().then((t) => Number(t.split(" ")[1])), single.port);
    assert.equal(listenersOn(single.port), 1);
    assert.equal(await stop(single), 0, single.output());
  } finally {
    single.child.kill("SIGKILL");
  }
  // A datagram socket for an HTTP server: refused, naming the socket.
  const datagram = spawn(ACTIVATE, ["-d", "-l", `127.0.0.1:${await freePort("udp")}`, "--", ...runtimeArgs(1)], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  datagram.stdout!.on("data", (chunk) => (out += chunk));
  datagram.stderr!.on("data", (chunk) => (out += chunk));
  await new Promise<void>((resolve) => {
    const look = () => /Listening on/.test(out) && resolve();
    datagram.stderr!.on("data", look);
  });
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(out)![1]);
  const udp = spawn("node", ["-e", `require("dgram").createSocket("udp4").send("x", ${port}, "127.0.0.1", (e, n) => process.exit(0))`]);
  await new Promise((resolve) => udp.once("exit", resolve));
  const code = await new Promise<number | null>((resolve) => datagram.once("exit", (c) => resolve(c)));
  assert.notEqual(code, 0);
  assert.match(out, /LISTEN_FDS serve\(\) serves TCP, but systemd passed fd 3 \(unknown, udp\)/);
  // LISTEN_PID of another process: one warning, and the server binds as usual.
  const other = spawnSync(runtimeArgs(1, "once")[0], runtimeArgs(1, "once").slice(1), { env: { ...process.env, LISTEN_PID: "1", LISTEN_FDS: "1" }, encoding: "utf8", timeout: 30_000, input: "" });
  assert.match(other.stderr, /LISTEN_PID=1 is not this process .*binding instead/);
}, { timeoutMs: 60_000, skip });
