//! The io_uring read path: one ring per event loop, multishot recv into a ring of provided
//! buffers, and a multishot poll that reports the loop's epoll fd (accepts, EPOLLOUT). A reap
//! hands JS compact completions and the buffers stay JS's until the next reap, which gives them
//! back to the kernel. Sends stay plain send() calls (measured cheaper, docs/event-loop.md).
//!
//! The ring is SINGLE_ISSUER + COOP_TASKRUN + TASKRUN_FLAG. Arriving data queues task work for the
//! owner thread (the JS thread that created it) without an interrupt: the work runs when that thread
//! next leaves a syscall, or at once when it sleeps (the runtime's epoll_wait then returns EINTR, which
//! both runtimes retry). The completions it posts signal a registered eventfd, from the owner thread
//! itself (Bun's loop reads it, Deno polls a copy on its blocking pool): epoll does not report an
//! io_uring fd's pending work. TASKRUN_FLAG tells a reap whether there is work to run.
//! Not DEFER_TASKRUN, which would run the work only inside io_uring_enter: its eventfd signal for work
//! that arrives while JS is away comes from an RCU callback, a grace period later (several scheduler
//! ticks on Linux 6.18), and every request to an idle loop waited that long.
//! While traffic is dense, JS sleeps in the ring instead (wait), for at most one tick.

const std = @import("std");
const linux = std.os.linux;
const IoUring = linux.IoUring;
const errno = @import("errno.zig");
const handles = @import("handles.zig");
const tokens = @import("tokens.zig");

pub const rings_max = 4096;
/// One CQE as JS reads it: user_data split in two, the result, and the CQE flags.
pub const Completion = extern struct {
    token: u32,
    generation: u32,
    result: i32,
    flags: u32,
};
/// user_data of the cancels we queue (generation 0); never reported to JS.
const cancel_user_data: u64 = tokens.cancel_token;
const buffer_group: u16 = 0;
const buffers_max = 1 << 15;

comptime {
    // JS reads completion i as u32s 4i .. 4i+3 in this order (src/net/ring-driver.ts, the engine).
    std.debug.assert(@sizeOf(Completion) == 16);
    std.debug.assert(@offsetOf(Completion, "generation") == 4);
    std.debug.assert(@offsetOf(Completion, "result") == 8);
    std.debug.assert(@offsetOf(Completion, "flags") == 12);
}

const Ring = struct {
    uring: IoUring,
    buffer_ring: *align(std.heap.page_size_min) linux.io_uring_buf_ring,
    buffers: []align(std.heap.page_size_min) u8,
    buffer_bytes: u32,
    buffer_count: u16,
    completions: []Completion,
    /// Buffer ids handed to JS by the last reap; the next reap returns them to the kernel.
    handed: []u16,
    handed_count: u32 = 0,
    /// Registered with the ring: the kernel signals it when it posts completions (unless a reap turned that off).
    event_fd: i32,
    /// The CQ ring's flags word (IORING_CQ_EVENTFD_DISABLED).
    cq_flags: *u32,
    /// The period of the tick (see tick()); the kernel reads it when the timeout is submitted.
    tick_period: linux.kernel_timespec = .{ .sec = 0, .nsec = 0 },
};

var table: handles.Table(Ring, rings_max) = .{};
const allocator = std.heap.page_allocator;

pub fn create(entries: u32, buffer_count: u32, buffer_bytes: u32, completions_max: u32) i32 {
    const ring = open(entries, buffer_count, buffer_bytes, completions_max) catch |err| return errno.setupErrno(err);
    const handle = table.insert(ring);
    if (handle < 0) release(ring);
    return handle;
}

/// A ring with its eventfd, provided buffers and completion slots; each step is undone if a later one fails.
fn open(entries: u32, buffer_count: u32, buffer_bytes: u32, completions_max: u32) errno.SetupError!*Ring {
    if (entries == 0 or entries > 4096 or !std.math.isPowerOfTwo(entries)) return error.ArgumentsInvalid;
    if (buffer_count == 0 or buffer_count > buffers_max or !std.math.isPowerOfTwo(buffer_count)) return error.ArgumentsInvalid;
    if (buffer_bytes == 0 or buffer_bytes > 1 << 20 or completions_max == 0 or completions_max > 65536) return error.ArgumentsInvalid;
    const ring = try allocator.create(Ring);
    errdefer allocator.destroy(ring);
    var params = std.mem.zeroInit(linux.io_uring_params, .{
        .flags = linux.IORING_SETUP_SINGLE_ISSUER | linux.IORING_SETUP_COOP_TASKRUN | linux.IORING_SETUP_TASKRUN_FLAG,
    });
    var uring = IoUring.init_params(@intCast(entries), &params) catch |err| return switch (err) {
        error.PermissionDenied => error.PermissionDenied,
        error.SystemOutdated => error.SystemOutdated,
        error.ArgumentsInvalid => error.ArgumentsInvalid, // a kernel before 6.0 (SINGLE_ISSUER)
        error.ProcessFdQuotaExceeded => error.ProcessFdQuotaExceeded,
        error.SystemFdQuotaExceeded => error.SystemFdQuotaExceeded,
        else => error.OutOfMemory, // SystemResources and the mmap of the rings
    };
    errdefer uring.deinit();
    const event_fd = try errno.setupResult(linux.eventfd(0, linux.EFD.CLOEXEC | linux.EFD.NONBLOCK));
    errdefer _ = linux.close(event_fd);
    uring.register_eventfd(event_fd) catch return error.SystemOutdated;
    const buffer_ring = IoUring.setup_buf_ring(uring.fd, @intCast(buffer_count), buffer_group, .{ .inc = false }) catch
        return error.SystemOutdated; // provided buffer rings: 5.19
    errdefer IoUring.free_buf_ring(uring.fd, buffer_ring, buffer_count, buffer_group);
    const memory = try allocator.alignedAlloc(u8, .fromByteUnits(std.heap.page_size_min), @as(usize, buffer_count) * buffer_bytes);
    errdefer allocator.free(memory);
    const slots = try allocator.alloc(Completion, completions_max);
    errdefer allocator.free(slots);
    const handed = try allocator.alloc(u16, completions_max);
    ring.* = .{
        .uring = uring,
        .buffer_ring = buffer_ring,
        .buffers = memory,
        .buffer_bytes = buffer_bytes,
        .buffer_count = @intCast(buffer_count),
        .completions = slots,
        .handed = handed,
        .event_fd = event_fd,
        .cq_flags = @ptrCast(@alignCast(&uring.sq.mmap[params.cq_off.flags])),
    };
    provideBuffers(ring);
    return ring;
}

/// Hands every buffer to the kernel, in id order.
fn provideBuffers(ring: *Ring) void {
    IoUring.buf_ring_init(ring.buffer_ring);
    const mask = IoUring.buf_ring_mask(ring.buffer_count);
    for (0..ring.buffer_count) |i| {
        const id: u16 = @intCast(i);
        IoUring.buf_ring_add(ring.buffer_ring, bufferSlice(ring, id), id, mask, id);
    }
    IoUring.buf_ring_advance(ring.buffer_ring, ring.buffer_count);
}

fn bufferSlice(ring: *Ring, id: u16) []u8 {
    const start = @as(usize, id) * ring.buffer_bytes;
    return ring.buffers[start..][0..ring.buffer_bytes];
}

/// The eventfd to watch for work (see Ring.event_fd).
pub fn fd(handle: i32) i32 {
    const ring = table.get(handle) orelse return errno.negative(.BADF);
    return ring.event_fd;
}

/// Before JS goes idle: empties the eventfd, turns its signalling back on, and says whether work came
/// meanwhile (1: reap again instead of sleeping). Work that comes after this signals the eventfd.
pub fn idle(handle: i32) i32 {
    const ring = table.get(handle) orelse return errno.negative(.BADF);
    var counter: u64 = 0;
    _ = linux.read(ring.event_fd, std.mem.asBytes(&counter), @sizeOf(u64)); // EAGAIN: already empty
    _ = @atomicRmw(u32, ring.cq_flags, .And, ~@as(u32, linux.IORING_CQ_EVENTFD_DISABLED), .seq_cst);
    const uring = &ring.uring;
    const sq_flags = @atomicLoad(u32, uring.sq.flags, .seq_cst);
    const pending = sq_flags & (linux.IORING_SQ_TASKRUN | linux.IORING_SQ_CQ_OVERFLOW) != 0 or
        uring.cq_ready() > 0 or uring.sq.sqe_tail != uring.sq.sqe_head;
    return @intFromBool(pending);
}

pub fn buffers(handle: i32) ?*anyopaque {
    const ring = table.get(handle) orelse return null;
    return ring.buffers.ptr;
}

pub fn completions(handle: i32) ?*anyopaque {
    const ring = table.get(handle) orelse return null;
    return ring.completions.ptr;
}

/// A free SQE; a full queue is submitted first (the owner thread is the only caller).
fn nextSqe(ring: *Ring) ?*linux.io_uring_sqe {
    return ring.uring.get_sqe() catch {
        _ = ring.uring.submit() catch return null;
        return ring.uring.get_sqe() catch null;
    };
}

fn userData(token: u32, generation: u32) u64 {
    return (@as(u64, generation) << 32) | token;
}

/// Queues a multishot recv of `socket` into the provided buffers (submitted by the next reap).
pub fn recv(handle: i32, socket: i32, token: u32, generation: u32) i32 {
    const ring = table.get(handle) orelse return errno.negative(.BADF);
    const sqe = nextSqe(ring) orelse return errno.negative(.BUSY);
    sqe.prep_rw(.RECV, socket, 0, 0, 0);
    sqe.flags |= linux.IOSQE_BUFFER_SELECT;
    sqe.buf_index = buffer_group;
    sqe.ioprio |= linux.IORING_RECV_MULTISHOT;
    sqe.user_data = userData(token, generation);
    return 0;
}

/// Arms a multishot poll for readability of `target` (the loop's epoll fd), submitted at once:
/// the wake thread learns of epoll events only through it.
pub fn poll(handle: i32, target: i32, token: u32) i32 {
    const ring = table.get(handle) orelse return errno.negative(.BADF);
    const sqe = nextSqe(ring) orelse return errno.negative(.BUSY);
    sqe.prep_poll_add(target, linux.POLL.IN);
    sqe.len = linux.IORING_POLL_ADD_MULTI;
    sqe.user_data = userData(token, 0);
    return submitNow(ring);
}

fn submitNow(ring: *Ring) i32 {
    _ = ring.uring.submit() catch |err| return switch (err) {
        error.SignalInterrupt => 0, // submitted anyway; the next reap goes on
        else => errno.negative(.BUSY),
    };
    return 0;
}

/// Cancels every request on `socket`. `now` submits at once: a socket about to be closed must
/// lose its requests while its number still names it (the ring holds the file open otherwise).
pub fn cancel(handle: i32, socket: i32, now: u32) i32 {
    const ring = table.get(handle) orelse return errno.negative(.BADF);
    const sqe = nextSqe(ring) orelse return errno.negative(.BUSY);
    sqe.prep_cancel_fd(socket, linux.IORING_ASYNC_CANCEL_ALL);
    sqe.flags |= linux.IOSQE_CQE_SKIP_SUCCESS;
    sqe.user_data = cancel_user_data;
    return if (now == 0) 0 else submitNow(ring);
}

/// Gives the last reap's buffers back, submits what is queued, runs pending task work (only when
/// the kernel flagged some: an idle reap makes no syscall) and copies out up to completions_max
/// completions. Returns their count.
pub fn reap(handle: i32) i32 {
    const ring = table.get(handle) orelse return errno.negative(.BADF);
    // JS is draining: no eventfd signal per arriving completion until idle() turns it back on.
    _ = @atomicRmw(u32, ring.cq_flags, .Or, linux.IORING_CQ_EVENTFD_DISABLED, .monotonic);
    recycle(ring);
    const uring = &ring.uring;
    const to_submit = uring.flush_sq();
    const sq_flags = @atomicLoad(u32, uring.sq.flags, .acquire);
    const pending_work = sq_flags & (linux.IORING_SQ_TASKRUN | linux.IORING_SQ_CQ_OVERFLOW) != 0;
    if (to_submit > 0 or pending_work) {
        _ = uring.enter(to_submit, 0, linux.IORING_ENTER_GETEVENTS) catch |err| switch (err) {
            // Retried by the next reap: the queue and the pending task work stay where they are.
            error.SignalInterrupt, error.SystemResources, error.CompletionQueueOvercommitted => {},
            error.InvalidThread => return errno.negative(.EXIST), // not the creating thread
            else => return errno.negative(.IO),
        };
    }
    var count: u32 = 0;
    const cq = &uring.cq;
    while (count < ring.completions.len) {
        const ready = uring.cq_ready();
        if (ready == 0) break;
        const cqe = cq.cqes[cq.head.* & cq.mask];
        uring.cq_advance(1);
        if (cqe.user_data == cancel_user_data) continue;
        if (cqe.flags & linux.IORING_CQE_F_BUFFER != 0) {
            ring.handed[ring.handed_count] = @intCast(cqe.flags >> linux.IORING_CQE_BUFFER_SHIFT);
            ring.handed_count += 1;
        }
        ring.completions[count] = .{
            .token = @truncate(cqe.user_data),
            .generation = @truncate(cqe.user_data >> 32),
            .result = cqe.res,
            .flags = cqe.flags,
        };
        count += 1;
    }
    return @intCast(count);
}

/// Queues a one-shot timeout of `period_us` that completes with `token` (result -ETIME). While one is
/// armed, wait() may sleep: the tick bounds the sleep, so the runtime's timers and I/O wait at most that long.
pub fn tick(handle: i32, token: u32, period_us: u32) i32 {
    const ring = table.get(handle) orelse return errno.negative(.BADF);
    if (period_us == 0) return errno.negative(.INVAL);
    ring.tick_period = .{ .sec = @intCast(period_us / 1_000_000), .nsec = @intCast((period_us % 1_000_000) * 1000) };
    const sqe = nextSqe(ring) orelse return errno.negative(.BUSY);
    sqe.prep_timeout(&ring.tick_period, 0, 0);
    sqe.user_data = userData(token, 0);
    return 0;
}

/// Submits what is queued and sleeps in the kernel until a completion is ready (a recv, the epoll poll, or
/// the tick). No timeout of its own: arming a timer per sleep costs more than the sleep saves (on a VM,
/// every hrtimer start and cancel is a trap), so only call it while a tick is armed. Returns 1 when a reap
/// has work, 0 when it came back early (a signal, or the kernel asking for a reap first).
pub fn wait(handle: i32) i32 {
    const ring = table.get(handle) orelse return errno.negative(.BADF);
    const uring = &ring.uring;
    if (uring.cq_ready() > 0) return 1;
    const to_submit = uring.flush_sq();
    _ = uring.enter(to_submit, 1, linux.IORING_ENTER_GETEVENTS) catch |err| switch (err) {
        error.SignalInterrupt, error.SystemResources, error.CompletionQueueOvercommitted => return 0,
        error.InvalidThread => return errno.negative(.EXIST), // not the creating thread
        else => return errno.negative(.IO),
    };
    return @intFromBool(uring.cq_ready() > 0);
}

fn recycle(ring: *Ring) void {
    if (ring.handed_count == 0) return;
    const mask = IoUring.buf_ring_mask(ring.buffer_count);
    for (ring.handed[0..ring.handed_count], 0..) |id, offset| {
        IoUring.buf_ring_add(ring.buffer_ring, bufferSlice(ring, id), id, mask, @intCast(offset));
    }
    IoUring.buf_ring_advance(ring.buffer_ring, @intCast(ring.handed_count));
    ring.handed_count = 0;
}

/// Closes the ring (the kernel cancels what is still armed) and frees its memory.
pub fn destroy(handle: i32) i32 {
    const ring = table.remove(handle) orelse return errno.negative(.BADF);
    release(ring);
    return 0;
}

fn release(ring: *Ring) void {
    IoUring.free_buf_ring(ring.uring.fd, ring.buffer_ring, ring.buffer_count, buffer_group);
    ring.uring.deinit();
    // A waiter on a copy of the eventfd (Deno's, on its blocking pool) would not see this close: wake it.
    var one: u64 = 1;
    _ = linux.write(ring.event_fd, std.mem.asBytes(&one), @sizeOf(u64));
    _ = linux.close(ring.event_fd);
    allocator.free(ring.handed);
    allocator.free(ring.completions);
    allocator.free(ring.buffers);
    allocator.destroy(ring);
}

const testing = std.testing;

/// A ring and a connected socket pair for a test; SkipZigTest where this kernel or policy gives no ring.
const TestRing = struct {
    handle: i32,
    pair: [2]i32,
    list: [*]Completion,

    fn open() !TestRing {
        const handle = create(64, 8, 64, 32);
        if (handle == errno.negative(.PERM) or handle == errno.negative(.NOSYS) or handle == errno.negative(.INVAL)) return error.SkipZigTest;
        try testing.expect(handle >= 0);
        errdefer _ = destroy(handle);
        var pair: [2]i32 = undefined;
        try testing.expectEqual(@as(usize, 0), linux.socketpair(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0, &pair));
        return .{ .handle = handle, .pair = pair, .list = @ptrCast(@alignCast(completions(handle).?)) };
    }

    fn close(ring: TestRing) void {
        _ = linux.close(ring.pair[0]);
        _ = linux.close(ring.pair[1]);
        _ = destroy(ring.handle);
    }
};

test "ring: multishot recv reports data per buffer, EOF, and a cancel ends it" {
    const handle = create(64, 8, 64, 32);
    if (handle == errno.negative(.PERM) or handle == errno.negative(.NOSYS) or handle == errno.negative(.INVAL)) return error.SkipZigTest;
    try testing.expect(handle >= 0);
    defer _ = destroy(handle);
    var pair: [2]i32 = undefined;
    try testing.expectEqual(@as(usize, 0), linux.socketpair(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0, &pair));
    try testing.expectEqual(@as(i32, 0), recv(handle, pair[0], 5, 9));
    try testing.expectEqual(@as(i32, 0), reap(handle)); // submitted; nothing yet
    try testing.expectEqual(@as(usize, 5), linux.write(pair[1], "hello", 5));
    const list: [*]Completion = @ptrCast(@alignCast(completions(handle).?));
    const base: [*]u8 = @ptrCast(buffers(handle).?);
    var got: i32 = 0;
    for (0..1000) |_| { // bounded: the data is in the socket already
        got = reap(handle);
        if (got != 0) break;
    }
    try testing.expectEqual(@as(i32, 1), got);
    try testing.expectEqual(@as(u32, 5), list[0].token);
    try testing.expectEqual(@as(u32, 9), list[0].generation);
    try testing.expectEqual(@as(i32, 5), list[0].result);
    try testing.expect(list[0].flags & linux.IORING_CQE_F_MORE != 0);
    const id = list[0].flags >> linux.IORING_CQE_BUFFER_SHIFT;
    try testing.expectEqualStrings("hello", base[id * 64 ..][0..5]);
    // A cancel ends the multishot recv with ECANCELED and no F_MORE.
    try testing.expectEqual(@as(i32, 0), cancel(handle, pair[0], 1));
    got = reap(handle);
    try testing.expectEqual(@as(i32, 1), got);
    try testing.expectEqual(-@as(i32, @intFromEnum(linux.E.CANCELED)), list[0].result);
    try testing.expect(list[0].flags & linux.IORING_CQE_F_MORE == 0);
    // Re-armed, the peer's close is a 0-byte completion without F_MORE.
    try testing.expectEqual(@as(i32, 0), recv(handle, pair[0], 5, 10));
    _ = linux.close(pair[1]);
    for (0..1000) |_| {
        got = reap(handle);
        if (got != 0) break;
    }
    _ = linux.close(pair[0]);
    try testing.expectEqual(@as(i32, 1), got);
    try testing.expectEqual(@as(u32, 10), list[0].generation);
    try testing.expectEqual(@as(i32, 0), list[0].result);
    try testing.expect(list[0].flags & linux.IORING_CQE_F_MORE == 0);
    try testing.expectEqual(errno.negative(.BADF), reap(handle + 1));
}

test "ring: wait sleeps until data or the tick" {
    const ring = try TestRing.open();
    defer ring.close();
    const handle = ring.handle;
    const list = ring.list;
    const pair = ring.pair;
    try testing.expectEqual(@as(i32, 0), recv(handle, pair[0], 5, 9));
    try testing.expectEqual(@as(i32, 0), tick(handle, 77, 2000));
    try testing.expectEqual(@as(i32, 0), reap(handle)); // both submitted; nothing yet
    // Nothing to read: the tick ends the sleep.
    try testing.expectEqual(@as(i32, 1), wait(handle));
    try testing.expectEqual(@as(i32, 1), reap(handle));
    try testing.expectEqual(@as(u32, 77), list[0].token);
    try testing.expectEqual(-@as(i32, @intFromEnum(linux.E.TIME)), list[0].result);
    // Data ends it before a (long) tick does.
    try testing.expectEqual(@as(i32, 0), tick(handle, 77, 10_000_000));
    try testing.expectEqual(@as(usize, 2), linux.write(pair[1], "hi", 2));
    try testing.expectEqual(@as(i32, 1), wait(handle));
    try testing.expectEqual(@as(i32, 1), reap(handle));
    try testing.expectEqual(@as(u32, 5), list[0].token);
    try testing.expectEqual(@as(i32, 2), list[0].result);
    try testing.expectEqual(errno.negative(.INVAL), tick(handle, 77, 0));
    try testing.expectEqual(errno.negative(.BADF), wait(handle + 1));
}

test "ring: data that arrives while idle has signalled the eventfd by the time the owner's next syscall returns" {
    // The owner thread sends the data itself here: its task work runs as that send returns, and the eventfd is
    // readable at once, with no wait on a clock (a deferred signal, as DEFER_TASKRUN gives, would not be yet).
    const ring = try TestRing.open();
    defer ring.close();
    const handle = ring.handle;
    const list = ring.list;
    const pair = ring.pair;
    try testing.expectEqual(@as(i32, 0), recv(handle, pair[0], 5, 9));
    try testing.expectEqual(@as(i32, 0), reap(handle)); // submitted; nothing yet, and signalling is off
    try testing.expectEqual(@as(i32, 0), idle(handle)); // signalling on again, nothing pending
    try testing.expectEqual(@as(usize, 2), linux.write(pair[1], "hi", 2));
    var watched = [_]linux.pollfd{.{ .fd = fd(handle), .events = linux.POLL.IN, .revents = 0 }};
    try testing.expectEqual(@as(usize, 1), linux.poll(&watched, 1, 0));
    try testing.expectEqual(@as(i32, 1), reap(handle));
    try testing.expectEqual(@as(u32, 5), list[0].token);
    try testing.expectEqual(@as(i32, 2), list[0].result);
}
