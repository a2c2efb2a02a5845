//! Turns raw Linux syscall results into the ABI's `>= 0 or -errno` i32 and retries EINTR.
//! Nothing here touches libc's thread-local errno: FFI calls may run on any thread.

const std = @import("std");
const linux = std.os.linux;

/// The negative errno for `e`, as every export returns it.
pub fn negative(e: linux.E) i32 {
    return -@as(i32, @backingInt(e));
}

/// Converts a raw syscall return value into the ABI form: the value itself, or -errno.
pub fn result(rc: usize) i32 {
    const signed: isize = @bitCast(rc);
    // Kernel byte counts are capped at MAX_RW_COUNT (< 2 GiB) and fds are ints, so this fits.
    return @intCast(signed);
}

/// Calls `function` with `args` again while it fails with EINTR, so callers never see it.
/// A signal storm is the only way to loop here for long, and each round makes a syscall.
pub fn retry(comptime function: anytype, args: anytype) usize {
    while (true) {
        const rc = @call(.auto, function, args);
        if (linux.errno(rc) != .INTR) return rc;
    }
}

/// The address of an optional JS buffer, 0 for null; the kernel answers EFAULT where it matters.
pub fn address(buffer: ?[*]u8) usize {
    return if (buffer) |pointer| @intFromPtr(pointer) else 0;
}

test "errno: result keeps values and negates errors" {
    try std.testing.expectEqual(@as(i32, 5), result(5));
    const rc: usize = @bitCast(@as(isize, -11));
    try std.testing.expectEqual(@as(i32, -11), result(rc));
    try std.testing.expectEqual(@as(i32, -9), negative(.BADF));
}
