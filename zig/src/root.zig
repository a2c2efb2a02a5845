//! The C ABI of libreuseport: the only file with `export fn`, one per symbol in
//! src/ffi/symbols.ts. Every export returns >= 0 or -errno (pointers: null on a bad handle).
//! Scalars are 32-bit; "buf" arguments are nullable byte pointers owned by JS.

const std = @import("std");
const linux = std.os.linux;
const sockets = @import("sockets.zig");
const io = @import("io.zig");
const poller = @import("poller.zig");
const ring = @import("ring.zig");
const udp_batch = @import("udp_batch.zig");
const bpf = @import("bpf.zig");
const process = @import("process.zig");
const shm = @import("shm.zig");
const files = @import("files.zig");
const ws = @import("ws.zig");

/// Bumped whenever a signature or a shared layout changes (ABI_VERSION in symbols.ts).
pub const abi_version = 5;

/// The shared layouts, indexed as rp_layout_size's argument (LAYOUT in symbols.ts).
pub const layout_sizes = [_]i32{
    @sizeOf(poller.Slot), // 0: epoll event slot {u32 events, u32 token}
    sockets.sockaddr_storage_bytes, // 1: sockaddr storage
    @sizeOf(udp_batch.Meta), // 2: udp slot meta
    udp_batch.slot_header_bytes, // 3: udp slot meta + mmsghdr + iovec
    @sizeOf(ring.Completion), // 4: ring completion {u32 token, u32 generation, i32 result, u32 flags}
    @sizeOf(io.SendEntry), // 5: send batch entry {i32 fd, i32 offset, i32 length, i32 result}
    @sizeOf(files.FileInfo), // 6: file info {size, mtime s (u32 lo, hi each), mtime ns, mode, inode lo, hi}
};

/// No per-thread alternate signal stack: by default std.Thread gives each new thread a
/// 256 KiB threadlocal one for stack traces, which would make the library carry a 256 KiB
/// TLS segment that glibc allocates dynamically in every thread that touches it.
pub const std_options: std.Options = .{ .signal_stack_size = null };

/// A failed assertion or safety check prints one line and aborts: the supervisor restarts the
/// worker. Zig's default handler would pull stack-trace machinery (and newer glibc symbols
/// such as arc4random_buf) into the library for a report the runtime's own crash handler
/// gives anyway.
pub const panic = std.debug.FullPanic(panicAbort);

fn panicAbort(message: []const u8, first_trace_address: ?usize) noreturn {
    @branchHint(.cold);
    _ = first_trace_address;
    const prefix = "reuseport: native panic: ";
    _ = linux.write(2, prefix, prefix.len);
    _ = linux.write(2, message.ptr, message.len);
    _ = linux.write(2, "\n", 1);
    _ = linux.tkill(linux.gettid(), .ABRT);
    @trap(); // Only reached if a SIGABRT handler returned.
}

comptime {
    std.debug.assert(layout_sizes[0] == 8);
    std.debug.assert(layout_sizes[1] == 128);
    std.debug.assert(layout_sizes[2] == 48);
    std.debug.assert(layout_sizes[3] == 128);
    std.debug.assert(layout_sizes[4] == 16);
    std.debug.assert(layout_sizes[5] == 16);
    std.debug.assert(layout_sizes[6] == 32);
    std.debug.assert(@sizeOf(linux.sockaddr.storage) == sockets.sockaddr_storage_bytes);
}

// ABI check

export fn rp_abi_version() i32 {
    return abi_version;
}

export fn rp_layout_size(layout: i32) i32 {
    if (layout < 0 or layout >= layout_sizes.len) return -@as(i32, @backingInt(linux.E.INVAL));
    return layout_sizes[@intCast(layout)];
}

// Sockets (sockets.zig)

export fn rp_socket(family: i32, socket_type: i32) i32 {
    return sockets.open(family, socket_type);
}
export fn rp_setsockopt_int(fd: i32, level: i32, name: i32, value: i32) i32 {
    return sockets.setOptionInt(fd, level, name, value);
}
export fn rp_getsockopt_int(fd: i32, level: i32, name: i32, out: ?[*]u8) i32 {
    return sockets.getOptionInt(fd, level, name, out);
}
export fn rp_setsockopt_bytes(fd: i32, level: i32, name: i32, bytes: ?[*]u8, length: u32) i32 {
    return sockets.setOptionBytes(fd, level, name, bytes, length);
}
export fn rp_getsockopt_bytes(fd: i32, level: i32, name: i32, out: ?[*]u8, capacity: u32) i32 {
    return sockets.getOptionBytes(fd, level, name, out, capacity);
}
export fn rp_bind(fd: i32, address: ?[*]u8, length: u32) i32 {
    return sockets.bind(fd, address, length);
}
export fn rp_listen(fd: i32, backlog: i32) i32 {
    return sockets.listen(fd, backlog);
}
export fn rp_connect(fd: i32, address: ?[*]u8, length: u32) i32 {
    return sockets.connect(fd, address, length);
}
export fn rp_getsockname(fd: i32, out: ?[*]u8) i32 {
    return sockets.socketAddress(fd, out, .getsockname);
}
export fn rp_getpeername(fd: i32, out: ?[*]u8) i32 {
    return sockets.socketAddress(fd, out, .getpeername);
}
export fn rp_accept(fd: i32, out: ?[*]u8) i32 {
    return sockets.accept(fd, out);
}
export fn rp_close(fd: i32) i32 {
    return sockets.close(fd);
}
export fn rp_shutdown(fd: i32, how: i32) i32 {
    return sockets.shutdown(fd, how);
}

// Plain I/O (io.zig)

export fn rp_read(fd: i32, buffer: ?[*]u8, offset: u32, length: u32) i32 {
    return io.read(fd, buffer, offset, length);
}
export fn rp_write(fd: i32, buffer: ?[*]u8, offset: u32, length: u32) i32 {
    return io.write(fd, buffer, offset, length);
}
export fn rp_recv(fd: i32, buffer: ?[*]u8, offset: u32, length: u32) i32 {
    return io.recv(fd, buffer, offset, length);
}
export fn rp_send(fd: i32, buffer: ?[*]u8, offset: u32, length: u32) i32 {
    return io.send(fd, buffer, offset, length);
}
export fn rp_send_batch(buffer: ?[*]u8, entries: ?[*]u8, count: u32) i32 {
    return io.sendBatch(buffer, entries, count);
}
export fn rp_writev2(fd: i32, a: ?[*]u8, a_length: u32, b: ?[*]u8, b_length: u32) i32 {
    return io.writev2(fd, a, a_length, b, b_length);
}
export fn rp_readv2(fd: i32, a: ?[*]u8, a_capacity: u32, b: ?[*]u8, b_capacity: u32) i32 {
    return io.readv2(fd, a, a_capacity, b, b_capacity);
}
export fn rp_writev(fd: i32, iovecs: ?[*]u8, count: u32) i32 {
    return io.writev(fd, iovecs, count);
}
export fn rp_file_open(dir: i32, path: ?[*]u8, path_length: u32, info: ?[*]u8) i32 {
    return files.open(dir, path, path_length, info);
}
export fn rp_dir_open(path: ?[*]u8, path_length: u32) i32 {
    return files.openDirectory(path, path_length);
}
export fn rp_sendfile(socket: i32, file: i32, offset_hi: u32, offset_lo: u32, count: u32) i32 {
    return files.send(socket, file, offset_hi, offset_lo, count);
}
export fn rp_pread(file: i32, buffer: ?[*]u8, length: u32, offset_hi: u32, offset_lo: u32) i32 {
    return files.read(file, buffer, length, offset_hi, offset_lo);
}
export fn rp_ws_unmask(buffer: ?[*]u8, length: u32, key: u32, phase: u32) i32 {
    return ws.unmask(buffer, length, key, phase);
}
export fn rp_pipe(out: ?[*]u8) i32 {
    return io.pipe(out);
}
export fn rp_dup(fd: i32) i32 {
    return io.dup(fd);
}
export fn rp_adopt(fd: i32) i32 {
    return io.adopt(fd);
}
export fn rp_wait_input(fd: i32, timeout_ms: i32) i32 {
    return io.waitInput(fd, timeout_ms);
}
export fn rp_eventfd(initial_value: u32, flags: i32) i32 {
    return io.eventfd(initial_value, flags);
}

// epoll and the Poller (poller.zig)

export fn rp_epoll_create() i32 {
    return poller.epollCreate();
}
export fn rp_epoll_ctl(epoll_fd: i32, operation: i32, fd: i32, events: u32, token: u32) i32 {
    return poller.epollControl(epoll_fd, operation, fd, events, token);
}
export fn rp_poller_create(events_max: u32) i32 {
    return poller.create(events_max);
}
export fn rp_poller_fd(handle: i32) i32 {
    return poller.epollFd(handle);
}
export fn rp_poller_events(handle: i32) ?*anyopaque {
    return poller.eventSlots(handle);
}
export fn rp_poller_wait(handle: i32, timeout_ms: i32) i32 {
    return poller.wait(handle, timeout_ms);
}
export fn rp_poller_wake_fd(handle: i32) i32 {
    return poller.wakeFd(handle);
}
export fn rp_poller_arm(handle: i32) i32 {
    return poller.arm(handle);
}
export fn rp_poller_interrupt(handle: i32) i32 {
    return poller.interrupt(handle);
}
export fn rp_poller_destroy(handle: i32) i32 {
    return poller.destroy(handle);
}

// The io_uring read path (ring.zig)

export fn rp_ring_create(entries: u32, buffer_count: u32, buffer_bytes: u32, completions_max: u32) i32 {
    return ring.create(entries, buffer_count, buffer_bytes, completions_max);
}
export fn rp_ring_fd(handle: i32) i32 {
    return ring.fd(handle);
}
export fn rp_ring_buffers(handle: i32) ?*anyopaque {
    return ring.buffers(handle);
}
export fn rp_ring_completions(handle: i32) ?*anyopaque {
    return ring.completions(handle);
}
export fn rp_ring_recv(handle: i32, fd: i32, token: u32, generation: u32) i32 {
    return ring.recv(handle, fd, token, generation);
}
export fn rp_ring_poll(handle: i32, fd: i32, token: u32) i32 {
    return ring.poll(handle, fd, token);
}
export fn rp_ring_cancel(handle: i32, fd: i32, now: u32) i32 {
    return ring.cancel(handle, fd, now);
}
export fn rp_ring_idle(handle: i32) i32 {
    return ring.idle(handle);
}
export fn rp_ring_reap(handle: i32) i32 {
    return ring.reap(handle);
}
export fn rp_ring_tick(handle: i32, token: u32, period_us: u32) i32 {
    return ring.tick(handle, token, period_us);
}
export fn rp_ring_wait(handle: i32) i32 {
    return ring.wait(handle);
}
export fn rp_ring_destroy(handle: i32) i32 {
    return ring.destroy(handle);
}

// UDP batches (udp_batch.zig)

export fn rp_udp_receive(fd: i32, buffer: ?[*]u8, slot_count: u32, slot_bytes: u32, slots_max: u32) i32 {
    return udp_batch.receive(fd, buffer, slot_count, slot_bytes, slots_max);
}
export fn rp_udp_send(fd: i32, buffer: ?[*]u8, slot_count: u32, slot_bytes: u32, slots: u32) i32 {
    return udp_batch.send(fd, buffer, slot_count, slot_bytes, slots);
}

// Steering (bpf.zig)

export fn rp_reuseport_attach_cbpf_cpu(fd: i32, group_size: u32) i32 {
    return bpf.attachCbpfCpu(fd, group_size);
}
export fn rp_listener_retire(fd: i32, accepted: ?[*]i32, capacity: u32) i32 {
    return bpf.retireListener(fd, accepted, capacity);
}
export fn rp_reuseport_attach_cbpf(fd: i32, instructions: ?[*]u8, count: u32) i32 {
    return bpf.attachCbpf(fd, instructions, count);
}
export fn rp_reuseport_attach_ebpf(fd: i32, program_fd: i32) i32 {
    return bpf.attachEbpf(fd, program_fd);
}
export fn rp_reuseport_detach(fd: i32) i32 {
    return bpf.detach(fd);
}
export fn rp_bpf_prog_load(program_type: u32, instructions: ?[*]u8, count: u32, log: ?[*]u8, log_capacity: u32) i32 {
    return bpf.progLoad(program_type, instructions, count, log, log_capacity);
}
export fn rp_bpf_map_create(map_type: u32, key_bytes: u32, value_bytes: u32, entries_max: u32) i32 {
    return bpf.mapCreate(map_type, key_bytes, value_bytes, entries_max);
}
export fn rp_bpf_map_update(map_fd: i32, key: ?[*]u8, value: ?[*]u8, flags: u32) i32 {
    return bpf.mapUpdate(map_fd, key, value, flags);
}
export fn rp_bpf_map_lookup(map_fd: i32, key: ?[*]u8, value_out: ?[*]u8) i32 {
    return bpf.mapLookup(map_fd, key, value_out);
}

// Process (process.zig)

export fn rp_rlimit_nofile_get(out: ?[*]u8) i32 {
    return process.rlimitNofileGet(out);
}
export fn rp_rlimit_nofile_set(in: ?[*]u8) i32 {
    return process.rlimitNofileSet(in);
}
export fn rp_affinity_set_cpu(cpu: i32) i32 {
    return process.affinitySetCpu(cpu);
}
export fn rp_affinity_set(mask: ?[*]u8, length: u32) i32 {
    return process.affinitySet(mask, length);
}
export fn rp_affinity_get(out: ?[*]u8, capacity: u32) i32 {
    return process.affinityGet(out, capacity);
}
export fn rp_getcpu() i32 {
    return process.getcpu();
}
export fn rp_gettid() i32 {
    return process.gettid();
}
export fn rp_set_pdeathsig(signal: i32) i32 {
    return process.setPdeathsig(signal);
}

test {
    _ = @import("errno.zig");
    _ = @import("handles.zig");
    _ = @import("tokens.zig");
    _ = sockets;
    _ = io;
    _ = poller;
    _ = ring;
    _ = udp_batch;
    _ = bpf;
    _ = process;
    _ = files;
    _ = ws;
}

test "root: ABI version and layout sizes match symbols.ts" {
    try std.testing.expectEqual(@as(i32, 5), rp_abi_version());
    try std.testing.expectEqual(@as(i32, 8), rp_layout_size(0));
    try std.testing.expectEqual(@as(i32, 128), rp_layout_size(1));
    try std.testing.expectEqual(@as(i32, 48), rp_layout_size(2));
    try std.testing.expectEqual(@as(i32, 128), rp_layout_size(3));
    try std.testing.expectEqual(@as(i32, 16), rp_layout_size(4));
    try std.testing.expectEqual(@as(i32, 16), rp_layout_size(5));
    try std.testing.expectEqual(@as(i32, 32), rp_layout_size(6));
    try std.testing.expectEqual(@as(i32, -22), rp_layout_size(7));
}

// Shared memory and fd sharing for the cluster (src/shm.zig)

export fn rp_shm_map(path: ?[*]u8, path_length: u32, bytes: u32, error_out: ?[*]u8) ?*anyopaque {
    return shm.map(path, path_length, bytes, error_out);
}

export fn rp_shm_unmap(address: ?*anyopaque, bytes: u32) i32 {
    return shm.unmap(address, bytes);
}

export fn rp_pidfd_getfd(pid: i32, fd: i32) i32 {
    return shm.pidfdGetfd(pid, fd);
}

export fn rp_bpf_map_create_flags(map_type: u32, key_bytes: u32, value_bytes: u32, entries_max: u32, flags: u32) i32 {
    return bpf.mapCreateFlags(map_type, key_bytes, value_bytes, entries_max, flags);
}

export fn rp_bpf_map_mmap(map_fd: i32, bytes: u32) ?*anyopaque {
    return bpf.mapMmap(map_fd, bytes);
}
