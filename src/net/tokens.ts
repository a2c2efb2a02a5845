// Tokens reserved by the library: epoll data and ring user_data values that never name a connection
// (a connection's token is its slot number, below RESERVED_TOKEN_MIN). The copy of zig/src/tokens.zig:
// zig/tools/check_library.zig fails the build when a name or a value differs. Only tokens are exported here.

/** The engine's listening socket in its epoll set. */
export const LISTENER_TOKEN = 0xffff_fff0;
/** The ring's multishot poll of the loop's epoll fd. */
export const EPOLL_READY_TOKEN = 0xffff_fff1;
/** The ring's tick, a one-shot timeout that bounds a sleep in the ring. */
export const TICK_TOKEN = 0xffff_fff2;
/** The cancels a ring queues; a reap never reports them. */
export const CANCEL_TOKEN = 0xffff_fffe;
/** The poller's interrupt eventfd; rp_epoll_ctl refuses it, rp_poller_wait never reports it. */
export const INTERRUPT_TOKEN = 0xffff_ffff;
/** Every reserved token is at least this; a connection's token is below it. */
export const RESERVED_TOKEN_MIN = 0xffff_fff0;
