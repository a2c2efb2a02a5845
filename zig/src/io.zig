//! Plain I/O on fds: read, write, readv/writev, pipes and eventfds.
//! EINTR is retried here; EAGAIN comes back as -11 for the poll loop.

const std = @import("std");
const linux = std.os.linux;
const errno = @import("errno.zig");

/// The kernel's UIO_MAXIOV: writev rejects longer arrays anyway; we say so before the syscall.
pub const iovec_count_max = 1024;

/// struct iovec as JS lays it out: {u64 base, u64 len}. That is the kernel's layout only
/// on 64-bit targets, which are the only ones we build (see SUPPORTED_TARGETS in build.zig).
pub const Iovec = extern struct {
    base: usize,
    length: usize,
};

comptime {
    std.debug.assert(@sizeOf(usize) == 8);
    std.debug.assert(@sizeOf(Iovec) == 16);
}

pub fn read(fd: i32, buffer: ?[*]u8, offset: u32, length: u32) i32 {
    const bytes = buffer orelse return errno.negative(.FAULT);
    return errno.result(errno.retry(linux.read, .{ fd, bytes + offset, length }));
}

pub fn write(fd: i32, buffer: ?[*]u8, offset: u32, length: u32) i32 {
    const bytes = buffer orelse return errno.negative(.FAULT);
    return errno.result(errno.retry(linux.write, .{ fd, bytes + offset, length }));
}

/// recv() on a socket: the same bytes as read(), without the file-position lock and VFS layers a
/// read() goes through (measurable per request on a keep-alive HTTP connection).
pub fn recv(fd: i32, buffer: ?[*]u8, offset: u32, length: u32) i32 {
    const bytes = buffer orelse return errno.negative(.FAULT);
    return errno.result(errno.retry(linux.recvfrom, .{ fd, bytes + offset, length, 0, null, null }));
}

/// send() on a socket with MSG_NOSIGNAL: a peer that left gives EPIPE, never SIGPIPE.
pub fn send(fd: i32, buffer: ?[*]u8, offset: u32, length: u32) i32 {
    const bytes = buffer orelse return errno.negative(.FAULT);
    return errno.result(errno.retry(linux.sendto, .{ fd, bytes + offset, length, linux.MSG.NOSIGNAL, null, 0 }));
}

/// One entry of a send batch, as JS lays it out in an Int32Array: the socket, where its bytes start in
/// the batch buffer and how many; `result` is written back (bytes sent, or -errno).
pub const SendEntry = extern struct {
    fd: i32,
    offset: i32,
    length: i32,
    result: i32,
};

comptime {
    // JS writes entry i as i32s 4i .. 4i+3 in this order and reads the result back.
    std.debug.assert(@sizeOf(SendEntry) == 16);
    std.debug.assert(@offsetOf(SendEntry, "offset") == 4);
    std.debug.assert(@offsetOf(SendEntry, "length") == 8);
    std.debug.assert(@offsetOf(SendEntry, "result") == 12);
}

/// send() for each of `count` entries over one buffer: the responses of a whole poll round leave in one
/// FFI call, back to back (a client woken by the first is still awake for the rest). Each entry gets
/// its own result; returns count, or -EINVAL/-EFAULT before any send.
pub fn sendBatch(buffer: ?[*]u8, entries: ?[*]u8, count: u32) i32 {
    const bytes = buffer orelse return errno.negative(.FAULT);
    const raw = entries orelse return errno.negative(.FAULT);
    if (count > std.math.maxInt(i32)) return errno.negative(.INVAL);
    const list: [*]align(1) SendEntry = @ptrCast(raw);
    for (list[0..count]) |*entry| {
        if (entry.offset < 0 or entry.length < 0) {
            entry.result = errno.negative(.INVAL);
            continue;
        }
        entry.result = send(entry.fd, bytes, @intCast(entry.offset), @intCast(entry.length));
    }
    return @intCast(count);
}

/// The two-buffer iovec for readv2/writev2; a null or empty second buffer is left out.
fn pair(a: ?[*]u8, a_length: u32, b: ?[*]u8, b_length: u32) struct { iovecs: [2]Iovec, count: usize } {
    const iovecs = [2]Iovec{
        .{ .base = errno.address(a), .length = a_length },
        .{ .base = errno.address(b), .length = b_length },
    };
    const count: usize = if (b == null or b_length == 0) 1 else 2;
    return .{ .iovecs = iovecs, .count = count };
}

pub fn writev2(fd: i32, a: ?[*]u8, a_length: u32, b: ?[*]u8, b_length: u32) i32 {
    const iov = pair(a, a_length, b, b_length);
    return vectored(.writev, fd, @intFromPtr(&iov.iovecs), iov.count);
}

pub fn readv2(fd: i32, a: ?[*]u8, a_capacity: u32, b: ?[*]u8, b_capacity: u32) i32 {
    const iov = pair(a, a_capacity, b, b_capacity);
    return vectored(.readv, fd, @intFromPtr(&iov.iovecs), iov.count);
}

/// Generic writev over `count` iovecs laid out by JS as {u64 base, u64 len}.
pub fn writev(fd: i32, iovecs: ?[*]u8, count: u32) i32 {
    if (count > iovec_count_max) return errno.negative(.INVAL);
    return vectored(.writev, fd, errno.address(iovecs), count);
}

fn vectored(comptime syscall: linux.SYS, fd: i32, iovecs_address: usize, count: usize) i32 {
    const fd_word: usize = @as(u32, @bitCast(fd));
    return errno.result(errno.retry(linux.syscall3, .{ syscall, fd_word, iovecs_address, count }));
}

/// pipe2 with both ends O_NONBLOCK | O_CLOEXEC; writes [read fd, write fd] as two i32.
pub fn pipe(out: ?[*]u8) i32 {
    const out_bytes = out orelse return errno.negative(.FAULT); // Checked first: no fds leak.
    var fds: [2]linux.fd_t = undefined;
    const rc = linux.pipe2(&fds, .{ .CLOEXEC = true, .NONBLOCK = true });
    if (linux.errno(rc) != .SUCCESS) return errno.result(rc);
    @memcpy(out_bytes[0..8], std.mem.asBytes(&fds));
    return 0;
}

/// eventfd2; EFD_CLOEXEC is always added to the caller's flags.
pub fn eventfd(initial_value: u32, flags: i32) i32 {
    const all_flags = @as(u32, @bitCast(flags)) | linux.EFD.CLOEXEC;
    return errno.result(linux.eventfd(initial_value, all_flags));
}

/// A second fd for the same open file, O_CLOEXEC: a waiter that owns its copy never polls a number that
/// was closed and reused under it.
pub fn dup(fd: i32) i32 {
    if (fd < 0) return errno.negative(.BADF);
    return errno.result(linux.fcntl(fd, linux.F.DUPFD_CLOEXEC, 0));
}

/// Sets O_NONBLOCK and FD_CLOEXEC on an fd we did not open (systemd's sockets come blocking and inheritable).
pub fn adopt(fd: i32) i32 {
    if (fd < 0) return errno.negative(.BADF);
    const flags = linux.fcntl(fd, linux.F.GETFL, 0);
    const got = errno.result(flags);
    if (got < 0) return got;
    const nonblocking: u32 = @bitCast(linux.O{ .NONBLOCK = true });
    const set = errno.result(linux.fcntl(fd, linux.F.SETFL, @as(usize, @intCast(got)) | nonblocking));
    if (set < 0) return set;
    return errno.result(linux.fcntl(fd, linux.F.SETFD, linux.FD_CLOEXEC));
}

/// Blocks until fd (nonblocking: a pipe's read end or an eventfd) has input or hangs up, then reads away
/// what is there (the pipe's bytes, the eventfd's count) so that the next wait blocks again. For Deno,
/// which runs it on its blocking pool (a nonblocking FFI call) to wait for a wake without a thread of
/// ours. timeout_ms < 0 waits for ever. Returns poll's revents (> 0), 0 on timeout, or -errno.
pub fn waitInput(fd: i32, timeout_ms: i32) i32 {
    var pollfds = [1]linux.pollfd{.{ .fd = fd, .events = linux.POLL.IN, .revents = 0 }};
    const rc = errno.retry(linux.poll, .{ &pollfds, 1, timeout_ms });
    if (linux.errno(rc) != .SUCCESS) return errno.result(rc);
    if (rc == 0) return 0;
    const revents = pollfds[0].revents;
    if (revents & linux.POLL.NVAL != 0) return errno.negative(.BADF);
    var scratch: [64]u8 = undefined;
    _ = linux.read(fd, &scratch, scratch.len); // EAGAIN or EOF: nothing to take
    return revents;
}

const testing = std.testing;
const sockets = @import("sockets.zig");

test "io: pipe, writev2, readv2, read and write at an offset" {
    var fds: [2]i32 = undefined;
    try testing.expectEqual(@as(i32, 0), pipe(std.mem.asBytes(&fds)));
    defer _ = sockets.close(fds[0]);
    defer _ = sockets.close(fds[1]);
    try sockets.expectCloexecNonblock(fds[0]);
    try sockets.expectCloexecNonblock(fds[1]);
    try testing.expectEqual(errno.negative(.AGAIN), read(fds[0], @constCast("x"), 0, 1));

    var head = "HTTP ".*;
    var body = "ok".*;
    try testing.expectEqual(@as(i32, 7), writev2(fds[1], &head, head.len, &body, body.len));
    var first: [3]u8 = undefined;
    var second: [8]u8 = undefined;
    try testing.expectEqual(@as(i32, 7), readv2(fds[0], &first, first.len, &second, second.len));
    try testing.expectEqualStrings("HTTP ok", &first ++ second[0..4]);

    var buffer = "..abc".*;
    try testing.expectEqual(@as(i32, 3), write(fds[1], &buffer, 2, 3));
    try testing.expectEqual(@as(i32, 3), read(fds[0], &buffer, 0, 3));
    try testing.expectEqualStrings("abcbc", &buffer);

    const iovecs = [_]Iovec{ .{ .base = @intFromPtr(&head), .length = 4 }, .{ .base = @intFromPtr(&body), .length = 2 } };
    try testing.expectEqual(@as(i32, 6), writev(fds[1], @ptrCast(@constCast(&iovecs)), 2));
    try testing.expectEqual(errno.negative(.INVAL), writev(fds[1], null, iovec_count_max + 1));
}

test "io: send and recv on a socket pair; EPIPE, not SIGPIPE, once the peer is gone" {
    var fds: [2]i32 = undefined;
    try testing.expectEqual(@as(usize, 0), linux.socketpair(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.NONBLOCK, 0, &fds));
    defer _ = sockets.close(fds[1]);
    try testing.expectEqual(errno.negative(.AGAIN), recv(fds[1], @constCast("x"), 0, 1));
    var buffer = "..abc".*;
    try testing.expectEqual(@as(i32, 3), send(fds[0], &buffer, 2, 3));
    try testing.expectEqual(@as(i32, 3), recv(fds[1], &buffer, 0, 5));
    try testing.expectEqualStrings("abcbc", &buffer);
    try testing.expectEqual(errno.negative(.FAULT), recv(fds[1], null, 0, 1));
    _ = sockets.close(fds[0]);
    try testing.expectEqual(@as(i32, 0), recv(fds[1], &buffer, 0, 5));
    try testing.expectEqual(errno.negative(.PIPE), send(fds[1], &buffer, 0, 1));
    const not_a_socket = eventfd(0, 0);
    defer _ = sockets.close(not_a_socket);
    try testing.expectEqual(errno.negative(.NOTSOCK), send(not_a_socket, &buffer, 0, 1));
}

test "io: a send batch sends each entry and reports each result" {
    var a: [2]i32 = undefined;
    var b: [2]i32 = undefined;
    try testing.expectEqual(@as(usize, 0), linux.socketpair(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.NONBLOCK, 0, &a));
    try testing.expectEqual(@as(usize, 0), linux.socketpair(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.NONBLOCK, 0, &b));
    defer for ([_]i32{ a[0], a[1], b[1] }) |fd| {
        _ = sockets.close(fd);
    };
    _ = sockets.close(b[0]); // b's peer is gone: EPIPE for its entry, the others still go
    var buffer = "helloworld".*;
    var entries = [_]SendEntry{
        .{ .fd = a[0], .offset = 0, .length = 5, .result = 0 },
        .{ .fd = b[1], .offset = 0, .length = 5, .result = 0 },
        .{ .fd = a[0], .offset = 5, .length = 5, .result = 0 },
        .{ .fd = a[0], .offset = -1, .length = 5, .result = 0 },
    };
    try testing.expectEqual(@as(i32, 4), sendBatch(&buffer, @ptrCast(&entries), entries.len));
    try testing.expectEqual(@as(i32, 5), entries[0].result);
    try testing.expectEqual(errno.negative(.PIPE), entries[1].result);
    try testing.expectEqual(@as(i32, 5), entries[2].result);
    try testing.expectEqual(errno.negative(.INVAL), entries[3].result);
    var received: [16]u8 = undefined;
    try testing.expectEqual(@as(i32, 10), recv(a[1], &received, 0, 16));
    try testing.expectEqualStrings("helloworld", received[0..10]);
    try testing.expectEqual(errno.negative(.FAULT), sendBatch(null, @ptrCast(&entries), 1));
}

test "io: waitInput wakes for an eventfd and a pipe, takes what woke it, and times out when quiet" {
    const event = eventfd(0, @intCast(linux.EFD.NONBLOCK));
    defer _ = sockets.close(event);
    const copy = dup(event);
    try testing.expect(copy > event);
    try testing.expectEqual(@as(i32, 0), waitInput(copy, 0));
    var one: u64 = 1;
    try testing.expectEqual(@as(i32, 8), write(event, std.mem.asBytes(&one), 0, 8));
    try testing.expect(waitInput(copy, 0) & linux.POLL.IN != 0);
    try testing.expectEqual(@as(i32, 0), waitInput(copy, 0)); // the count was read
    _ = sockets.close(copy);
    try testing.expectEqual(errno.negative(.BADF), waitInput(copy, 0));
    try testing.expectEqual(errno.negative(.BADF), dup(-1));

    var fds: [2]i32 = undefined;
    try testing.expectEqual(@as(i32, 0), pipe(std.mem.asBytes(&fds)));
    defer _ = sockets.close(fds[0]);
    try testing.expectEqual(@as(i32, 3), write(fds[1], @constCast("abc"), 0, 3));
    try testing.expect(waitInput(fds[0], -1) & linux.POLL.IN != 0);
    try testing.expectEqual(@as(i32, 0), waitInput(fds[0], 0));
    _ = sockets.close(fds[1]);
    try testing.expect(waitInput(fds[0], -1) & linux.POLL.HUP != 0);
}

test "io: eventfd is cloexec and counts" {
    const fd = eventfd(3, @intCast(linux.EFD.NONBLOCK));
    try testing.expect(fd >= 0);
    defer _ = sockets.close(fd);
    try sockets.expectCloexecNonblock(fd);
    var counter: u64 = 0;
    try testing.expectEqual(@as(i32, 8), read(fd, std.mem.asBytes(&counter), 0, 8));
    try testing.expectEqual(@as(u64, 3), counter);
}
