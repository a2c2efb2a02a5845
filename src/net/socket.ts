// Plain socket helpers over the native core: connect, read, write, close. Used by clients,
// tools and tests; the HTTP engine calls the library directly on its hot path.
import { lib } from "../ffi/index.ts";
import { EAGAIN, EINPROGRESS, SyscallError } from "../ffi/errno.ts";
import { AF_INET, AF_INET6, AF_UNIX, encodeSockaddr, formatAddress, type SocketAddress } from "./address.ts";
import { SO_ERROR, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET } from "./constants.ts";

const scratch = new Uint8Array(128);

function familyOf(a: SocketAddress): number {
  return a.family === "unix" ? AF_UNIX : a.family === "IPv6" ? AF_INET6 : AF_INET;
}

/** Opens a nonblocking socket of the address's family (stream or datagram). */
export function openSocket(a: SocketAddress, transport: "tcp" | "udp" = "tcp"): number {
  const fd = lib.rp_socket(familyOf(a), transport === "tcp" ? SOCK_STREAM : SOCK_DGRAM);
  if (fd < 0) throw new SyscallError("socket", -fd, formatAddress(a));
  return fd;
}

/** Starts a nonblocking connect; on loopback the handshake usually completes within the call. */
export function connect(a: SocketAddress, transport: "tcp" | "udp" = "tcp"): number {
  const fd = openSocket(a, transport);
  const rc = lib.rp_connect(fd, scratch, encodeSockaddr(a, scratch));
  if (rc < 0 && -rc !== EINPROGRESS) {
    lib.rp_close(fd);
    throw new SyscallError("connect", -rc, formatAddress(a));
  }
  return fd;
}

/** The native side trusts offsets: a span outside the buffer would corrupt memory. */
function checkSpan(buf: Uint8Array, offset: number, length: number): void {
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > buf.byteLength) {
    throw new RangeError(`span ${offset}+${length} is outside the ${buf.byteLength}-byte buffer`);
  }
}

export function readSome(fd: number, buf: Uint8Array, offset: number = 0, length?: number): number {
  length ??= buf.byteLength - offset;
  checkSpan(buf, offset, length);
  const n = lib.rp_read(fd, buf, offset, length);
  if (n === -EAGAIN) return -1;
  if (n < 0) throw new SyscallError("read", -n);
  return n;
}

/** Writes what the socket takes now; returns bytes written (0 when it would block). */
export function writeSome(fd: number, buf: Uint8Array, offset: number = 0, length?: number): number {
  length ??= buf.byteLength - offset;
  checkSpan(buf, offset, length);
  const n = lib.rp_write(fd, buf, offset, length);
  if (n === -EAGAIN) return 0;
  if (n < 0) throw new SyscallError("write", -n);
  return n;
}

export function closeFd(fd: number): void {
  lib.rp_close(fd);
}

const intOut = new Uint8Array(4);

/** The pending error of a socket (SO_ERROR), e.g. the outcome of a nonblocking connect; 0 if none. */
export function pendingError(fd: number): number {
  const rc = lib.rp_getsockopt_int(fd, SOL_SOCKET, SO_ERROR, intOut);
  if (rc < 0) throw new SyscallError("getsockopt(SO_ERROR)", -rc);
  return new DataView(intOut.buffer).getInt32(0, true);
}
