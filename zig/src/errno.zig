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

/// Why a native object (a poller, a ring, a wake thread) could not be set up. Setup code returns these
/// so that `errdefer` undoes each step it took; the export turns them back into -errno (`setupErrno`).
pub const SetupError = error{
    /// A size out of range, or (io_uring_setup) a kernel before 6.0, which refuses SINGLE_ISSUER. EINVAL.
    ArgumentsInvalid,
    /// RLIMIT_NOFILE reached. EMFILE.
    ProcessFdQuotaExceeded,
    /// fs.file-max reached. ENFILE.
    SystemFdQuotaExceeded,
    /// Out of memory, in our allocator or in the kernel. ENOMEM.
    OutOfMemory,
    /// A sysctl (kernel.io_uring_disabled) or a seccomp policy forbids it. EPERM.
    PermissionDenied,
    /// The kernel lacks the feature (io_uring, a registered eventfd, provided buffer rings). ENOSYS.
    SystemOutdated,
    /// fs.epoll.max_user_watches reached. ENOSPC.
    WatchesExhausted,
    /// eventfd's anonymous inode mount is missing. ENODEV.
    NoDevice,
    /// RLIMIT_NPROC or the kernel's thread limit reached, or pthread_create failed otherwise. EAGAIN.
    ThreadQuotaExceeded,
    /// An errno none of these calls documents (a seccomp filter's own choice). EIO.
    Unexpected,
};

/// A setup syscall's raw result: the value (an fd, or 0), or the SetupError its errno means.
pub fn setupResult(rc: usize) SetupError!i32 {
    return switch (linux.errno(rc)) {
        .SUCCESS => result(rc),
        .INVAL => error.ArgumentsInvalid,
        .MFILE => error.ProcessFdQuotaExceeded,
        .NFILE => error.SystemFdQuotaExceeded,
        .NOMEM => error.OutOfMemory,
        .PERM => error.PermissionDenied,
        .NOSYS => error.SystemOutdated,
        .NOSPC => error.WatchesExhausted,
        .NODEV => error.NoDevice,
        .AGAIN => error.ThreadQuotaExceeded,
        else => error.Unexpected,
    };
}

/// The -errno an export returns for a failed setup.
pub fn setupErrno(err: SetupError) i32 {
    return negative(switch (err) {
        error.ArgumentsInvalid => .INVAL,
        error.ProcessFdQuotaExceeded => .MFILE,
        error.SystemFdQuotaExceeded => .NFILE,
        error.OutOfMemory => .NOMEM,
        error.PermissionDenied => .PERM,
        error.SystemOutdated => .NOSYS,
        error.WatchesExhausted => .NOSPC,
        error.NoDevice => .NODEV,
        error.ThreadQuotaExceeded => .AGAIN,
        error.Unexpected => .IO,
    });
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

test "errno: a setup errno survives the trip through SetupError" {
    for ([_]linux.E{ .INVAL, .MFILE, .NFILE, .NOMEM, .PERM, .NOSYS, .NOSPC, .NODEV, .AGAIN, .ROFS }) |e| {
        const rc: usize = @bitCast(@as(isize, negative(e)));
        const err = if (setupResult(rc)) |_| return error.TestUnexpectedResult else |err| err;
        const expected = if (e == .ROFS) negative(.IO) else negative(e); // ROFS: undocumented for these calls
        try std.testing.expectEqual(expected, setupErrno(err));
    }
    try std.testing.expectEqual(@as(i32, 7), try setupResult(7));
}
