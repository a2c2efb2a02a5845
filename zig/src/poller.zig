//! epoll and the Poller: an epoll set, natively allocated 8-byte event slots, an interrupt
//! eventfd for a blocked wait, and an optional wake thread that feeds a pipe JS can watch.

const std = @import("std");
const linux = std.os.linux;
const errno = @import("errno.zig");
const handles = @import("handles.zig");
const tokens = @import("tokens.zig");

pub const pollers_max = 4096;
/// Upper bound for rp_poller_create's events_max: 512 KiB of slots per poller.
pub const events_per_wait_max = 65536;
/// The token of the interrupt eventfd; rp_poller_wait never reports it to JS.
pub const interrupt_token: u32 = tokens.interrupt_token;
/// Stack of the wake thread. Its loop needs little, but glibc carves the host's static TLS
/// (256 KiB in Zig's own test runner, unknown in Bun or Deno) out of this size and fails
/// pthread_create with EINVAL when it does not fit. Pages are committed only when touched.
const wake_thread_stack_bytes = 4 * 1024 * 1024;

/// What JS reads: the epoll events and the low 32 bits of epoll_data.
pub const Slot = extern struct {
    events: u32,
    token: u32,
};

comptime {
    std.debug.assert(@sizeOf(Slot) == 8);
}

pub fn epollCreate() i32 {
    return errno.result(linux.epoll_create1(linux.EPOLL.CLOEXEC));
}

pub fn epollControl(epoll_fd: i32, operation: i32, fd: i32, events: u32, token: u32) i32 {
    if (token == interrupt_token) return errno.negative(.INVAL); // Reserved for the interrupt eventfd.
    var event: linux.epoll_event = .{ .events = events, .data = .{ .u64 = token } };
    return errno.result(linux.epoll_ctl(epoll_fd, @bitCast(operation), fd, &event));
}

/// Tokens in the wake thread's own epoll set.
const wake_token_events: u64 = 0;
const wake_token_stop: u64 = 1;
/// The wake thread's interest in the poller's epoll fd: one report, then silent until rp_poller_arm.
const wake_interest: u32 = linux.EPOLL.IN | linux.EPOLL.ONESHOT;

const Poller = struct {
    epoll_fd: i32,
    interrupt_fd: i32,
    slots: []Slot,
    events_native: []linux.epoll_event,
    /// rp_poller_wait calls in flight (Deno runs them on its blocking pool); destroy waits for 0.
    waiters: std.atomic.Value(u32) = .init(0),
    closing: std.atomic.Value(bool) = .init(false),
    /// The wake thread's epoll set: the poller's epoll fd (one-shot) and stop_fd.
    wake_epoll_fd: i32 = -1,
    /// An eventfd; destroy signals it to end the wake thread's wait.
    stop_fd: i32 = -1,
    pipe_read_fd: i32 = -1,
    pipe_write_fd: i32 = -1,
    wake_thread: ?std.Thread = null,
};

var table: handles.Table(Poller, pollers_max) = .{};
const allocator = std.heap.page_allocator;

pub fn create(events_max: u32) i32 {
    const poller = open(events_max) catch |err| return errno.setupErrno(err);
    const handle = table.insert(poller);
    if (handle < 0) release(poller);
    return handle;
}

/// A poller with its slots, epoll set and interrupt eventfd; each step is undone if a later one fails.
fn open(events_max: u32) errno.SetupError!*Poller {
    if (events_max == 0 or events_max > events_per_wait_max) return error.ArgumentsInvalid;
    const poller = try allocator.create(Poller);
    errdefer allocator.destroy(poller);
    const slots = try allocator.alloc(Slot, events_max);
    errdefer allocator.free(slots);
    const events_native = try allocator.alloc(linux.epoll_event, events_max);
    errdefer allocator.free(events_native);
    @memset(slots, .{ .events = 0, .token = 0 });
    const epoll_fd = try errno.setupResult(linux.epoll_create1(linux.EPOLL.CLOEXEC));
    errdefer _ = linux.close(epoll_fd);
    const interrupt_fd = try errno.setupResult(linux.eventfd(0, linux.EFD.CLOEXEC | linux.EFD.NONBLOCK));
    errdefer _ = linux.close(interrupt_fd);
    // Level-triggered: the counter stays readable until rp_poller_wait consumes it.
    var event: linux.epoll_event = .{ .events = linux.EPOLL.IN, .data = .{ .u64 = interrupt_token } };
    _ = try errno.setupResult(linux.epoll_ctl(epoll_fd, linux.EPOLL.CTL_ADD, interrupt_fd, &event));
    poller.* = .{ .epoll_fd = epoll_fd, .interrupt_fd = interrupt_fd, .slots = slots, .events_native = events_native };
    return poller;
}

pub fn epollFd(handle: i32) i32 {
    const poller = table.get(handle) orelse return errno.negative(.BADF);
    return poller.epoll_fd;
}

pub fn eventSlots(handle: i32) ?*anyopaque {
    const poller = table.get(handle) orelse return null;
    return poller.slots.ptr;
}

/// epoll_wait into the native array, then unpack into the 8-byte slots, dropping the
/// interrupt token. EINTR restarts the wait with the full timeout (a rare, bounded delay).
pub fn wait(handle: i32, timeout_ms: i32) i32 {
    const poller = table.get(handle) orelse return errno.negative(.BADF);
    // seq_cst on waiters and closing: wait and destroy each write one and then read the
    // other, and at least one of them must see the other's write.
    _ = poller.waiters.fetchAdd(1, .seq_cst);
    defer leaveWait(poller);
    if (poller.closing.load(.seq_cst)) return errno.negative(.BADF);
    const events_native = poller.events_native;
    const rc = errno.retry(linux.epoll_wait, .{ poller.epoll_fd, events_native.ptr, @as(u32, @intCast(events_native.len)), timeout_ms });
    if (linux.errno(rc) != .SUCCESS) return errno.result(rc);
    var count: u32 = 0;
    for (events_native[0..rc]) |event| {
        const token: u32 = @truncate(event.data.u64);
        if (token == interrupt_token) {
            drainEventfd(poller.interrupt_fd);
            continue;
        }
        poller.slots[count] = .{ .events = event.events, .token = token };
        count += 1;
    }
    return @intCast(count);
}

fn leaveWait(poller: *Poller) void {
    const waiters_before = poller.waiters.fetchSub(1, .seq_cst);
    if (waiters_before == 1 and poller.closing.load(.seq_cst)) {
        _ = linux.futex_3arg(&poller.waiters.raw, .{ .cmd = .WAKE, .private = true }, 1);
    }
}

fn drainEventfd(eventfd: i32) void {
    var counter: u64 = 0;
    // EAGAIN: another waiter already consumed it, which is just as good.
    _ = errno.retry(linux.read, .{ eventfd, std.mem.asBytes(&counter), @sizeOf(u64) });
}

fn signalEventfd(eventfd: i32) i32 {
    const one: u64 = 1;
    const rc = errno.retry(linux.write, .{ eventfd, std.mem.asBytes(&one), @sizeOf(u64) });
    // EAGAIN: the counter is near its maximum, so a wake-up is already pending.
    if (linux.errno(rc) == .AGAIN) return 0;
    return if (linux.errno(rc) == .SUCCESS) 0 else errno.result(rc);
}

pub fn interrupt(handle: i32) i32 {
    const poller = table.get(handle) orelse return errno.negative(.BADF);
    return signalEventfd(poller.interrupt_fd);
}

/// The read end of the wake pipe; the first call makes the pipe and starts the wake thread.
/// Owner-thread call, like rp_poller_arm and rp_poller_destroy (see NOTES.md).
pub fn wakeFd(handle: i32) i32 {
    const poller = table.get(handle) orelse return errno.negative(.BADF);
    if (poller.wake_thread == null) startWake(poller) catch |err| return errno.setupErrno(err);
    return poller.pipe_read_fd;
}

/// The pipe, the stop eventfd, the thread's epoll set and the thread; on failure none of them is left.
fn startWake(poller: *Poller) errno.SetupError!void {
    errdefer closeWake(poller); // every wake field starts at -1, and closeWake leaves them so
    var fds: [2]linux.fd_t = undefined;
    _ = try errno.setupResult(linux.pipe2(&fds, .{ .CLOEXEC = true, .NONBLOCK = true }));
    poller.pipe_read_fd = fds[0];
    poller.pipe_write_fd = fds[1];
    poller.stop_fd = try errno.setupResult(linux.eventfd(0, linux.EFD.CLOEXEC | linux.EFD.NONBLOCK));
    poller.wake_epoll_fd = try errno.setupResult(linux.epoll_create1(linux.EPOLL.CLOEXEC));
    // The thread starts armed.
    _ = try errno.setupResult(wakeControl(poller, linux.EPOLL.CTL_ADD, poller.epoll_fd, wake_interest, wake_token_events));
    _ = try errno.setupResult(wakeControl(poller, linux.EPOLL.CTL_ADD, poller.stop_fd, linux.EPOLL.IN, wake_token_stop));
    const config: std.Thread.SpawnConfig = .{ .stack_size = wake_thread_stack_bytes };
    poller.wake_thread = std.Thread.spawn(config, wakeLoop, .{poller}) catch |err| return switch (err) {
        error.OutOfMemory, error.SystemResources, error.LockedMemoryLimitExceeded => error.OutOfMemory,
        error.ThreadQuotaExceeded, error.Unexpected => error.ThreadQuotaExceeded,
    };
}

/// epoll_ctl on the wake thread's own set; the raw syscall result.
fn wakeControl(poller: *Poller, operation: u32, fd: i32, events: u32, token: u64) usize {
    var event: linux.epoll_event = .{ .events = events, .data = .{ .u64 = token } };
    return linux.epoll_ctl(poller.wake_epoll_fd, operation, fd, &event);
}

/// Lets the wake thread report again once JS has drained the events: re-enables its one-shot
/// interest. The kernel re-checks readiness on the spot, so events that came meanwhile are not
/// missed, and the parked thread is not woken unless there is something to report.
pub fn arm(handle: i32) i32 {
    const poller = table.get(handle) orelse return errno.negative(.BADF);
    if (poller.wake_thread == null) return 0;
    return errno.result(wakeControl(poller, linux.EPOLL.CTL_MOD, poller.epoll_fd, wake_interest, wake_token_events));
}

/// The wake thread: wait in its own epoll set until the poller's epoll fd is readable (nesting
/// reports readiness without consuming edge-triggered events; one-shot keeps it quiet until JS
/// re-arms), write one byte, repeat. It ends when destroy signals stop_fd.
fn wakeLoop(poller: *Poller) void {
    blockSignals();
    var events: [2]linux.epoll_event = undefined;
    while (true) {
        const rc = linux.epoll_wait(poller.wake_epoll_fd, &events, events.len, -1);
        switch (linux.errno(rc)) {
            .SUCCESS => {},
            .INTR => continue,
            // Cannot happen with our own valid fds; wake JS once rather than hang it.
            else => return wakeJs(poller),
        }
        for (events[0..rc]) |event| {
            if (event.data.u64 == wake_token_stop) return;
        }
        wakeJs(poller);
    }
}

fn wakeJs(poller: *Poller) void {
    const byte: [1]u8 = .{1};
    // EAGAIN: the pipe is full, so JS already has wake-ups to read.
    _ = errno.retry(linux.write, .{ poller.pipe_write_fd, &byte, 1 });
}

/// Process-directed signals (SIGINT, SIGCHLD, ...) belong to the runtime's own threads.
/// Only the classic signals 1..31: libc reserves real-time ones (32..34) for its internals.
fn blockSignals() void {
    var set = linux.sigemptyset();
    set[0] |= 0x7FFF_FFFF;
    _ = linux.sigprocmask(linux.SIG.BLOCK, &set, null);
}

/// Stops and joins the wake thread, waits out in-flight waits, closes every fd, frees memory.
pub fn destroy(handle: i32) i32 {
    const poller = table.remove(handle) orelse return errno.negative(.BADF);
    poller.closing.store(true, .seq_cst);
    if (poller.wake_thread) |thread| {
        _ = signalEventfd(poller.stop_fd);
        thread.join();
        poller.wake_thread = null;
    }
    waitForWaiters(poller);
    release(poller);
    return 0;
}

/// A Deno nonblocking rp_poller_wait(-1) may still be blocked: interrupt it and wait.
fn waitForWaiters(poller: *Poller) void {
    while (true) {
        const waiters = poller.waiters.load(.seq_cst);
        if (waiters == 0) return;
        _ = signalEventfd(poller.interrupt_fd);
        _ = linux.futex_4arg(&poller.waiters.raw, .{ .cmd = .WAIT, .private = true }, waiters, null);
    }
}

fn release(poller: *Poller) void {
    closeWake(poller);
    _ = linux.close(poller.epoll_fd);
    _ = linux.close(poller.interrupt_fd);
    allocator.free(poller.slots);
    allocator.free(poller.events_native);
    allocator.destroy(poller);
}

fn closeWake(poller: *Poller) void {
    inline for (.{ "pipe_read_fd", "pipe_write_fd", "stop_fd", "wake_epoll_fd" }) |field| {
        if (@field(poller, field) >= 0) _ = linux.close(@field(poller, field));
        @field(poller, field) = -1;
    }
}

const testing = std.testing;
const io = @import("io.zig");
const sockets = @import("sockets.zig");

/// A poller watching the read end of a fresh pipe, edge-triggered, under `token`.
const PipeFixture = struct {
    handle: i32,
    fds: [2]i32,

    fn init(token: u32) !PipeFixture {
        const handle = create(16);
        try testing.expect(handle >= 0);
        var fds: [2]i32 = undefined;
        try testing.expectEqual(@as(i32, 0), io.pipe(std.mem.asBytes(&fds)));
        const edge = linux.EPOLL.IN | linux.EPOLL.ET;
        try testing.expectEqual(@as(i32, 0), epollControl(epollFd(handle), linux.EPOLL.CTL_ADD, fds[0], edge, token));
        return .{ .handle = handle, .fds = fds };
    }

    /// Destroys the poller (again, if the test already did) and closes the pipe.
    fn deinit(fixture: PipeFixture) void {
        _ = destroy(fixture.handle);
        _ = sockets.close(fixture.fds[0]);
        _ = sockets.close(fixture.fds[1]);
    }

    fn send(fixture: PipeFixture, byte: u8) !void {
        var bytes = [1]u8{byte};
        try testing.expectEqual(@as(i32, 1), io.write(fixture.fds[1], &bytes, 0, 1));
    }
};

test "poller: poll() on the epoll fd does not consume an edge-triggered event" {
    const fixture = try PipeFixture.init(7);
    defer fixture.deinit();
    const handle = fixture.handle;
    const edge = linux.EPOLL.IN | linux.EPOLL.ET;
    try testing.expectEqual(errno.negative(.INVAL), epollControl(epollFd(handle), linux.EPOLL.CTL_ADD, fixture.fds[1], edge, interrupt_token));
    try fixture.send('x');

    // poll() twice: the event stays in the ready list both times.
    try sockets.waitReady(epollFd(handle), linux.POLL.IN);
    try sockets.waitReady(epollFd(handle), linux.POLL.IN);
    try testing.expectEqual(@as(i32, 1), wait(handle, 0));
    const slots: [*]Slot = @ptrCast(@alignCast(eventSlots(handle).?));
    try testing.expectEqual(@as(u32, 7), slots[0].token);
    try testing.expect(slots[0].events & linux.EPOLL.IN != 0);
    // Edge-triggered: the harvest consumed it.
    try testing.expectEqual(@as(i32, 0), wait(handle, 0));
}

test "poller: interrupt makes a blocked wait return no events" {
    const handle = create(4);
    try testing.expect(handle >= 0);
    defer _ = destroy(handle);
    try testing.expectEqual(@as(i32, 0), interrupt(handle));
    try testing.expectEqual(@as(i32, 0), wait(handle, -1));
    try testing.expectEqual(@as(i32, 0), wait(handle, 0)); // The eventfd counter was consumed.
    try testing.expectEqual(errno.negative(.BADF), wait(handle + 1, 0));
    try testing.expect(eventSlots(-1) == null);
}

test "poller: the wake thread writes one byte per arm, destroy joins it" {
    const fixture = try PipeFixture.init(3);
    defer fixture.deinit();
    const handle = fixture.handle;
    const wake_fd = wakeFd(handle);
    try testing.expect(wake_fd >= 0);
    try testing.expectEqual(wake_fd, wakeFd(handle));
    try sockets.expectCloexecNonblock(wake_fd);

    for (0..3) |_| {
        try fixture.send('x');
        try sockets.waitReady(wake_fd, linux.POLL.IN);
        var byte: [8]u8 = undefined;
        try testing.expectEqual(@as(i32, 1), io.read(wake_fd, &byte, 0, 8));
        try testing.expectEqual(@as(i32, 1), wait(handle, 0));
        var data: [8]u8 = undefined;
        try testing.expectEqual(@as(i32, 1), io.read(fixture.fds[0], &data, 0, 8));
        try testing.expectEqual(@as(i32, 0), arm(handle));
    }
    try testing.expectEqual(@as(i32, 0), destroy(handle));
    try testing.expectEqual(errno.negative(.BADF), destroy(handle));
}

test "poller: the wake thread stays quiet until armed, and arming reports events that came meanwhile" {
    const fixture = try PipeFixture.init(3);
    defer fixture.deinit();
    const handle = fixture.handle;
    const wake_fd = wakeFd(handle);
    try testing.expect(wake_fd >= 0);
    var byte: [8]u8 = undefined;
    try testing.expectEqual(@as(i32, 0), arm(handle)); // arming an armed thread changes nothing
    try fixture.send('x');
    try sockets.waitReady(wake_fd, linux.POLL.IN);
    try testing.expectEqual(@as(i32, 1), io.read(wake_fd, &byte, 0, 8));
    // Not re-armed: more events do not wake JS again.
    try fixture.send('y');
    var quiet = [_]linux.pollfd{.{ .fd = wake_fd, .events = linux.POLL.IN, .revents = 0 }};
    try testing.expectEqual(@as(usize, 0), errno.retry(linux.poll, .{ &quiet, 1, 50 }));
    // Armed with the event still pending (never harvested): reported at once.
    try testing.expectEqual(@as(i32, 0), arm(handle));
    try sockets.waitReady(wake_fd, linux.POLL.IN);
    try testing.expectEqual(@as(i32, 1), io.read(wake_fd, &byte, 0, 8));
    try testing.expectEqual(@as(i32, 1), wait(handle, 0));
}

test "poller: destroy interrupts and waits for a wait blocked on another thread" {
    const handle = create(4);
    try testing.expect(handle >= 0);
    const Blocked = struct {
        fn run(h: i32, result: *i32) void {
            result.* = wait(h, -1);
        }
    };
    var result: i32 = 1;
    const thread = try std.Thread.spawn(.{}, Blocked.run, .{ handle, &result });
    // Wait (bounded) until the other thread is inside epoll_wait's bookkeeping.
    const poller = table.get(handle).?;
    var spins: u32 = 0;
    while (poller.waiters.load(.acquire) == 0 and spins < 1_000_000) : (spins += 1) std.atomic.spinLoopHint();
    try testing.expectEqual(@as(i32, 0), destroy(handle));
    thread.join();
    try testing.expect(result == 0 or result == errno.negative(.BADF));
}
