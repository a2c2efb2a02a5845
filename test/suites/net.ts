// Foundation: reuseport groups, steering, address families, listen queues and error mapping.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, test } from "../_harness.ts";
import { acceptAll, closeAll, connectMany, connectOutcome, isRoot, openGroup } from "../_net.ts";
import { Listener } from "../../src/net/listener.ts";
import { kernelListenStats } from "../../src/cluster/cluster-stats.ts";
import { attachSteering, detachSteering } from "../../src/net/steering.ts";
import { constantProgram, loadProgram, PROG_TYPE_SOCKET_FILTER } from "../../src/net/bpf.ts";
import { closeFd, connect, readSome, writeSome } from "../../src/net/socket.ts";
import { allowedCpus, currentCpu, getFileLimit, raiseFileLimit, withCpu } from "../../src/os.ts";
import { BpfError, ConfigError, SyscallError } from "../../src/errors.ts";

test("net: 4 listeners share one port and each accepts some of 400 connections", async () => {
  const group = await openGroup(4);
  const fds = connectMany(group[0].address, 400);
  try {
    const counts = acceptAll(group, 400);
    assert.equal(counts.reduce((a, b) => a + b, 0), 400, `accepted ${counts}`);
    for (const count of counts) assert.ok(count > 0, `every listener gets some: ${counts}`);
  } finally {
    closeAll(group, fds);
  }
});

test("net: without SO_REUSEPORT the second bind fails with EADDRINUSE", async () => {
  const first = await Listener.open({ hostname: "127.0.0.1", port: 0, reusePort: false });
  try {
    await assert.rejects(Listener.open({ hostname: "127.0.0.1", port: first.port, reusePort: false }), (error: unknown) => {
      assert.ok(error instanceof SyscallError);
      assert.equal(error.code, "EADDRINUSE");
      assert.equal(error.syscall, "bind");
      assert.equal(error.address, `127.0.0.1:${first.port}`);
      assert.match(error.message, new RegExp(`^bind EADDRINUSE 127\\.0\\.0\\.1:${first.port}`));
      return true;
    });
    // A reuseport socket cannot join a port held by a socket that did not opt in.
    await assert.rejects(Listener.open({ hostname: "127.0.0.1", port: first.port }), { code: "EADDRINUSE" });
  } finally {
    first.close();
  }
});

test("net: cpu steering sends every connection from CPU k to listener k % n", async () => {
  const cpus = allowedCpus();
  const group = await openGroup(2);
  const fds: number[] = [];
  try {
    attachSteering(group[0].fd, "cpu", group.length);
    for (const cpu of cpus.slice(0, 4)) {
      const counts = withCpu(cpu, () => {
        assert.equal(currentCpu(), cpu);
        fds.push(...connectMany(group[0].address, 25));
        return acceptAll(group, 25);
      });
      const expected = group.map((_, i) => (i === cpu % group.length ? 25 : 0));
      assert.deepEqual(counts, expected, `client on cpu ${cpu}`);
    }
  } finally {
    closeAll(group, fds);
  }
});

test("net: eBPF program returning 0 sends all to listener 0; detach restores hash", async () => {
  const group = await openGroup(3);
  const fds: number[] = [];
  try {
    attachSteering(group[1].fd, { program: constantProgram(0) }, group.length);
    fds.push(...connectMany(group[0].address, 60));
    assert.deepEqual(acceptAll(group, 60), [60, 0, 0]);
    detachSteering(group[1].fd);
    fds.push(...connectMany(group[0].address, 300));
    const spread = acceptAll(group, 300);
    assert.equal(spread.reduce((a, b) => a + b, 0), 300);
    for (const count of spread) assert.ok(count > 0, `hash spreads again: ${spread}`);
  } finally {
    closeAll(group, fds);
  }
}, { skip: isRoot ? false : "loading BPF needs root or CAP_BPF" });

test("net: eBPF cpu program (SOCKET_FILTER) steers like the classic one", async () => {
  const group = await openGroup(2);
  const fds: number[] = [];
  try {
    attachSteering(group[0].fd, "cpu-ebpf", group.length);
    for (const cpu of allowedCpus().slice(0, 2)) {
      const counts = withCpu(cpu, () => {
        fds.push(...connectMany(group[0].address, 20));
        return acceptAll(group, 20);
      });
      assert.equal(counts[cpu % 2], 20, `cpu ${cpu}: ${counts}`);
    }
  } finally {
    closeAll(group, fds);
  }
}, { skip: isRoot ? false : "loading BPF needs root or CAP_BPF" });

test("net: invalid BPF is refused with the verifier log", () => {
  assert.throws(() => loadProgram(PROG_TYPE_SOCKET_FILTER, new Uint8Array(7)), (e: unknown) => e instanceof BpfError && e.code === "EINVAL");
  // exit without setting r0: the verifier says R0 is not readable.
  const exitOnly = new Uint8Array([0x95, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => loadProgram(PROG_TYPE_SOCKET_FILTER, exitOnly), (e: unknown) => {
    assert.ok(e instanceof BpfError);
    assert.equal(e.code, "EACCES");
    assert.match(e.log, /R0 !read_ok/);
    return true;
  });
}, { skip: isRoot ? false : "loading BPF needs root or CAP_BPF" });

test("net: IPv6 loopback and dual stack", async () => {
  const v6 = await Listener.open({ hostname: "::1", port: 0 });
  const dual = await Listener.open({ hostname: "::", port: 0 });
  const only = await Listener.open({ hostname: "::", port: 0, ipv6Only: true });
  const fds: number[] = [];
  try {
    assert.equal(v6.address.family, "IPv6");
    assert.equal(v6.address.address, "::1");
    fds.push(connect({ family: "IPv6", address: "::1", port: v6.port }));
    assert.deepEqual(acceptAll([v6], 1), [1]);
    fds.push(connect({ family: "IPv4", address: "127.0.0.1", port: dual.port }));
    assert.deepEqual(acceptAll([dual], 1), [1]);
    // v6only: nothing listens for IPv4 on that port, so the connect is refused at once.
    const refused = connect({ family: "IPv4", address: "127.0.0.1", port: only.port });
    fds.push(refused);
    assert.equal(connectOutcome(refused), "ECONNREFUSED");
    fds.push(connect({ family: "IPv6", address: "::1", port: only.port }));
    assert.deepEqual(acceptAll([only], 1), [1]);
  } finally {
    closeAll([v6, dual, only], fds);
  }
});

test("net: unix socket round trip and peer address", async () => {
  const dir = mkdtempSync(join(tmpdir(), "reuseport-"));
  const path = join(dir, "s.sock");
  const listener = await Listener.open({ path });
  const client = connect({ family: "unix", address: path, port: 0 });
  try {
    // A unix stream connect is queued on the listener before connect() returns.
    const conn = listener.accept();
    assert.ok(conn);
    const server = conn.fd;
    assert.equal(writeSome(client, new TextEncoder().encode("ping")), 4);
    const buf = new Uint8Array(16);
    assert.equal(readSome(server, buf), 4);
    assert.equal(new TextDecoder().decode(buf.subarray(0, 4)), "ping");
    closeFd(server);
  } finally {
    closeFd(client);
    listener.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("net: bad input fails before any syscall with a clear error", async () => {
  await assert.rejects(Listener.open({ port: 70000 }), (e: unknown) => e instanceof ConfigError && /port must be an integer from 0 to 65535, got 70000/.test(e.message));
  await assert.rejects(Listener.open({ port: -1 }), ConfigError);
  await assert.rejects(Listener.open({ port: 1.5 }), ConfigError);
  await assert.rejects(Listener.open({ hostname: "no-such-host.invalid", port: 0 }), (e: unknown) => e instanceof ConfigError && /no-such-host\.invalid/.test(e.message));
  await assert.rejects(Listener.open({ port: 0, backlog: 0 }), /backlog must be a positive integer, got 0/);
  await assert.rejects(Listener.open({ port: 0, backlog: -5 }), ConfigError);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(Listener.open({ port: 0, colour: "red" } as any), /colour is not a listen option/);
});

test("net: RLIMIT_NOFILE can be raised to the hard limit", () => {
  const raised = raiseFileLimit();
  assert.equal(raised.soft, raised.hard);
  assert.deepEqual(getFileLimit(), raised);
});

test("net: a backlog above net.core.somaxconn is clamped with one warning", async () => {
  const warnings: unknown[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
  try {
    for (let i = 0; i < 2; i++) (await Listener.open({ hostname: "127.0.0.1", port: 0, backlog: 10_000_000 })).close();
  } finally {
    console.warn = original;
  }
  assert.equal(warnings.length, 1, "one warning for the value, not one per socket");
  assert.match(String(warnings[0]), /backlog 10000000 is above net\.core\.somaxconn \(\d+\); the kernel uses \d+/);
});

test("net: readSome/writeSome refuse a span outside the buffer (the native side trusts it)", () => {
  const buf = new Uint8Array(8);
  assert.throws(() => readSome(0, buf, 4, 8), /span 4\+8 is outside the 8-byte buffer/);
  assert.throws(() => writeSome(0, buf, -1, 2), RangeError);
  assert.throws(() => writeSome(0, buf, 0.5, 2), RangeError);
});

test("net: a listener with backlog 1 that never accepts: ListenOverflows and ListenDrops grow, its accept queue shows full", async () => {
  const listener = Listener.openSync({ hostname: "127.0.0.1", port: 0, backlog: 1 });
  const fds: number[] = [];
  try {
    const before = kernelListenStats(listener.port);
    assert.ok(before, "procfs is readable here");
    assert.equal(before.acceptQueue, 0, "an empty accept queue");
    fds.push(...connectMany(listener.address, 8)); // nonblocking: the queue holds 2, the other SYNs are dropped
    // Loopback handles each SYN within its connect(); the counters are read until they show it (bounded).
    let after = kernelListenStats(listener.port)!;
    for (let round = 0; round < 200 && after.listenOverflows === before.listenOverflows; round++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      after = kernelListenStats(listener.port)!;
    }
    // Host-wide counters: other sockets may add to them, never take away.
    assert.ok(after.listenOverflows - before.listenOverflows >= 1, `ListenOverflows grew: ${before.listenOverflows} -> ${after.listenOverflows}`);
    assert.ok(after.listenDrops - before.listenDrops >= 1, `ListenDrops grew: ${before.listenDrops} -> ${after.listenDrops}`);
    assert.ok(after.acceptQueue >= 1 && after.acceptQueue <= 2, `the accept queue holds what fit: ${after.acceptQueue}`);
  } finally {
    closeAll([listener], fds);
  }
});
