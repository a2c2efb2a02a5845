//! Process and thread settings: RLIMIT_NOFILE, CPU affinity of the calling thread, the
//! current CPU and thread id, and the parent-death signal.

const std = @import("std");
const builtin = @import("builtin");
const linux = std.os.linux;
const errno = @import("errno.zig");

const endian = builtin.cpu.arch.endian();
/// CPU_SETSIZE: the bits of the mask we pass to sched_{get,set}affinity.
pub const cpus_max = @bitSizeOf(linux.cpu_set_t);
const PR_SET_PDEATHSIG = 1;

/// Writes {u64 soft, u64 hard} of RLIMIT_NOFILE into 16 bytes.
pub fn rlimitNofileGet(out: ?[*]u8) i32 {
    const out_bytes = out orelse return errno.negative(.FAULT);
    var limit: linux.rlimit = undefined;
    const rc = linux.prlimit(0, .NOFILE, null, &limit);
    if (linux.errno(rc) != .SUCCESS) return errno.result(rc);
    std.mem.writeInt(u64, out_bytes[0..8], limit.cur, endian);
    std.mem.writeInt(u64, out_bytes[8..16], limit.max, endian);
    return 0;
}

/// Sets RLIMIT_NOFILE from {u64 soft, u64 hard} in 16 bytes.
pub fn rlimitNofileSet(in: ?[*]u8) i32 {
    const in_bytes = in orelse return errno.negative(.FAULT);
    const limit: linux.rlimit = .{
        .cur = std.mem.readInt(u64, in_bytes[0..8], endian),
        .max = std.mem.readInt(u64, in_bytes[8..16], endian),
    };
    return errno.result(linux.prlimit(0, .NOFILE, &limit, null));
}

/// Pins the calling thread (pid 0 means the caller's tid) to one CPU.
pub fn affinitySetCpu(cpu: i32) i32 {
    if (cpu < 0 or cpu >= cpus_max) return errno.negative(.INVAL);
    var set: linux.cpu_set_t = @splat(0);
    const cpu_index: usize = @intCast(cpu);
    const word_bits = @bitSizeOf(usize);
    set[cpu_index / word_bits] = @as(usize, 1) << @intCast(cpu_index % word_bits);
    const rc = linux.syscall3(.sched_setaffinity, 0, @sizeOf(linux.cpu_set_t), @intFromPtr(&set));
    return errno.result(rc);
}

/// Sets the calling thread's mask from `length` bytes; bits past the kernel's CPU count are
/// ignored by the kernel, a mask with no online CPU fails with EINVAL.
pub fn affinitySet(mask: ?[*]u8, length: u32) i32 {
    const mask_bytes = mask orelse return errno.negative(.FAULT);
    const rc = linux.syscall3(.sched_setaffinity, 0, length, @intFromPtr(mask_bytes));
    return errno.result(rc);
}

/// Copies up to `capacity` bytes of the calling thread's mask; returns how many CPUs it holds.
pub fn affinityGet(out: ?[*]u8, capacity: u32) i32 {
    var set: linux.cpu_set_t = @splat(0);
    const rc = linux.syscall3(.sched_getaffinity, 0, @sizeOf(linux.cpu_set_t), @intFromPtr(&set));
    if (linux.errno(rc) != .SUCCESS) return errno.result(rc);
    if (out) |out_bytes| {
        const copy_bytes = @min(capacity, @sizeOf(linux.cpu_set_t));
        @memcpy(out_bytes[0..copy_bytes], std.mem.asBytes(&set)[0..copy_bytes]);
    }
    var count: i32 = 0;
    for (set) |word| count += @popCount(word);
    return count;
}

pub fn getcpu() i32 {
    var cpu: u32 = 0;
    const rc = linux.syscall3(.getcpu, @intFromPtr(&cpu), 0, 0);
    if (linux.errno(rc) != .SUCCESS) return errno.result(rc);
    return @intCast(cpu);
}

pub fn gettid() i32 {
    return linux.gettid();
}

pub fn setPdeathsig(signal: i32) i32 {
    if (signal < 0) return errno.negative(.INVAL);
    return errno.result(linux.prctl(PR_SET_PDEATHSIG, @intCast(signal), 0, 0, 0));
}

const testing = std.testing;

test "process: RLIMIT_NOFILE round trip" {
    var limits: [16]u8 = undefined;
    try testing.expectEqual(@as(i32, 0), rlimitNofileGet(&limits));
    const soft = std.mem.readInt(u64, limits[0..8], endian);
    const hard = std.mem.readInt(u64, limits[8..16], endian);
    try testing.expect(soft <= hard);
    try testing.expectEqual(@as(i32, 0), rlimitNofileSet(&limits));
    try testing.expectEqual(errno.negative(.FAULT), rlimitNofileGet(null));
}

test "process: affinity, getcpu, gettid, pdeathsig" {
    var mask: [@sizeOf(linux.cpu_set_t)]u8 = undefined;
    const cpus = affinityGet(&mask, mask.len);
    try testing.expect(cpus >= 1);
    try testing.expectEqual(cpus, affinityGet(null, 0));
    const cpu = getcpu();
    try testing.expect(cpu >= 0);
    // Pin to the CPU we run on (it is in our mask), then restore the original mask.
    try testing.expectEqual(@as(i32, 0), affinitySetCpu(cpu));
    try testing.expectEqual(@as(i32, 1), affinityGet(null, 0));
    try testing.expectEqual(cpu, getcpu());
    try testing.expectEqual(@as(i32, 0), affinitySet(&mask, mask.len));
    try testing.expectEqual(cpus, affinityGet(null, 0));
    try testing.expectEqual(errno.negative(.FAULT), affinitySet(null, 8));
    try testing.expectEqual(errno.negative(.INVAL), affinitySetCpu(cpus_max));
    try testing.expectEqual(errno.negative(.INVAL), affinitySetCpu(-1));
    try testing.expect(gettid() > 0);
    try testing.expectEqual(@as(i32, 0), setPdeathsig(0));
}
