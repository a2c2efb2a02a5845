// systemd socket activation (sd_listen_fds): when LISTEN_PID names this process, LISTEN_FDS sockets
// starting at fd 3 are ours to serve instead of binding. Each is checked (its type, that a stream socket
// listens, its address), the variables are unset so that no child takes them too, and the sockets are
// taken once per process: the first serve() gets them. systemd keeps its own copy of each socket, so a
// server that stops only closes its fd (a retire filter left on the socket would outlive us there).
import process from "node:process";
import { lib } from "../ffi/index.ts";
import { check } from "../ffi/errno.ts";
import { ConfigError } from "../errors.ts";
import { decodeSockaddr, type SocketAddress } from "./address.ts";
import { SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET } from "./constants.ts";

const SD_LISTEN_FDS_START = 3;
const SO_TYPE = 3;
const SO_ACCEPTCONN = 30;
/** A unit passes a handful; more is a malformed environment. */
const LISTEN_FDS_MAX = 1024;

export interface ActivatedSocket {
  fd: number;
  transport: "tcp" | "udp";
  address: SocketAddress;
  /** From LISTEN_FDNAMES (FileDescriptorName=), or "unknown" as systemd says. */
  name: string;
}

let taken: ActivatedSocket[] | null | undefined;
const scratch = new Uint8Array(128);
const intScratch = new Uint8Array(4);

/** The sockets systemd passed this process, taken once (later calls get null); null when none were. */
export function takeActivatedSockets(): ActivatedSocket[] | null {
  if (taken !== undefined) return null;
  taken = readActivation();
  return taken;
}

function readActivation(): ActivatedSocket[] | null {
  const pid = process.env.LISTEN_PID;
  const count = process.env.LISTEN_FDS;
  if (pid === undefined || count === undefined) return null;
  const names = (process.env.LISTEN_FDNAMES ?? "").split(":");
  if (Number(pid) !== process.pid) {
    console.warn(`reuseport: LISTEN_PID=${pid} is not this process (${process.pid}): the sockets systemd passed are another's; binding instead`);
    return null;
  }
  for (const name of ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]) delete process.env[name]; // no child may take them too
  if (!/^\d+$/.test(count) || Number(count) < 1 || Number(count) > LISTEN_FDS_MAX) {
    throw new ConfigError("LISTEN_FDS", `must be a count of sockets from 1 to ${LISTEN_FDS_MAX}, got ${JSON.stringify(count)}`);
  }
  return Array.from({ length: Number(count) }, (_, i) => describe(SD_LISTEN_FDS_START + i, names[i] || "unknown"));
}

function socketOption(fd: number, name: number): number {
  check(lib.rp_getsockopt_int(fd, SOL_SOCKET, name, intScratch), "getsockopt", `activated fd ${fd}`);
  return new DataView(intScratch.buffer).getInt32(0, true);
}

function describe(fd: number, name: string): ActivatedSocket {
  let type: number;
  try {
    type = socketOption(fd, SO_TYPE);
  } catch (error) {
    throw new ConfigError("LISTEN_FDS", `fd ${fd} (${name}) is not a socket: ${(error as Error).message}`);
  }
  if (type !== SOCK_STREAM && type !== SOCK_DGRAM) throw new ConfigError("LISTEN_FDS", `fd ${fd} (${name}) is neither a stream nor a datagram socket (SO_TYPE ${type})`);
  if (type === SOCK_STREAM && socketOption(fd, SO_ACCEPTCONN) !== 1) {
    throw new ConfigError("LISTEN_FDS", `fd ${fd} (${name}) is a stream socket that does not listen (ListenStream= gives a listening one)`);
  }
  const address = decodeSockaddr(scratch, check(lib.rp_getsockname(fd, scratch), "getsockname", `activated fd ${fd}`));
  check(lib.rp_adopt(fd), "fcntl(O_NONBLOCK)", `activated fd ${fd}`);
  return { fd, transport: type === SOCK_STREAM ? "tcp" : "udp", address, name };
}

/** The activated sockets a server of this transport serves: all of them of that kind, none of the other. */
export function activatedFor(sockets: ActivatedSocket[], transport: "tcp" | "udp", what: string): ActivatedSocket[] {
  const wrong = sockets.filter((s) => s.transport !== transport);
  if (wrong.length > 0) {
    throw new ConfigError("LISTEN_FDS", `${what} serves ${transport.toUpperCase()}, but systemd passed ${wrong.map((s) => `fd ${s.fd} (${s.name}, ${s.transport})`).join(", ")}`);
  }
  return sockets;
}
