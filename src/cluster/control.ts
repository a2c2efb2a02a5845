// The control channel between the primary and its workers: JSON lines over a unix socket
// (node:net, the same on both runtimes and for threads and processes). Requests never pass
// here; only lifecycle messages do.
import { createServer, connect, type Server as NetServer, type Socket } from "node:net";
import { rmSync } from "node:fs";

export type ToWorker =
  | { type: "stop"; graceful: boolean; idleGraceMs: number; timeoutMs: number };

export type ToPrimary =
  | { type: "hello"; slot: number; id: number; generation: number; pid: number }
  | { type: "listening"; slot: number; port: number }
  | { type: "failed"; slot: number; message: string; fatal: boolean };

/** Splits a byte stream into JSON lines. */
function lineReader(socket: Socket, onMessage: (message: unknown) => void): void {
  let buffered = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    buffered += chunk;
    for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line) onMessage(JSON.parse(line));
    }
  });
}

export class ControlServer {
  private readonly server: NetServer;
  private readonly sockets = new Map<number, Socket>();

  private constructor(readonly path: string, server: NetServer) {
    this.server = server;
  }

  static listen(path: string, onMessage: (message: ToPrimary) => void, onClose: (slot: number) => void): Promise<ControlServer> {
    rmSync(path, { force: true });
    return new Promise((resolve, reject) => {
      let control: ControlServer;
      const server = createServer((socket) => {
        let slot = -1;
        socket.on("error", () => {});
        socket.on("close", () => {
          if (slot >= 0 && control.sockets.get(slot) === socket) control.sockets.delete(slot);
          if (slot >= 0) onClose(slot);
        });
        lineReader(socket, (message) => {
          const typed = message as ToPrimary;
          if (typed.type === "hello") {
            slot = typed.slot;
            control.sockets.set(slot, socket);
          }
          onMessage(typed);
        });
      });
      server.once("error", reject);
      server.listen(path, () => {
        control = new ControlServer(path, server);
        resolve(control);
      });
      server.unref?.();
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
    rmSync(this.path, { force: true });
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
      lineReader(socket, (message) => onMessage(message as ToWorker));
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
