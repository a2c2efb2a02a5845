// The hand-over point from HTTP/1.1 to a protocol a request upgraded to (WebSocket, src/ws/): the engine
// knows only these interfaces. Once a connection is upgraded its bytes go to the Upgraded, not the parser,
// and what the Upgraded writes leaves through the connection's sender (ResponseSender.writeUpgraded).
import type { SocketAddress } from "../net/address.ts";

/** What took a connection over: told of its bytes, its output draining and its end. */
export interface Upgraded {
  /** bytes[start, end) from the socket: a view that is the Upgraded's to overwrite, not to keep, during the call. */
  onBytes(bytes: Uint8Array, start: number, end: number): void;
  /** The peer sent FIN. */
  onPeerClosed(): void;
  /** The unsent output went down (below the connection's bound, or to nothing). */
  onDrained(): void;
  /** The server stops: graceful, a close handshake within its stop timeout; else the socket goes now. */
  onStop(graceful: boolean): void;
  /** The connection closed (either side, or the server); called once. */
  onClosed(): void;
}

/** What an Upgraded may do with its connection (Connection implements it). */
export interface UpgradedConnection {
  readonly peer: SocketAddress;
  readonly closed: boolean;
  /** Output the socket has not taken yet, in bytes. */
  readonly unsentBytes: number;
  /** Writes header[0, headerLength) then payload, behind everything written before. */
  write(header: Uint8Array, headerLength: number, payload: Uint8Array): void;
  /** Closes once what was written reached the socket. */
  closeWhenFlushed(): void;
  /** Closes now; unsent output is dropped. */
  destroy(): void;
}

/**
 * Takes the upgrade requests of one server: Bun's server.upgrade(request) marks one (the response is the
 * handler's undefined), Deno's upgradeWebSocket(request) returns a Response that completes it.
 */
export interface Upgrades {
  /**
   * The handler answered request `request` of `conn` (with `answer`: a Response, or anything for Bun's
   * idiom): if an upgrade is pending for it, writes the 101 head, hands the connection over and returns true.
   */
  complete(conn: UpgradeSource, answer: unknown): boolean;
}

/** The connection an upgrade request came on, as Upgrades sees it before the hand-over. */
export interface UpgradeSource extends UpgradedConnection {
  /** The server's Upgrades (null: it takes none). */
  readonly upgrades: Upgrades | null;
  /** Set by server.upgrade() for the request in flight; read (and cleared) by Upgrades.complete. */
  pendingUpgrade: unknown;
  /** Writes the 101 head and gives every later byte to `upgraded`. */
  takeOver(head: Uint8Array, upgraded: Upgraded): void;
}
