//! UDP batches: sendmmsg/recvmmsg of count slots in one syscall, over one buffer that JS
//! allocates and owns. Nothing is kept natively between calls, so no JS view can outlive the
//! memory it reads (a batch is freed by the garbage collector like any ArrayBuffer).
//! Buffer layout, per slot_count slots: metas (48 bytes each, shared with JS), then the
//! mmsghdrs and iovecs rebuilt on every call (nothing JS writes there is trusted), then the
//! data (slot_bytes each).

const std = @import("std");
const linux = std.os.linux;
const errno = @import("errno.zig");

pub const slot_count_max = 1024;
pub const slot_bytes_max = 65536;
/// Room for sockaddr_in6, the largest address a UDP socket reports.
pub const address_bytes_max = 28;

/// Per-slot metadata shared with JS (src/udp/batch.ts): 48 bytes.
pub const Meta = extern struct {
    length: u32,
    address_length: u32,
    flags: u32,
    pad: u32,
    address: [address_bytes_max]u8 align(4),
    pad_tail: [4]u8,
};

const Iovec = extern struct { base: [*]u8, length: usize };

/// Bytes per slot before the data: its meta, mmsghdr and iovec (LAYOUT.udpSlotHeaderBytes).
pub const slot_header_bytes = @sizeOf(Meta) + @sizeOf(linux.mmsghdr) + @sizeOf(Iovec);

comptime {
    std.debug.assert(@sizeOf(Meta) == 48);
    std.debug.assert(@offsetOf(Meta, "address") == 16);
    std.debug.assert(@sizeOf(linux.sockaddr.in6) == address_bytes_max);
    std.debug.assert(@sizeOf(Meta) % @alignOf(linux.mmsghdr) == 0);
    std.debug.assert(@sizeOf(linux.mmsghdr) % @alignOf(Iovec) == 0);
}

/// A caller's buffer seen as slots; null when the arguments cannot describe one.
const Batch = struct {
    metas: []Meta,
    headers: []linux.mmsghdr,
    iovecs: []Iovec,
    data: [*]u8,
    slot_bytes: u32,

    fn of(buffer: ?[*]u8, slot_count: u32, slot_bytes: u32, slots: u32) ?Batch {
        const base = buffer orelse return null;
        if (slot_count == 0 or slot_count > slot_count_max) return null;
        if (slot_bytes == 0 or slot_bytes > slot_bytes_max) return null;
        if (slots > slot_count) return null;
        if (@intFromPtr(base) % @alignOf(linux.mmsghdr) != 0) return null;
        const count: usize = slot_count;
        const metas: [*]Meta = @ptrCast(@alignCast(base));
        const headers: [*]linux.mmsghdr = @ptrCast(@alignCast(base + count * @sizeOf(Meta)));
        const iovecs: [*]Iovec = @ptrCast(@alignCast(base + count * (@sizeOf(Meta) + @sizeOf(linux.mmsghdr))));
        return .{
            .metas = metas[0..slots],
            .headers = headers[0..slots],
            .iovecs = iovecs[0..slots],
            .data = base + count * slot_header_bytes,
            .slot_bytes = slot_bytes,
        };
    }

    /// Points slot `index`'s header at its meta's address and its data, `length` bytes.
    fn prepare(batch: Batch, index: usize, length: u32, address_length: u32) void {
        batch.iovecs[index] = .{ .base = batch.data + index * batch.slot_bytes, .length = length };
        const address: ?*linux.sockaddr = if (address_length == 0) null else @ptrCast(&batch.metas[index].address);
        batch.headers[index] = .{
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
};

/// recvmmsg(MSG_DONTWAIT) into the first `slots` slots; fills each meta's length, address
/// and flags (MSG_TRUNC marks a datagram longer than slot_bytes).
pub fn receive(fd: i32, buffer: ?[*]u8, slot_count: u32, slot_bytes: u32, slots: u32) i32 {
    const batch = Batch.of(buffer, slot_count, slot_bytes, slots) orelse return errno.negative(.INVAL);
    if (slots == 0) return 0;
    for (0..slots) |index| batch.prepare(index, slot_bytes, address_bytes_max);
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
pub fn send(fd: i32, buffer: ?[*]u8, slot_count: u32, slot_bytes: u32, slots: u32) i32 {
    const batch = Batch.of(buffer, slot_count, slot_bytes, slots) orelse return errno.negative(.INVAL);
    if (slots == 0) return 0;
    for (batch.metas, 0..) |meta, index| {
        if (meta.length > slot_bytes) return errno.negative(.INVAL);
        if (meta.address_length > address_bytes_max) return errno.negative(.INVAL);
        batch.prepare(index, meta.length, meta.address_length);
    }
    const rc = errno.retry(linux.sendmmsg, .{ fd, batch.headers.ptr, slots, linux.MSG.DONTWAIT });
    return errno.result(rc);
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

/// A batch buffer as JS allocates one (8-byte aligned).
fn allocateBatch(slot_count: u32, slot_bytes: u32) ![]align(8) u8 {
    const bytes = try testing.allocator.alignedAlloc(u8, .@"8", @as(usize, slot_count) * (slot_header_bytes + slot_bytes));
    @memset(bytes, 0);
    return bytes;
}

fn metasOf(buffer: []align(8) u8) [*]Meta {
    return @ptrCast(buffer.ptr);
}

fn dataOf(buffer: []align(8) u8, slot_count: u32) [*]u8 {
    return buffer.ptr + @as(usize, slot_count) * slot_header_bytes;
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

    const outgoing = try allocateBatch(datagrams, 512);
    defer testing.allocator.free(outgoing);
    const incoming = try allocateBatch(datagrams, 512);
    defer testing.allocator.free(incoming);

    const out_data = dataOf(outgoing, datagrams);
    const out_metas = metasOf(outgoing);
    for (0..datagrams) |index| {
        const text = std.fmt.bufPrint(out_data[index * 512 ..][0..512], "datagram {d}", .{index}) catch unreachable;
        out_metas[index].length = @intCast(text.len);
        out_metas[index].address_length = @sizeOf(linux.sockaddr.in);
        @memcpy(out_metas[index].address[0..16], receiver_address[0..16]);
    }
    try testing.expectEqual(@as(i32, datagrams), send(sender_fd, outgoing.ptr, datagrams, 512, datagrams));

    var received: usize = 0;
    var rounds: usize = 0;
    while (received < datagrams and rounds < datagrams) : (rounds += 1) {
        try sockets.waitReady(receiver_fd, linux.POLL.IN);
        const count = receive(receiver_fd, incoming.ptr, datagrams, 512, datagrams);
        try testing.expect(count > 0);
        try expectReceived(incoming, received, @intCast(count), &sender_address);
        received += @intCast(count);
    }
    try testing.expectEqual(@as(usize, datagrams), received);
    try testing.expectEqual(errno.negative(.AGAIN), receive(receiver_fd, incoming.ptr, datagrams, 512, datagrams));
    try testing.expectEqual(errno.negative(.INVAL), receive(receiver_fd, incoming.ptr, datagrams, 512, datagrams + 1));
}

/// Datagrams come back in order on loopback; each batch starts at slot 0.
fn expectReceived(buffer: []align(8) u8, first: usize, count: usize, sender: *const [sockets.sockaddr_storage_bytes]u8) !void {
    const in_data = dataOf(buffer, 64);
    const in_metas = metasOf(buffer);
    for (0..count) |slot| {
        var expected: [32]u8 = undefined;
        const text = std.fmt.bufPrint(&expected, "datagram {d}", .{first + slot}) catch unreachable;
        try testing.expectEqualStrings(text, in_data[slot * 512 ..][0..in_metas[slot].length]);
        try testing.expectEqual(@as(u32, 16), in_metas[slot].address_length);
        try testing.expectEqualSlices(u8, sender[0..8], in_metas[slot].address[0..8]);
    }
}

test "udp_batch: limits and bad buffers" {
    const buffer = try allocateBatch(2, 8);
    defer testing.allocator.free(buffer);
    try testing.expectEqual(errno.negative(.INVAL), receive(-1, buffer.ptr, slot_count_max + 1, 16, 1));
    try testing.expectEqual(errno.negative(.INVAL), receive(-1, buffer.ptr, 2, slot_bytes_max + 1, 1));
    try testing.expectEqual(errno.negative(.INVAL), receive(-1, null, 2, 8, 1));
    try testing.expectEqual(errno.negative(.INVAL), receive(-1, buffer.ptr + 1, 2, 8, 1));
    metasOf(buffer)[0].length = 9;
    try testing.expectEqual(errno.negative(.INVAL), send(-1, buffer.ptr, 2, 8, 1));
    metasOf(buffer)[0].length = 8;
    metasOf(buffer)[0].address_length = address_bytes_max + 1;
    try testing.expectEqual(errno.negative(.INVAL), send(-1, buffer.ptr, 2, 8, 1));
}
