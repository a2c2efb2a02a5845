//! Fixed-size handle tables: JS holds small i32 indices, never pointers to our structs.
//! Slots are atomic pointers, so lookups from any thread need no lock.

const std = @import("std");
const errno = @import("errno.zig");

pub fn Table(comptime T: type, comptime slots_max: u32) type {
    return struct {
        const Self = @This();

        slots: [slots_max]std.atomic.Value(?*T) = @splat(.init(null)),

        /// Claims a free slot for `item`: the handle, or -EMFILE when every slot is taken.
        pub fn insert(self: *Self, item: *T) i32 {
            for (&self.slots, 0..) |*slot, index| {
                if (slot.cmpxchgStrong(null, item, .acq_rel, .acquire) == null) return @intCast(index);
            }
            return errno.negative(.MFILE);
        }

        /// The item behind `handle`, or null for a handle that is out of range or free.
        pub fn get(self: *Self, handle: i32) ?*T {
            if (handle < 0 or handle >= slots_max) return null;
            return self.slots[@intCast(handle)].load(.acquire);
        }

        /// Frees the slot and hands back its item; only one caller can win a given handle.
        pub fn remove(self: *Self, handle: i32) ?*T {
            if (handle < 0 or handle >= slots_max) return null;
            return self.slots[@intCast(handle)].swap(null, .acq_rel);
        }
    };
}

test "handles: insert, get, remove" {
    var table: Table(u32, 2) = .{};
    var a: u32 = 1;
    var b: u32 = 2;
    var c: u32 = 3;
    try std.testing.expectEqual(@as(i32, 0), table.insert(&a));
    try std.testing.expectEqual(@as(i32, 1), table.insert(&b));
    try std.testing.expectEqual(errno.negative(.MFILE), table.insert(&c));
    try std.testing.expect(table.get(1) == &b);
    try std.testing.expect(table.get(2) == null);
    try std.testing.expect(table.get(-1) == null);
    try std.testing.expect(table.remove(0) == &a);
    try std.testing.expect(table.remove(0) == null);
    try std.testing.expectEqual(@as(i32, 0), table.insert(&c));
}
