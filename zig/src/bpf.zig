//! Steering for SO_REUSEPORT groups: classic BPF (CPU modulo or caller's program), eBPF
//! attach/detach, and the few bpf() commands needed to load programs and fill maps.

const std = @import("std");
const linux = std.os.linux;
const errno = @import("errno.zig");
const sockets = @import("sockets.zig");

// From include/uapi/asm-generic/socket.h; the same on every architecture we build.
const SO_ATTACH_REUSEPORT_CBPF = 51;
const SO_ATTACH_REUSEPORT_EBPF = 52;
const SO_DETACH_REUSEPORT_BPF = 68;
const SO_ATTACH_FILTER = 26;

/// BPF_MAXINSNS, the kernel's limit for a classic program.
pub const cbpf_instructions_max = 4096;
/// BPF_COMPLEXITY_LIMIT_INSNS, the kernel's limit for a privileged eBPF program.
pub const ebpf_instructions_max = 1_000_000;
/// bpf(BPF_PROG_LOAD) fails with EAGAIN when a signal interrupts the verifier; libbpf retries 5 times.
const prog_load_attempts_max = 5;

/// struct sock_filter: one classic BPF instruction, 8 bytes.
pub const SockFilter = extern struct {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
};

/// struct sock_fprog.
const SockFprog = extern struct {
    length: u16,
    filter: [*]const SockFilter,
};

comptime {
    std.debug.assert(@sizeOf(SockFilter) == 8);
}

// Classic BPF opcodes and ancillary offsets (include/uapi/linux/filter.h, bpf_common.h).
const BPF_LD = 0x00;
const BPF_W = 0x00;
const BPF_B = 0x10;
const BPF_JMP = 0x05;
const BPF_JEQ = 0x10;
const BPF_AND = 0x50;
const BPF_ABS = 0x20;
const BPF_ALU = 0x04;
const BPF_MOD = 0x90;
const BPF_K = 0x00;
const BPF_RET = 0x06;
const BPF_A = 0x10;
const SKF_AD_OFF: i32 = -0x1000;
const SKF_AD_CPU = 36;

/// A = cpu; A %= group_size; return A: each CPU's packets go to the socket with its index.
pub fn attachCbpfCpu(fd: i32, group_size: u32) i32 {
    if (group_size == 0) return errno.negative(.INVAL); // A modulo by zero; the kernel says the same.
    const program = [_]SockFilter{
        .{ .code = BPF_LD | BPF_W | BPF_ABS, .jt = 0, .jf = 0, .k = @bitCast(SKF_AD_OFF + SKF_AD_CPU) },
        .{ .code = BPF_ALU | BPF_MOD | BPF_K, .jt = 0, .jf = 0, .k = group_size },
        .{ .code = BPF_RET | BPF_A, .jt = 0, .jf = 0, .k = 0 },
    };
    return attachFilters(fd, &program, program.len);
}

/// Attaches the caller's classic program: `count` sock_filter structs of 8 bytes.
pub fn attachCbpf(fd: i32, instructions: ?[*]u8, count: u32) i32 {
    const bytes = instructions orelse return errno.negative(.FAULT);
    if (count == 0 or count > cbpf_instructions_max) return errno.negative(.INVAL);
    return attachFilters(fd, @ptrCast(bytes), count);
}

fn attachFilters(fd: i32, filters: [*]align(1) const SockFilter, count: u32) i32 {
    // The kernel copies the program, so pointing at caller memory is fine.
    const program: SockFprog = .{ .length = @intCast(count), .filter = @ptrCast(@alignCast(filters)) };
    const rc = linux.setsockopt(fd, linux.SOL.SOCKET, SO_ATTACH_REUSEPORT_CBPF, std.mem.asBytes(&program), @sizeOf(SockFprog));
    return errno.result(rc);
}

/// TCP header byte 13 holds the flags; SYN alone (no ACK) is a new connection's first packet.
const tcp_flags_offset = 13;
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

/// Makes a listening TCP socket drop new connections' SYNs (a socket filter, which a listener applies
/// to every segment) while the handshakes it already answered still complete into its accept queue.
fn refuseNewConnections(fd: i32) i32 {
    const program = [_]SockFilter{
        .{ .code = BPF_LD | BPF_B | BPF_ABS, .jt = 0, .jf = 0, .k = tcp_flags_offset },
        .{ .code = BPF_ALU | BPF_AND | BPF_K, .jt = 0, .jf = 0, .k = TCP_SYN | TCP_ACK },
        .{ .code = BPF_JMP | BPF_JEQ | BPF_K, .jt = 0, .jf = 1, .k = TCP_SYN },
        .{ .code = BPF_RET | BPF_K, .jt = 0, .jf = 0, .k = 0 }, // drop
        .{ .code = BPF_RET | BPF_K, .jt = 0, .jf = 0, .k = 0xffff_ffff }, // keep the whole segment
    };
    const fprog: SockFprog = .{ .length = program.len, .filter = &program };
    const rc = linux.setsockopt(fd, linux.SOL.SOCKET, SO_ATTACH_FILTER, std.mem.asBytes(&fprog), @sizeOf(SockFprog));
    return errno.result(rc);
}

/// Takes a listening TCP socket out of its reuseport group without resetting a connection: it stops
/// letting SYNs in, takes what its accept queue holds (up to `capacity` fds into `accepted`), and closes.
/// The kernel resets a handshake that completes while its listener closes (the child finds it no longer
/// listening), and with no SYN let in none is under way; a client whose SYN was dropped in these few
/// microseconds sends it again, to the group's other sockets. Always closes `fd`; returns the count taken.
pub fn retireListener(fd: i32, accepted: ?[*]i32, capacity: u32) i32 {
    const out = accepted orelse return errno.negative(.FAULT);
    _ = refuseNewConnections(fd); // without the filter (a unix socket, a seccomp jail) the queue is still taken
    const count = takeQueue(fd, out, 0, capacity);
    _ = sockets.close(fd);
    return @intCast(count);
}

fn takeQueue(fd: i32, out: [*]i32, start: u32, capacity: u32) u32 {
    var count = start;
    while (count < capacity) {
        const taken = sockets.accept(fd, null);
        if (taken >= 0) {
            out[count] = taken;
            count += 1;
        } else if (taken != errno.negative(.CONNABORTED) and taken != errno.negative(.PROTO)) break; // EAGAIN: empty
    }
    return count;
}

pub fn attachEbpf(fd: i32, program_fd: i32) i32 {
    const rc = linux.setsockopt(fd, linux.SOL.SOCKET, SO_ATTACH_REUSEPORT_EBPF, std.mem.asBytes(&program_fd), @sizeOf(i32));
    return errno.result(rc);
}

pub fn detach(fd: i32) i32 {
    // The value is ignored, but sock_setsockopt rejects an optlen below sizeof(int).
    const unused: i32 = 0;
    const rc = linux.setsockopt(fd, linux.SOL.SOCKET, SO_DETACH_REUSEPORT_BPF, std.mem.asBytes(&unused), @sizeOf(i32));
    return errno.result(rc);
}

const license = "GPL";

/// bpf(BPF_PROG_LOAD). With a log buffer the verifier writes a NUL-terminated log into it;
/// a log too small for the verifier's output fails the load with ENOSPC, which we return.
pub fn progLoad(program_type: u32, instructions: ?[*]u8, count: u32, log: ?[*]u8, log_capacity: u32) i32 {
    const bytes = instructions orelse return errno.negative(.FAULT);
    if (count == 0 or count > ebpf_instructions_max) return errno.negative(.INVAL);
    var attr: linux.BPF.Attr = .{ .prog_load = std.mem.zeroes(linux.BPF.ProgLoadAttr) };
    attr.prog_load.prog_type = program_type;
    attr.prog_load.insn_cnt = count;
    attr.prog_load.insns = @intFromPtr(bytes);
    attr.prog_load.license = @intFromPtr(license.ptr);
    if (log != null and log_capacity > 0) {
        attr.prog_load.log_level = 1;
        attr.prog_load.log_size = log_capacity;
        attr.prog_load.log_buf = @intFromPtr(log.?);
        log.?[0] = 0; // An empty log, not stale bytes, when the kernel writes nothing.
    }
    var rc: usize = 0;
    for (0..prog_load_attempts_max) |_| {
        rc = errno.retry(linux.bpf, .{ .prog_load, &attr, @as(u32, @sizeOf(linux.BPF.ProgLoadAttr)) });
        if (linux.errno(rc) != .AGAIN) break;
    }
    return errno.result(rc);
}

pub fn mapCreate(map_type: u32, key_bytes: u32, value_bytes: u32, entries_max: u32) i32 {
    return mapCreateFlags(map_type, key_bytes, value_bytes, entries_max, 0);
}

/// BPF_F_MMAPABLE (1 << 10) makes an ARRAY map mappable with mmap (see mapMmap).
pub fn mapCreateFlags(map_type: u32, key_bytes: u32, value_bytes: u32, entries_max: u32, flags: u32) i32 {
    var attr: linux.BPF.Attr = .{ .map_create = std.mem.zeroes(linux.BPF.MapCreateAttr) };
    attr.map_create.map_flags = flags;
    attr.map_create.map_type = map_type;
    attr.map_create.key_size = key_bytes;
    attr.map_create.value_size = value_bytes;
    attr.map_create.max_entries = entries_max;
    return errno.result(linux.bpf(.map_create, &attr, @sizeOf(linux.BPF.MapCreateAttr)));
}

pub fn mapUpdate(map_fd: i32, key: ?[*]u8, value: ?[*]u8, flags: u32) i32 {
    return mapElement(.map_update_elem, map_fd, key, value, flags);
}

pub fn mapLookup(map_fd: i32, key: ?[*]u8, value_out: ?[*]u8) i32 {
    return mapElement(.map_lookup_elem, map_fd, key, value_out, 0);
}

fn mapElement(comptime command: linux.BPF.Cmd, map_fd: i32, key: ?[*]u8, value: ?[*]u8, flags: u32) i32 {
    if (key == null or value == null) return errno.negative(.FAULT);
    var attr: linux.BPF.Attr = .{ .map_elem = std.mem.zeroes(linux.BPF.MapElemAttr) };
    attr.map_elem.map_fd = map_fd;
    attr.map_elem.key = errno.address(key);
    attr.map_elem.result = .{ .value = errno.address(value) };
    attr.map_elem.flags = flags;
    return errno.result(linux.bpf(command, &attr, @sizeOf(linux.BPF.MapElemAttr)));
}

const testing = std.testing;

fn reuseportSocket() !i32 {
    const fd = sockets.open(linux.AF.INET, linux.SOCK.DGRAM);
    try testing.expect(fd >= 0);
    try testing.expectEqual(@as(i32, 0), sockets.setOptionInt(fd, linux.SOL.SOCKET, linux.SO.REUSEPORT, 1));
    var address = sockets.loopbackAddress(0);
    try testing.expectEqual(@as(i32, 0), sockets.bind(fd, &address, @sizeOf(linux.sockaddr.in)));
    return fd;
}

test "bpf: classic CPU program attaches to and detaches from a SO_REUSEPORT socket" {
    const fd = try reuseportSocket();
    defer _ = sockets.close(fd);
    try testing.expectEqual(@as(i32, 0), attachCbpfCpu(fd, 2));
    try testing.expectEqual(@as(i32, 0), detach(fd));
    try testing.expectEqual(errno.negative(.INVAL), attachCbpfCpu(fd, 0));
    const return_zero = [_]SockFilter{.{ .code = BPF_RET | BPF_K, .jt = 0, .jf = 0, .k = 0 }};
    try testing.expectEqual(@as(i32, 0), attachCbpf(fd, @ptrCast(@constCast(&return_zero)), 1));
    try testing.expectEqual(errno.negative(.INVAL), attachCbpf(fd, @ptrCast(@constCast(&return_zero)), 0));
}

test "bpf: a retired listener hands over its queue and takes no new connection" {
    const fd = sockets.open(linux.AF.INET, linux.SOCK.STREAM);
    try testing.expect(fd >= 0);
    var address = sockets.loopbackAddress(0);
    try testing.expectEqual(@as(i32, 0), sockets.bind(fd, &address, @sizeOf(linux.sockaddr.in)));
    try testing.expectEqual(@as(i32, 0), sockets.listen(fd, 16));
    try testing.expectEqual(@as(i32, 16), sockets.socketAddress(fd, &address, .getsockname));
    // Connected before: taken. The SYN filter itself: a connect to a refusing listener stays pending.
    const before = sockets.open(linux.AF.INET, linux.SOCK.STREAM);
    defer _ = sockets.close(before);
    _ = sockets.connect(before, &address, @sizeOf(linux.sockaddr.in));
    try sockets.waitReady(before, linux.POLL.OUT);
    var accepted: [4]i32 = undefined;
    try testing.expectEqual(@as(i32, 1), retireListener(fd, &accepted, accepted.len));
    defer _ = sockets.close(accepted[0]);
    try testing.expectEqual(errno.negative(.BADF), sockets.close(fd)); // closed by the retire

    const refusing = sockets.open(linux.AF.INET, linux.SOCK.STREAM);
    try testing.expect(refusing >= 0);
    defer _ = sockets.close(refusing);
    var second = sockets.loopbackAddress(0);
    try testing.expectEqual(@as(i32, 0), sockets.bind(refusing, &second, @sizeOf(linux.sockaddr.in)));
    try testing.expectEqual(@as(i32, 0), sockets.listen(refusing, 16));
    try testing.expectEqual(@as(i32, 16), sockets.socketAddress(refusing, &second, .getsockname));
    try testing.expectEqual(@as(i32, 0), refuseNewConnections(refusing));
    const after = sockets.open(linux.AF.INET, linux.SOCK.STREAM);
    defer _ = sockets.close(after);
    try testing.expectEqual(errno.negative(.INPROGRESS), sockets.connect(after, &second, @sizeOf(linux.sockaddr.in)));
    var ready = [_]linux.pollfd{.{ .fd = after, .events = linux.POLL.OUT, .revents = 0 }};
    try testing.expectEqual(@as(usize, 0), linux.poll(&ready, 1, 50)); // its SYN was dropped
    try testing.expectEqual(errno.negative(.AGAIN), sockets.accept(refusing, null));
}

test "bpf: eBPF load, map create/update/lookup, or EPERM without privileges" {
    // r0 = 0; exit — a valid BPF_PROG_TYPE_SK_REUSEPORT program.
    const instructions = [_]u64{ 0x00000000_000000b7, 0x00000000_00000095 };
    var log: [4096]u8 = undefined;
    const sk_reuseport = @backingInt(linux.BPF.ProgType.sk_reuseport);
    const program_fd = progLoad(sk_reuseport, @ptrCast(@constCast(&instructions)), 2, &log, log.len);
    if (program_fd == errno.negative(.PERM)) return error.SkipZigTest;
    try testing.expect(program_fd >= 0);
    defer _ = sockets.close(program_fd);
    const fd = try reuseportSocket();
    defer _ = sockets.close(fd);
    try testing.expectEqual(@as(i32, 0), attachEbpf(fd, program_fd));

    const array_map = @backingInt(linux.BPF.MapType.array);
    const map_fd = mapCreate(array_map, 4, 8, 4);
    try testing.expect(map_fd >= 0);
    defer _ = sockets.close(map_fd);
    var key: u32 = 1;
    var value: u64 = 42;
    try testing.expectEqual(@as(i32, 0), mapUpdate(map_fd, @ptrCast(&key), @ptrCast(&value), 0));
    value = 0;
    try testing.expectEqual(@as(i32, 0), mapLookup(map_fd, @ptrCast(&key), @ptrCast(&value)));
    try testing.expectEqual(@as(u64, 42), value);
}

/// Maps an ARRAY map created with BPF_F_MMAPABLE, shared: plain stores from JS then update what
/// the program reads, with no syscall. Returns null on failure.
pub fn mapMmap(map_fd: i32, bytes: u32) ?*anyopaque {
    const address = linux.mmap(null, bytes, .{ .READ = true, .WRITE = true }, .{ .TYPE = .SHARED }, map_fd, 0);
    if (linux.errno(address) != .SUCCESS) return null;
    return @ptrFromInt(address);
}
