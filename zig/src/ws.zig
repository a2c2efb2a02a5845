//! WebSocket payload unmasking (RFC 6455 §5.3): XOR with a 4-byte key, 16 bytes at a time. JS does short
//! payloads itself; a long one is cheaper here than a JS loop.

const std = @import("std");
const errno = @import("errno.zig");

const lanes = 16;

/// XORs buffer[0..length] in place with `key` (the mask's 4 bytes read as a little-endian u32), starting at
/// byte `phase` (0..3) of the key: a payload split across reads resumes where the last part stopped.
pub fn unmask(buffer: ?[*]u8, length: u32, key: u32, phase: u32) i32 {
    const bytes = buffer orelse return errno.negative(.FAULT);
    if (phase > 3) return errno.negative(.INVAL);
    var mask: [4]u8 = undefined;
    std.mem.writeInt(u32, &mask, key, .little);
    var rotated: [4]u8 = undefined;
    for (0..4) |i| rotated[i] = mask[(i + phase) & 3];
    var wide: [lanes]u8 = undefined;
    for (0..lanes) |i| wide[i] = rotated[i & 3];
    const vector: @Vector(lanes, u8) = wide;
    var at: usize = 0;
    while (at + lanes <= length) : (at += lanes) {
        const chunk: @Vector(lanes, u8) = bytes[at..][0..lanes].*;
        bytes[at..][0..lanes].* = chunk ^ vector;
    }
    while (at < length) : (at += 1) bytes[at] ^= rotated[at & 3];
    return 0;
}

test "unmask matches the byte-wise definition at every phase and length" {
    var original: [100]u8 = undefined;
    for (&original, 0..) |*b, i| b.* = @truncate(i * 7 + 3);
    const mask = [4]u8{ 0x12, 0x34, 0x56, 0x78 };
    const key = std.mem.readInt(u32, &mask, .little);
    for (0..4) |phase| {
        for ([_]usize{ 0, 1, 3, 15, 16, 17, 33, 100 }) |length| {
            var data = original;
            try std.testing.expectEqual(@as(i32, 0), unmask(&data, @intCast(length), key, @intCast(phase)));
            for (0..length) |i| try std.testing.expectEqual(original[i] ^ mask[(i + phase) & 3], data[i]);
            for (length..100) |i| try std.testing.expectEqual(original[i], data[i]);
        }
    }
    try std.testing.expectEqual(@as(i32, -22), unmask(&original, 4, key, 4));
}
