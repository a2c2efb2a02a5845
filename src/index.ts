/**
 * reuseport: SO_REUSEPORT multi-worker HTTP and UDP servers for Bun and Deno.
 * @module
 */
export { serve, serveUdp, type Options, type UdpOptions } from "./serve.ts";
export { Server, type ServeInfo, type ServeOptions, type StopOptions } from "./http/server.ts";
export { type ClusterOptions, ClusterServer, CrashLoopError, ReloadError } from "./cluster/supervisor.ts";
export type { ClusterStats, KernelListenStats, WorkerStats } from "./cluster/cluster-stats.ts";
export { exposition as prometheusExposition } from "./cluster/metrics.ts";
export type { Limits } from "./http/limits.ts";
export { LIMITS_DEFAULT } from "./http/limits.ts";
export { toNativeRequest } from "./http/request.ts";
export { BpfError, ConfigError, PermissionError, SyscallError } from "./errors.ts";
export { FastResponse } from "./http/fast-response.ts";
export { type ServerWebSocket } from "./ws/socket.ts";
export type { WebSocketHandler } from "./ws/options.ts";
export { upgradeWebSocket, type UpgradeWebSocketOptions, WebSocketOverServer } from "./ws/deno-socket.ts";
export type { PubSubBridge } from "./ws/bridge.ts";
export { file, serveDir, type ServeDirOptions } from "./http/files.ts";
export { Listener, type ListenOptions } from "./net/listener.ts";
export { closeFd, connect, pendingError, readSome, writeSome } from "./net/socket.ts";
export { PollLoop } from "./net/poll-loop.ts";
export type { SocketAddress } from "./net/address.ts";
export { attachSteering, detachSteering, type Steering } from "./net/steering.ts";
export { Assembler, constantProgram, cpuProgram, loadProgram } from "./net/bpf.ts";
export { DatagramBatch } from "./udp/batch.ts";
export type { DatagramPayload } from "./udp/payload.ts";
export { kernelDrops, UdpServer, type UdpServeOptions, type UdpStats } from "./udp/server.ts";
export { allowedCpus, currentCpu, getFileLimit, pinToCpu, raiseFileLimit } from "./os.ts";
