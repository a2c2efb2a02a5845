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

test "io: eventfd is cloexec and counts" {
    const fd = eventfd(3, @intCast(linux.EFD.NONBLOCK));
    try testing.expect(fd >= 0);
    defer _ = sockets.close(fd);
    try sockets.expectCloexecNonblock(fd);
    var counter: u64 = 0;
    try testing.expectEqual(@as(i32, 8), read(fd, std.mem.asBytes(&counter), 0, 8));
    try testing.expectEqual(@as(u64, 3), counter);
}
