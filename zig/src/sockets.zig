//! Sockets: socket, socket options, bind, listen, connect, accept4, names, close, shutdown.
//! Every fd made here is SOCK_NONBLOCK | SOCK_CLOEXEC; results are `>= 0 or -errno`.

const std = @import("std");
const linux = std.os.linux;
const errno = @import("errno.zig");

/// Size of the caller's sockaddr buffer (struct sockaddr_storage), shared with symbols.ts.
pub const sockaddr_storage_bytes = 128;

/// Passed explicitly on every socket and accept: JS polls, and children must not inherit fds.
const socket_flags = linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC;

pub fn open(family: i32, socket_type: i32) i32 {
    const type_flags = @as(u32, @bitCast(socket_type)) | socket_flags;
    return errno.result(linux.socket(@bitCast(family), type_flags, 0));
}

pub fn setOptionInt(fd: i32, level: i32, name: i32, value: i32) i32 {
    const bytes = std.mem.asBytes(&value);
    return errno.result(linux.setsockopt(fd, level, @bitCast(name), bytes, @sizeOf(i32)));
}

pub fn getOptionInt(fd: i32, level: i32, name: i32, out: ?[*]u8) i32 {
    const out_bytes = out orelse return errno.negative(.FAULT);
    var value: i32 = 0;
    var length: linux.socklen_t = @sizeOf(i32);
    const rc = linux.getsockopt(fd, level, @bitCast(name), std.mem.asBytes(&value), &length);
    if (linux.errno(rc) != .SUCCESS) return errno.result(rc);
    // Options such as SO_REUSEPORT are ints; a shorter answer leaves the rest zero.
    @memcpy(out_bytes[0..4], std.mem.asBytes(&value));
    return 0;
}

pub fn setOptionBytes(fd: i32, level: i32, name: i32, bytes: ?[*]u8, length: u32) i32 {
    const rc = linux.syscall5(
        .setsockopt,
        @as(u32, @bitCast(fd)),
        @as(u32, @bitCast(level)),
        @as(u32, @bitCast(name)),
        errno.address(bytes),
        length,
    );
    return errno.result(rc);
}

pub fn getOptionBytes(fd: i32, level: i32, name: i32, out: ?[*]u8, capacity: u32) i32 {
    var length: linux.socklen_t = capacity;
    const rc = linux.syscall5(
        .getsockopt,
        @as(u32, @bitCast(fd)),
        @as(u32, @bitCast(level)),
        @as(u32, @bitCast(name)),
        errno.address(out),
        @intFromPtr(&length),
    );
    if (linux.errno(rc) != .SUCCESS) return errno.result(rc);
    return @intCast(length);
}

pub fn bind(fd: i32, address: ?[*]u8, length: u32) i32 {
    const rc = linux.syscall3(.bind, @as(u32, @bitCast(fd)), errno.address(address), length);
    return errno.result(rc);
}

pub fn listen(fd: i32, backlog: i32) i32 {
    if (backlog < 0) return errno.negative(.INVAL); // A negative backlog is a caller bug, not "max".
    return errno.result(linux.listen(fd, @intCast(backlog)));
}

pub fn connect(fd: i32, address: ?[*]u8, length: u32) i32 {
    const rc = linux.syscall3(.connect, @as(u32, @bitCast(fd)), errno.address(address), length);
    // EINTR: POSIX says the connection then completes asynchronously, exactly like EINPROGRESS;
    // calling connect again would answer EALREADY instead.
    if (linux.errno(rc) == .INTR) return errno.negative(.INPROGRESS);
    return errno.result(rc);
}

/// getsockname or getpeername into a 128-byte buffer; returns the address length.
pub fn socketAddress(fd: i32, out: ?[*]u8, comptime syscall: linux.SYS) i32 {
    const out_bytes = out orelse return errno.negative(.FAULT);
    var length: linux.socklen_t = sockaddr_storage_bytes;
    const rc = linux.syscall3(syscall, @as(u32, @bitCast(fd)), @intFromPtr(out_bytes), @intFromPtr(&length));
    if (linux.errno(rc) != .SUCCESS) return errno.result(rc);
    return @intCast(length);
}

pub fn accept(fd: i32, out: ?[*]u8) i32 {
    var length: linux.socklen_t = sockaddr_storage_bytes;
    const length_address: usize = if (out == null) 0 else @intFromPtr(&length);
    const rc = errno.retry(linux.syscall4, .{
        .accept4,
        @as(usize, @as(u32, @bitCast(fd))),
        errno.address(out),
        length_address,
        @as(usize, socket_flags),
    });
    return errno.result(rc);
}

pub fn close(fd: i32) i32 {
    const rc = linux.close(fd);
    // EINTR: Linux has already released the fd; retrying could close a reused number.
    if (linux.errno(rc) == .INTR) return 0;
    return errno.result(rc);
}

pub fn shutdown(fd: i32, how: i32) i32 {
    return errno.result(linux.shutdown(fd, how));
}

// Tests bind 127.0.0.1 on port 0 and wait for readiness with a bounded poll, never a sleep.

const testing = std.testing;

pub const test_timeout_ms = 5000;

/// A sockaddr_in for 127.0.0.1 with `port` (host order), as the 128-byte storage JS passes.
pub fn loopbackAddress(port: u16) [sockaddr_storage_bytes]u8 {
    var storage: [sockaddr_storage_bytes]u8 = @splat(0);
    const address: linux.sockaddr.in = .{
        .port = std.mem.nativeToBig(u16, port),
        .addr = std.mem.nativeToBig(u32, 0x7f00_0001),
    };
    @memcpy(storage[0..@sizeOf(linux.sockaddr.in)], std.mem.asBytes(&address));
    return storage;
}

/// The port (host order) of a sockaddr_in held in storage.
pub fn portOf(storage: *const [sockaddr_storage_bytes]u8) u16 {
    return std.mem.readInt(u16, storage[2..4], .big);
}

/// Waits until `fd` reports one of `events`; fails the test after test_timeout_ms.
pub fn waitReady(fd: i32, events: i16) !void {
    var fds = [_]linux.pollfd{.{ .fd = fd, .events = events, .revents = 0 }};
    const rc = errno.retry(linux.poll, .{ &fds, 1, test_timeout_ms });
    try testing.expectEqual(@as(usize, 1), rc);
}

pub fn expectCloexecNonblock(fd: i32) !void {
    const status_flags = linux.fcntl(fd, linux.F.GETFL, 0);
    const fd_flags = linux.fcntl(fd, linux.F.GETFD, 0);
    try testing.expect(status_flags & @as(u32, @bitCast(linux.O{ .NONBLOCK = true })) != 0);
    try testing.expect(fd_flags & linux.FD_CLOEXEC != 0);
}

test "sockets: loopback TCP accept on port 0" {
    const listen_fd = open(linux.AF.INET, linux.SOCK.STREAM);
    try testing.expect(listen_fd >= 0);
    defer _ = close(listen_fd);
    try expectCloexecNonblock(listen_fd);
    try testing.expectEqual(@as(i32, 0), setOptionInt(listen_fd, linux.SOL.SOCKET, linux.SO.REUSEADDR, 1));
    var address = loopbackAddress(0);
    try testing.expectEqual(@as(i32, 0), bind(listen_fd, &address, @sizeOf(linux.sockaddr.in)));
    try testing.expectEqual(@as(i32, 0), listen(listen_fd, 16));
    try testing.expectEqual(@as(i32, 16), socketAddress(listen_fd, &address, .getsockname));
    try testing.expect(portOf(&address) != 0);

    const client_fd = open(linux.AF.INET, linux.SOCK.STREAM);
    try testing.expect(client_fd >= 0);
    defer _ = close(client_fd);
    const connected = connect(client_fd, &address, @sizeOf(linux.sockaddr.in));
    try testing.expect(connected == 0 or connected == errno.negative(.INPROGRESS));

    try waitReady(listen_fd, linux.POLL.IN);
    var peer: [sockaddr_storage_bytes]u8 = @splat(0);
    const accepted_fd = accept(listen_fd, &peer);
    try testing.expect(accepted_fd >= 0);
    defer _ = close(accepted_fd);
    try expectCloexecNonblock(accepted_fd);
    var client_name: [sockaddr_storage_bytes]u8 = @splat(0);
    try testing.expectEqual(@as(i32, 16), socketAddress(client_fd, &client_name, .getsockname));
    try testing.expectEqual(portOf(&client_name), portOf(&peer));
    try testing.expectEqual(errno.negative(.AGAIN), accept(listen_fd, null));

    var reuse: [4]u8 = undefined;
    try testing.expectEqual(@as(i32, 0), getOptionInt(listen_fd, linux.SOL.SOCKET, linux.SO.REUSEADDR, &reuse));
    try testing.expect(std.mem.readInt(i32, &reuse, .little) != 0);
    try testing.expectEqual(@as(i32, 4), getOptionBytes(listen_fd, linux.SOL.SOCKET, linux.SO.REUSEADDR, &reuse, 4));
    try testing.expectEqual(@as(i32, 0), shutdown(accepted_fd, linux.SHUT.WR));
}
