//! UDP batches: count slots of slot_bytes data plus 48-byte metas, natively allocated once
//! and viewed once from JS, sent and received with sendmmsg/recvmmsg in one syscall.

const std = @import("std");
const linux = std.os.linux;
const errno = @import("errno.zig");
const handles = @import("handles.zig");

pub const batches_max = 4096;
pub const slot_count_max = 1024;
pub const slot_bytes_max = 65536;
/// Room for sockaddr_in6, the largest address a UDP socket reports.
pub const address_bytes_max = 28;

/// Per-slot metadata shared with JS (symbols.ts): 48 bytes.
pub const Meta = extern struct {
    length: u32,
    address_length: u32,
    flags: u32,
    pad: u32,
    address: [address_bytes_max]u8 align(4),
    pad_tail: [4]u8,
};

comptime {
    std.debug.assert(@sizeOf(Meta) == 48);
    std.debug.assert(@offsetOf(Meta, "address") == 16);
    std.debug.assert(@sizeOf(linux.sockaddr.in6) == address_bytes_max);
}

const Iovec = extern struct { base: [*]u8, length: usize };

const Batch = struct {
    slot_count: u32,
    slot_bytes: u32,
    data: []u8,
    metas: []Meta,
    /// Reused across calls: the headers point at the metas' addresses and the data slots.
    headers: []linux.mmsghdr,
    iovecs: []Iovec,
};

var table: handles.Table(Batch, batches_max) = .{};
const allocator = std.heap.page_allocator;

pub fn create(slot_count: u32, slot_bytes: u32) i32 {
    if (slot_count == 0 or slot_count > slot_count_max) return errno.negative(.INVAL);
    if (slot_bytes == 0 or slot_bytes > slot_bytes_max) return errno.negative(.INVAL);
    const batch = allocate(slot_count, slot_bytes) orelse return errno.negative(.NOMEM);
    const handle = table.insert(batch);
    if (handle < 0) free(batch);
    return handle;
}

fn allocate(slot_count: u32, slot_bytes: u32) ?*Batch {
    const batch = allocator.create(Batch) catch return null;
    batch.* = .{ .slot_count = slot_count, .slot_bytes = slot_bytes, .data = &.{}, .metas = &.{}, .headers = &.{}, .iovecs = &.{} };
    const ok = allocateArrays(batch);
    if (!ok) {
        free(batch);
        return null;
    }
    @memset(batch.data, 0);
    @memset(batch.metas, std.mem.zeroes(Meta));
    for (batch.iovecs, 0..) |*iovec, index| {
        iovec.* = .{ .base = batch.data.ptr + index * slot_bytes, .length = slot_bytes };
    }
    return batch;
}

fn allocateArrays(batch: *Batch) bool {
    const count = batch.slot_count;
    batch.data = allocator.alloc(u8, @as(usize, count) * batch.slot_bytes) catch return false;
    batch.metas = allocator.alloc(Meta, count) catch return false;
    batch.headers = allocator.alloc(linux.mmsghdr, count) catch return false;
    batch.iovecs = allocator.alloc(Iovec, count) catch return false;
    return true;
}

fn free(batch: *Batch) void {
    allocator.free(batch.data);
    allocator.free(batch.metas);
    allocator.free(batch.headers);
    allocator.free(batch.iovecs);
    allocator.destroy(batch);
}

pub fn data(handle: i32) ?*anyopaque {
    const batch = table.get(handle) orelse return null;
    return batch.data.ptr;
}

pub fn metas(handle: i32) ?*anyopaque {
    const batch = table.get(handle) orelse return null;
    return batch.metas.ptr;
}

fn header(batch: *Batch, index: usize, address_length: u32) linux.mmsghdr {
    const address: ?*linux.sockaddr = if (address_length == 0) null else @ptrCast(&batch.metas[index].address);
    return .{
        .hdr = .{
            .name = address,
            .namelen = address_length,
            .iov = @ptrCast(&batch.iovecs[index]),
            .iovlen = 1,
            .control = null,
            .controllen = 0,
            .flags = 0,
        },
        .len = 0,
    };
}

/// recvmmsg(MSG_DONTWAIT) into the first `slots` slots; fills each meta's length, address
/// and flags (MSG_TRUNC marks a datagram longer than slot_bytes).
pub fn receive(handle: i32, fd: i32, slots: u32) i32 {
    const batch = table.get(handle) orelse return errno.negative(.BADF);
    if (slots > batch.slot_count) return errno.negative(.INVAL);
    if (slots == 0) return 0;
    for (0..slots) |index| {
        batch.iovecs[index].length = batch.slot_bytes;
        batch.headers[index] = header(batch, index, address_bytes_max);
    }
    const rc = errno.retry(linux.recvmmsg, .{ fd, batch.headers.ptr, slots, linux.MSG.DONTWAIT, null });
    if (linux.errno(rc) != .SUCCESS) return errno.result(rc);
    for (batch.headers[0..rc], batch.metas[0..rc]) |received, *meta| {
        meta.length = received.len;
        meta.address_length = received.hdr.namelen;
        meta.flags = received.hdr.flags;
    }
    return @intCast(rc);
}

/// sendmmsg(MSG_DONTWAIT) of the first `slots` slots: meta length bytes each, to the meta's
/// address (address length 0: a connected socket). Returns how many the kernel took.
pub fn send(handle: i32, fd: i32, slots: u32) i32 {
    const batch = table.get(handle) orelse return errno.negative(.BADF);
    if (slots > batch.slot_count) return errno.negative(.INVAL);
    if (slots == 0) return 0;
    for (batch.metas[0..slots]) |meta| {
        if (meta.length > batch.slot_bytes) return errno.negative(.INVAL);
        if (meta.address_length > address_bytes_max) return errno.negative(.INVAL);
    }
    for (0..slots) |index| {
        batch.iovecs[index].length = batch.metas[index].length;
        batch.headers[index] = header(batch, index, batch.metas[index].address_length);
    }
    const rc = errno.retry(linux.sendmmsg, .{ fd, batch.headers.ptr, slots, linux.MSG.DONTWAIT });
    return errno.result(rc);
}

pub fn destroy(handle: i32) i32 {
    const batch = table.remove(handle) orelse return errno.negative(.BADF);
    free(batch);
    return 0;
}

const testing = std.testing;
const sockets = @import("sockets.zig");

fn boundUdpSocket(address: *[sockets.sockaddr_storage_bytes]u8) !i32 {
    const fd = sockets.open(linux.AF.INET, linux.SOCK.DGRAM);
    try testing.expect(fd >= 0);
    address.* = sockets.loopbackAddress(0);
    try testing.expectEqual(@as(i32, 0), sockets.bind(fd, address, @sizeOf(linux.sockaddr.in)));
    try testing.expectEqual(@as(i32, 16), sockets.socketAddress(fd, address, .getsockname));
    return fd;
}

test "udp_batch: round trip of 64 datagrams" {
    const datagrams = 64;
    var receiver_address: [sockets.sockaddr_storage_bytes]u8 = undefined;
    var sender_address: [sockets.sockaddr_storage_bytes]u8 = undefined;
    const receiver_fd = try boundUdpSocket(&receiver_address);
    defer _ = sockets.close(receiver_fd);
    const sender_fd = try boundUdpSocket(&sender_address);
    defer _ = sockets.close(sender_fd);
    // 64 small datagrams fit the default receive buffer; make sure anyway.
    _ = sockets.setOptionInt(receiver_fd, linux.SOL.SOCKET, linux.SO.RCVBUF, 1 << 20);

    const outgoing = create(datagrams, 512);
    try testing.expect(outgoing >= 0);
    defer _ = destroy(outgoing);
    const incoming = create(datagrams, 512);
    try testing.expect(incoming >= 0);
    defer _ = destroy(incoming);

    const out_data: [*]u8 = @ptrCast(data(outgoing).?);
    const out_metas: [*]Meta = @ptrCast(@alignCast(metas(outgoing).?));
    for (0..datagrams) |index| {
        const text = std.fmt.bufPrint(out_data[index * 512 ..][0..512], "datagram {d}", .{index}) catch unreachable;
        out_metas[index].length = @intCast(text.len);
        out_metas[index].address_length = @sizeOf(linux.sockaddr.in);
        @memcpy(out_metas[index].address[0..16], receiver_address[0..16]);
    }
    try testing.expectEqual(@as(i32, datagrams), send(outgoing, sender_fd, datagrams));

    var received: usize = 0;
    var rounds: usize = 0;
    while (received < datagrams and rounds < datagrams) : (rounds += 1) {
        try sockets.waitReady(receiver_fd, linux.POLL.IN);
        const count = receive(incoming, receiver_fd, datagrams);
        try testing.expect(count > 0);
        try expectReceived(incoming, received, @intCast(count), &sender_address);
        received += @intCast(count);
    }
    try testing.expectEqual(@as(usize, datagrams), received);
    try testing.expectEqual(errno.negative(.AGAIN), receive(incoming, receiver_fd, datagrams));
    try testing.expectEqual(errno.negative(.INVAL), receive(incoming, receiver_fd, datagrams + 1));
}

/// Datagrams come back in order on loopback; each batch starts at slot 0.
fn expectReceived(handle: i32, first: usize, count: usize, sender: *const [sockets.sockaddr_storage_bytes]u8) !void {
    const in_data: [*]u8 = @ptrCast(data(handle).?);
    const in_metas: [*]Meta = @ptrCast(@alignCast(metas(handle).?));
    for (0..count) |slot| {
        var expected: [32]u8 = undefined;
        const text = std.fmt.bufPrint(&expected, "datagram {d}", .{first + slot}) catch unreachable;
        try testing.expectEqualStrings(text, in_data[slot * 512 ..][0..in_metas[slot].length]);
        try testing.expectEqual(@as(u32, 16), in_metas[slot].address_length);
        try testing.expectEqualSlices(u8, sender[0..8], in_metas[slot].address[0..8]);
    }
}

test "udp_batch: limits and bad handles" {
    try testing.expectEqual(errno.negative(.INVAL), create(slot_count_max + 1, 16));
    try testing.expectEqual(errno.negative(.INVAL), create(1, slot_bytes_max + 1));
    try testing.expectEqual(errno.negative(.BADF), destroy(batches_max));
    try testing.expect(data(-1) == null);
    const handle = create(2, 8);
    try testing.expect(handle >= 0);
    const handle_metas: [*]Meta = @ptrCast(@alignCast(metas(handle).?));
    handle_metas[0].length = 9;
    try testing.expectEqual(errno.negative(.INVAL), send(handle, -1, 1));
    try testing.expectEqual(@as(i32, 0), destroy(handle));
}
