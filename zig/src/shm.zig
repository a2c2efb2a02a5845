//! Shared memory for cluster counters: one file (in /dev/shm) mapped MAP_SHARED by the
//! primary and by every worker, whether a thread or a process. Also pidfd_getfd, so a worker
//! process can take a copy of an fd (a BPF map) from the primary.

const std = @import("std");
const linux = std.os.linux;
const errno = @import("errno.zig");

/// Largest mapping we hand out; counters need a few KiB.
pub const map_bytes_max: u32 = 64 * 1024 * 1024;

/// Opens (creating, mode 0600) the file at the NUL-terminated `path`, sizes it to `bytes` when
/// it is smaller, maps it shared and closes the fd. Returns the address, or null with the
/// errno in `error_out[0..4]` (i32, negative).
pub fn map(path: ?[*]u8, path_length: u32, bytes: u32, error_out: ?[*]u8) ?*anyopaque {
    const failed = struct {
        fn with(out: ?[*]u8, code: i32) ?*anyopaque {
            if (out) |o| std.mem.writeInt(i32, o[0..4], code, .little);
            return null;
        }
    }.with;
    const path_bytes = path orelse return failed(error_out, errno.negative(.FAULT));
    if (bytes == 0 or bytes > map_bytes_max or path_length == 0 or path_length > 4095) return failed(error_out, errno.negative(.INVAL));
    if (path_bytes[path_length] != 0) return failed(error_out, errno.negative(.INVAL)); // JS passes a NUL-terminated path
    const flags: linux.O = .{ .ACCMODE = .RDWR, .CREAT = true, .CLOEXEC = true };
    const open_rc = errno.retry(linux.open, .{ @as([*:0]const u8, @ptrCast(path_bytes)), flags, @as(linux.mode_t, 0o600) });
    if (linux.errno(open_rc) != .SUCCESS) return failed(error_out, errno.result(open_rc));
    const fd: i32 = @intCast(open_rc);
    defer _ = linux.close(fd);
    const size_rc = linux.lseek(fd, 0, linux.SEEK.END); // the file's size, without a Stat layout
    if (linux.errno(size_rc) != .SUCCESS) return failed(error_out, errno.result(size_rc));
    if (size_rc < bytes) {
        const truncate_rc = errno.retry(linux.ftruncate, .{ fd, @as(i64, bytes) });
        if (linux.errno(truncate_rc) != .SUCCESS) return failed(error_out, errno.result(truncate_rc));
    }
    const address = linux.mmap(null, bytes, .{ .READ = true, .WRITE = true }, .{ .TYPE = .SHARED }, fd, 0);
    if (linux.errno(address) != .SUCCESS) return failed(error_out, errno.result(address));
    return @ptrFromInt(address);
}

pub fn unmap(address: ?*anyopaque, bytes: u32) i32 {
    const pointer = address orelse return errno.negative(.FAULT);
    return errno.result(linux.munmap(@ptrCast(@alignCast(pointer)), bytes));
}

/// A copy (CLOEXEC) of `fd` from process `pid` (pidfd_open + pidfd_getfd; needs ptrace rights).
pub fn pidfdGetfd(pid: i32, fd: i32) i32 {
    const pidfd_rc = linux.syscall2(.pidfd_open, @as(usize, @intCast(pid)), 0);
    if (linux.errno(pidfd_rc) != .SUCCESS) return errno.result(pidfd_rc);
    const pidfd: i32 = @intCast(pidfd_rc);
    defer _ = linux.close(pidfd);
    return errno.result(linux.syscall3(.pidfd_getfd, @as(usize, @intCast(pidfd)), @as(usize, @intCast(fd)), 0));
}
