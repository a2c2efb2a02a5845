//! Files for responses: open read-only (optionally beneath a directory, so a request path can never
//! leave it), describe it for the response head, and sendfile(2) ranges of it to a socket, so a file
//! body goes from the page cache to the socket without passing through JS.

const std = @import("std");
const linux = std.os.linux;
const errno = @import("errno.zig");

/// A path from JS: longer ones are refused before the syscall (the kernel's PATH_MAX).
pub const path_bytes_max = 4096;

/// What JS reads after an open, as u32 words: size (lo, hi), mtime seconds (lo, hi), mtime nanoseconds,
/// mode (type and permission bits), inode (lo, hi).
pub const FileInfo = extern struct {
    size_lo: u32,
    size_hi: u32,
    mtime_lo: u32,
    mtime_hi: u32,
    mtime_nsec: u32,
    mode: u32,
    ino_lo: u32,
    ino_hi: u32,
};

comptime {
    std.debug.assert(@sizeOf(FileInfo) == 32);
}

/// struct open_how of openat2(2).
const OpenHow = extern struct {
    flags: u64,
    mode: u64,
    resolve: u64,
};
/// openat2 RESOLVE_* bits: stay beneath the directory (no "..", absolute paths or symlinks out of it),
/// and never follow /proc magic links.
const resolve_beneath: u64 = 0x08;
const resolve_no_magiclinks: u64 = 0x02;

fn zeroTerminated(buffer: [*]u8, length: u32, storage: *[path_bytes_max + 1]u8) ?[*:0]const u8 {
    if (length == 0 or length > path_bytes_max) return null;
    const path = buffer[0..length];
    if (std.mem.indexOfScalar(u8, path, 0) != null) return null; // a NUL inside would cut the path short
    @memcpy(storage[0..length], path);
    storage[length] = 0;
    return storage[0..length :0];
}

/// Opens `path` read-only: beneath directory fd `dir` (openat2 RESOLVE_BENEATH) when dir >= 0, else as given.
/// Fills `info`; refuses what is not a regular file (EISDIR for a directory, EINVAL otherwise), so a
/// directory or a device is never sent as a body. Returns the fd, or -errno (ENAMETOOLONG, EINVAL for an
/// empty path or one with a NUL, EXDEV when the path leaves `dir`).
pub fn open(dir: i32, buffer: ?[*]u8, length: u32, info_buffer: ?[*]u8) i32 {
    const bytes = buffer orelse return errno.negative(.FAULT);
    const out = info_buffer orelse return errno.negative(.FAULT);
    if (length > path_bytes_max) return errno.negative(.NAMETOOLONG);
    var storage: [path_bytes_max + 1]u8 = undefined;
    const path = zeroTerminated(bytes, length, &storage) orelse return errno.negative(.INVAL);
    const flags: linux.O = .{ .ACCMODE = .RDONLY, .CLOEXEC = true, .NOCTTY = true };
    const rc = if (dir >= 0) blk: {
        var how = OpenHow{ .flags = @as(u32, @bitCast(flags)), .mode = 0, .resolve = resolve_beneath | resolve_no_magiclinks };
        break :blk errno.retry(openat2, .{ dir, path, &how });
    } else errno.retry(linux.openat, .{ linux.AT.FDCWD, path, flags, @as(linux.mode_t, 0) });
    const fd = errno.result(rc);
    if (fd < 0) return fd;
    const described = describe(fd, out);
    if (described < 0) {
        _ = linux.close(fd);
        return described;
    }
    return fd;
}

fn openat2(dir: i32, path: [*:0]const u8, how: *OpenHow) usize {
    return linux.syscall4(.openat2, @as(u32, @bitCast(dir)), @intFromPtr(path), @intFromPtr(how), @sizeOf(OpenHow));
}

/// Fills `out` (a FileInfo) for an open fd; a directory is EISDIR, any other non-regular file EINVAL.
fn describe(fd: i32, out: [*]u8) i32 {
    var stat: linux.Statx = undefined;
    const mask: linux.STATX = .{ .TYPE = true, .MODE = true, .SIZE = true, .MTIME = true, .INO = true };
    const rc = errno.result(linux.statx(fd, "", linux.AT.EMPTY_PATH, mask, &stat));
    if (rc < 0) return rc;
    const kind = stat.mode & linux.S.IFMT;
    if (kind == linux.S.IFDIR) return errno.negative(.ISDIR);
    if (kind != linux.S.IFREG) return errno.negative(.INVAL);
    const seconds: u64 = @bitCast(stat.mtime.sec);
    const info = FileInfo{
        .size_lo = @truncate(stat.size),
        .size_hi = @truncate(stat.size >> 32),
        .mtime_lo = @truncate(seconds),
        .mtime_hi = @truncate(seconds >> 32),
        .mtime_nsec = stat.mtime.nsec,
        .mode = stat.mode,
        .ino_lo = @truncate(stat.ino),
        .ino_hi = @truncate(stat.ino >> 32),
    };
    @memcpy(out[0..@sizeOf(FileInfo)], std.mem.asBytes(&info));
    return 0;
}

/// Opens a directory (to serve files beneath it); ENOTDIR when it is not one.
pub fn openDirectory(buffer: ?[*]u8, length: u32) i32 {
    const bytes = buffer orelse return errno.negative(.FAULT);
    if (length > path_bytes_max) return errno.negative(.NAMETOOLONG);
    var storage: [path_bytes_max + 1]u8 = undefined;
    const path = zeroTerminated(bytes, length, &storage) orelse return errno.negative(.INVAL);
    const flags: linux.O = .{ .ACCMODE = .RDONLY, .CLOEXEC = true, .DIRECTORY = true, .PATH = true };
    return errno.result(errno.retry(linux.openat, .{ linux.AT.FDCWD, path, flags, @as(linux.mode_t, 0) }));
}

/// sendfile(2) of at most `count` bytes of `file` from offset (hi << 32 | lo) to `socket`: the bytes sent,
/// 0 at the file's end, or -errno (-EAGAIN when the socket is full).
pub fn send(socket: i32, file: i32, offset_hi: u32, offset_lo: u32, count: u32) i32 {
    var offset: i64 = @bitCast((@as(u64, offset_hi) << 32) | offset_lo);
    const chunk = @min(count, std.math.maxInt(i32)); // the count comes back as an i32
    return errno.result(errno.retry(linux.sendfile, .{ socket, file, &offset, chunk }));
}

/// pread(2) of at most `length` bytes at offset (hi << 32 | lo) into buffer: bytes read, 0 at the end, or -errno.
pub fn read(file: i32, buffer: ?[*]u8, length: u32, offset_hi: u32, offset_lo: u32) i32 {
    const bytes = buffer orelse return errno.negative(.FAULT);
    const offset: i64 = @bitCast((@as(u64, offset_hi) << 32) | offset_lo);
    return errno.result(errno.retry(linux.pread, .{ file, bytes, @min(length, std.math.maxInt(i32)), offset }));
}

test "open refuses directories, empty paths and NULs, and stays beneath its directory" {
    var info: [@sizeOf(FileInfo)]u8 = undefined;
    var tmp = std.testing.tmpDir(.{});
    defer tmp.cleanup();
    try tmp.dir.writeFile(std.testing.io, .{ .sub_path = "inside.txt", .data = "hello" });
    try tmp.dir.createDir(std.testing.io, "sub", .default_dir);
    const dir = tmp.dir.handle;
    const file = open(dir, @constCast("inside.txt"), 10, &info);
    try std.testing.expect(file >= 0);
    defer _ = linux.close(file);
    const described: *align(1) const FileInfo = @ptrCast(&info);
    try std.testing.expectEqual(@as(u32, 5), described.size_lo);
    try std.testing.expectEqual(-@as(i32, @intFromEnum(linux.E.ISDIR)), open(dir, @constCast("sub"), 3, &info));
    try std.testing.expectEqual(-@as(i32, @intFromEnum(linux.E.XDEV)), open(dir, @constCast("../x"), 4, &info));
    try std.testing.expectEqual(-@as(i32, @intFromEnum(linux.E.XDEV)), open(dir, @constCast("/etc/passwd"), 11, &info));
    try std.testing.expectEqual(-@as(i32, @intFromEnum(linux.E.INVAL)), open(dir, @constCast("in\x00side.txt"), 11, &info));
    try std.testing.expectEqual(-@as(i32, @intFromEnum(linux.E.INVAL)), open(dir, @constCast(""), 0, &info));
}
