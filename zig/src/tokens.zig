//! Tokens reserved by the library: epoll data and ring user_data values that never name a
//! connection (connections use their slot number, always below `reserved_token_min`).
//! Mirrored in src/net/tokens.ts; tools/check_library.zig fails the build when the two differ.

/// The engine's listening socket in its epoll set.
pub const listener_token: u32 = 0xFFFF_FFF0;
/// The ring's multishot poll of the loop's epoll fd.
pub const epoll_ready_token: u32 = 0xFFFF_FFF1;
/// The ring's tick, a one-shot timeout that bounds a sleep in the ring.
pub const tick_token: u32 = 0xFFFF_FFF2;
/// The cancels a ring queues; reap never reports them to JS.
pub const cancel_token: u32 = 0xFFFF_FFFE;
/// The poller's interrupt eventfd; rp_poller_wait never reports it to JS.
pub const interrupt_token: u32 = 0xFFFF_FFFF;
/// Every reserved token is at least this; a connection's token is below it.
pub const reserved_token_min: u32 = 0xFFFF_FFF0;

comptime {
    for (.{ listener_token, epoll_ready_token, tick_token, cancel_token, interrupt_token }) |token| {
        if (token < reserved_token_min) @compileError("a reserved token below reserved_token_min");
    }
}
