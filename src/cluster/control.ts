// The control channel between the primary and its workers: JSON lines over a unix socket
// (node:net, the same on both runtimes and for threads and processes). Requests never pass
// here; only lifecycle messages do. The socket is 0600 in a 0700 directory of its own, the
// primary checks each peer's uid (SO_PEERCRED), and a line it cannot use is counted and ignored.
import { createServer, connect, type Server as NetServer, type Socket } from "node:net";
import { chmodSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { lib, runtime } from "../ffi/index.ts";
import { SOL_SOCKET } from "../net/constants.ts";

export type ToWorker =
  /** handedOver: the worker's listening socket now serves its successor too; it leaves it open (see Engine.stop). */
  /** drainMs: the health endpoint answers 503 this long, listener open, before the stop begins (the cluster's stop). */
  | { type: "stop"; graceful: boolean; idleGraceMs: number; timeoutMs: number; handedOver: boolean; drainMs: number };

export type ToPrimary =
  | { type: "hello"; slot: number; id: number; generation: number; pid: number }
  /** inherited: it serves its predecessor's listening socket (WorkerContext.inheritListenerFd), not a new one. */
  | { type: "listening"; slot: number; port: number; inherited: boolean };

/** What the primary refused on its control socket (ClusterStats.control). */
export interface ControlCounters {
  /** Lines that were not a message the primary knows (bad JSON, wrong shape, unknown slot, too long). */
  malformedLines: number;
  /** Connections closed at once because the peer runs as another user (neither ours nor root). */
  refusedPeers: number;
  /** WebSocket publishes the relay did not forward to a worker that was not reading them (pubsub.ts). */
  pubsubDropped?: number;
}

/** Messages are a few dozen bytes: a longer line is garbage, and is not buffered further. */
const LINE_BYTES_MAX = 64 * 1024;
const SO_PEERCRED = 17;
const UCRED_BYTES = 12; // struct ucred { pid, uid, gid }

/** Splits a byte stream into lines; a line longer than LINE_BYTES_MAX ends the stream (onOverflow). */
function lineReader(socket: Socket, onLine: (line: string) => void, onOverflow: () => void): void {
  let buffered = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    buffered += chunk;
    for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line) onLine(line);
    }
    if (buffered.length > LINE_BYTES_MAX) {
      buffered = "";
      onOverflow();
    }
  });
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

const isCount = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0;

/** The message in a line from a worker, or null when it is not one (wrong shape, a slot out of range). */
function parseToPrimary(line: string, slotCount: number): ToPrimary | null {
  const message = parseJson(line) as Record<string, unknown> | null | undefined;
  if (typeof message !== "object" || message === null || Array.isArray(message)) return null;
  if (!isCount(message.slot) || message.slot >= slotCount) return null;
  if (message.type === "hello" && isCount(message.id) && isCount(message.generation) && isCount(message.pid)) return message as ToPrimary;
  if (message.type === "listening" && isCount(message.port) && typeof message.inherited === "boolean") return message as ToPrimary;
  return null;
}

/**
 * The uid of the process at the other end of an accepted unix socket, or null when it cannot be
 * read. node:net has no peer credentials; both runtimes expose the accepted socket's fd as
 * `_handle.fd`, which SO_PEERCRED is read from.
 */
export function peerUid(socket: Socket): number | null {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) return null;
  const credentials = new Uint8Array(UCRED_BYTES);
  if (lib.rp_getsockopt_bytes(fd, SOL_SOCKET, SO_PEERCRED, credentials, UCRED_BYTES) !== UCRED_BYTES) return null;
  return new DataView(credentials.buffer).getUint32(4, true);
}

export class ControlServer {
  readonly counters: ControlCounters = { malformedLines: 0, refusedPeers: 0 };
  private readonly sockets = new Map<number, Socket>();
  private server!: NetServer;
  private warnedPeer = false;

  /** `directory` is the primary's own 0700 directory (host.ts privateDirectory); removed at close. */
  private constructor(readonly directory: string, private readonly slotCount: number) {}

  get path(): string {
    return join(this.directory, "control.sock");
  }

  static listen(directory: string, slotCount: number, onMessage: (message: ToPrimary) => void, onClose: (slot: number) => void): Promise<ControlServer> {
    const control = new ControlServer(directory, slotCount);
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => control.accept(socket, onMessage, onClose));
      server.once("error", reject);
      server.listen(control.path, () => {
        try {
          chmodSync(control.path, 0o600);
        } catch (error) {
          server.close();
          reject(error);
          return;
        }
        resolve(control);
      });
      runtime.unrefServer(server);
      control.server = server;
    });
  }

  private accept(socket: Socket, onMessage: (message: ToPrimary) => void, onClose: (slot: number) => void): void {
    socket.on("error", () => {});
    const uid = peerUid(socket);
    const ours = process.getuid?.() ?? -1;
    if (uid === null || (uid !== ours && uid !== 0)) {
      this.counters.refusedPeers++;
      if (!this.warnedPeer) {
        this.warnedPeer = true;
        console.warn(`reuseport: refused a control connection from ${uid === null ? "a peer whose uid cannot be read" : `uid ${uid}`} (counted in stats().control.refusedPeers)`);
      }
      socket.destroy();
      return;
    }
    let slot = -1;
    socket.on("close", () => {
      if (slot >= 0 && this.sockets.get(slot) === socket) this.sockets.delete(slot);
      if (slot >= 0) onClose(slot);
    });
    lineReader(socket, (line) => {
      const message = parseToPrimary(line, this.slotCount);
      if (message === null) {
        this.counters.malformedLines++;
        return;
      }
      if (message.type === "hello") {
        slot = message.slot;
        this.sockets.set(slot, socket);
      }
      onMessage(message);
    }, () => {
      this.counters.malformedLines++;
      socket.destroy();
    });
  }

  send(slot: number, message: ToWorker): boolean {
    const socket = this.sockets.get(slot);
    if (!socket) return false;
    socket.write(JSON.stringify(message) + "\n");
    return true;
  }

  close(): void {
    for (const socket of this.sockets.values()) socket.destroy();
    this.server.close();
    rmSync(this.directory, { recursive: true, force: true });
  }
}

export class ControlClient {
  private constructor(private readonly socket: Socket) {}

  /** Connects; onClose fires when the primary goes away (the worker should then end). */
  static connect(path: string, onMessage: (message: ToWorker) => void, onClose: () => void): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path, () => resolve(new ControlClient(socket)));
      socket.once("error", reject);
      socket.on("close", onClose);
      lineReader(socket, (line) => {
        const message = parseJson(line) as ToWorker | undefined;
        if (message?.type === "stop") onMessage(message);
      }, () => socket.destroy());
    });
  }

  send(message: ToPrimary): void {
    this.socket.write(JSON.stringify(message) + "\n");
  }

  close(): void {
    this.socket.removeAllListeners("close");
    this.socket.end();
  }
}
