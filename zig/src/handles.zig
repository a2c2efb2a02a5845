//! Fixed-size handle tables: JS holds small i32 indices, never pointers to our structs.
//! Slots are atomic pointers, so lookups from any thread need no lock.

const std = @import("std");
const errno = @import("errno.zig");

/// Handles carry their slot's generation above the index bits, so a handle kept after its item was
/// removed (a stale copy in JS, or in a dead thread worker's stats slot) never reaches the item that
/// reuses the slot: it is simply unknown (EBADF), never someone else's.
pub const index_bits = 12;
const generation_mask: u32 = (1 << (31 - index_bits)) - 1;

pub fn Table(comptime T: type, comptime slots_max: u32) type {
    comptime std.debug.assert(slots_max <= 1 << index_bits);
    return struct {
        const Self = @This();

        slots: [slots_max]std.atomic.Value(?*T) = @splat(.init(null)),
        /// Bumped when a slot's item is removed; part of every handle to that slot.
        generations: [slots_max]std.atomic.Value(u32) = @splat(.init(1)),

        /// Claims a free slot for `item`: the handle (positive), or -EMFILE when every slot is taken.
        pub fn insert(self: *Self, item: *T) i32 {
            for (&self.slots, 0..) |*slot, index| {
                if (slot.cmpxchgStrong(null, item, .acq_rel, .acquire) == null) {
                    const generation = self.generations[index].load(.acquire) & generation_mask;
                    return @intCast((generation << index_bits) | @as(u32, @intCast(index)));
                }
            }
            return errno.negative(.MFILE);
        }

        fn indexOf(self: *Self, handle: i32) ?usize {
            if (handle < 0) return null;
            const bits: u32 = @intCast(handle);
            const index = bits & ((1 << index_bits) - 1);
            if (index >= slots_max) return null;
            if (self.generations[index].load(.acquire) & generation_mask != bits >> index_bits) return null;
            return index;
        }

        /// The item behind `handle`, or null for a handle that is malformed, free, or of an earlier item.
        pub fn get(self: *Self, handle: i32) ?*T {
            const index = self.indexOf(handle) orelse return null;
            const item = self.slots[index].load(.acquire);
            // Removed (and maybe reused) between the two loads: the generation moved.
            return if (self.indexOf(handle) == null) null else item;
        }

        /// Frees the slot and hands back its item; only one caller can win a given handle.
        pub fn remove(self: *Self, handle: i32) ?*T {
            const index = self.indexOf(handle) orelse return null;
            const bits: u32 = @intCast(handle);
            // The generation moves first, so a concurrent get() of this handle sees it gone.
            if (self.generations[index].cmpxchgStrong(bits >> index_bits, ((bits >> index_bits) + 1) & generation_mask, .acq_rel, .acquire) != null) return null;
            return self.slots[index].swap(null, .acq_rel);
        }
    };
}

test "handles: insert, get, remove" {
    var table: Table(u32, 2) = .{};
    var a: u32 = 1;
    var b: u32 = 2;
    var c: u32 = 3;
    const ha = table.insert(&a);
    const hb = table.insert(&b);
    try std.testing.expect(ha > 0 and hb > 0 and ha != hb);
    try std.testing.expectEqual(errno.negative(.MFILE), table.insert(&c));
    try std.testing.expect(table.get(hb) == &b);
    try std.testing.expect(table.get(hb + 1) == null);
    try std.testing.expect(table.get(-1) == null);
    try std.testing.expect(table.remove(ha) == &a);
    try std.testing.expect(table.remove(ha) == null);
    const hc = table.insert(&c);
    try std.testing.expect(hc > 0 and hc != ha);
    // The stale handle of a's slot does not reach c, which reuses that slot.
    try std.testing.expect(table.get(ha) == null);
    try std.testing.expect(table.remove(ha) == null);
    try std.testing.expect(table.get(hc) == &c);
}
