// The one declarative table of the native library's C ABI (zig/src/root.zig).
// Each loader (bun.ts, deno.ts) maps these neutral tags onto its runtime's spelling.
// Rules: every export returns >= 0 or -errno; scalars are 32-bit (Deno's 64-bit
// parameters cost ~15x more per call); long-lived shared memory is allocated natively.

/** i32/u32: 32-bit scalars. buf: a Uint8Array passed zero-copy (may be null).
 * ptr: a native pointer (returned by the library, passed back as is). */
export type Tag = "i32" | "u32" | "buf" | "ptr" | "void";

export interface SymbolSpec {
  readonly args: readonly Tag[];
  readonly ret: Tag;
  /** Deno only: run on the blocking pool and return a Promise (see docs/event-loop.md). */
  readonly nonblocking?: boolean;
  /** Native name when the JS name differs (for a nonblocking twin of a symbol). */
  readonly native?: string;
}

/** Bumped whenever a signature or a shared layout changes; checked at load. */
export const ABI_VERSION = 5;

export const symbols = {
  // ABI check
  rp_abi_version: { args: [], ret: "i32" },
  /** Size in bytes of a shared layout, indexed as LAYOUT's keys: 0 epoll event slot, 1 sockaddr storage,
   * 2 udp slot meta, 3 udp slot header, 4 ring completion, 5 send batch entry, 6 file info. */
  rp_layout_size: { args: ["i32"], ret: "i32" },

  // Sockets (zig/src/sockets.zig). Every fd is created SOCK_NONBLOCK | SOCK_CLOEXEC.
  /** (family AF_*, type SOCK_STREAM|SOCK_DGRAM) -> fd */
  rp_socket: { args: ["i32", "i32"], ret: "i32" },
  /** (fd, level, name, value) */
  rp_setsockopt_int: { args: ["i32", "i32", "i32", "i32"], ret: "i32" },
  /** (fd, level, name, out 4 bytes) -> 0; the int is written to out */
  rp_getsockopt_int: { args: ["i32", "i32", "i32", "buf"], ret: "i32" },
  /** (fd, level, name, bytes, length) */
  rp_setsockopt_bytes: { args: ["i32", "i32", "i32", "buf", "u32"], ret: "i32" },
  /** (fd, level, name, out, capacity) -> length written */
  rp_getsockopt_bytes: { args: ["i32", "i32", "i32", "buf", "u32"], ret: "i32" },
  /** (fd, sockaddr bytes, length) */
  rp_bind: { args: ["i32", "buf", "u32"], ret: "i32" },
  /** (fd, backlog) */
  rp_listen: { args: ["i32", "i32"], ret: "i32" },
  /** (fd, sockaddr bytes, length) -> 0 or -EINPROGRESS */
  rp_connect: { args: ["i32", "buf", "u32"], ret: "i32" },
  /** (fd, out sockaddr storage of 128 bytes) -> address length */
  rp_getsockname: { args: ["i32", "buf"], ret: "i32" },
  /** (fd, out sockaddr storage of 128 bytes) -> address length */
  rp_getpeername: { args: ["i32", "buf"], ret: "i32" },
  /** (listen fd, out sockaddr storage of 128 bytes or null) -> new fd, NONBLOCK|CLOEXEC */
  rp_accept: { args: ["i32", "buf"], ret: "i32" },
  rp_close: { args: ["i32"], ret: "i32" },
  /** (fd, SHUT_RD 0 | SHUT_WR 1 | SHUT_RDWR 2) */
  rp_shutdown: { args: ["i32", "i32"], ret: "i32" },

  // Plain I/O (zig/src/io.zig). EINTR is retried inside; EAGAIN comes back as -11.
  /** (fd, buffer, offset, length) -> bytes read, 0 at EOF */
  rp_read: { args: ["i32", "buf", "u32", "u32"], ret: "i32" },
  /** (fd, buffer, offset, length) -> bytes written */
  rp_write: { args: ["i32", "buf", "u32", "u32"], ret: "i32" },
  /** (socket fd, buffer, offset, length) -> bytes received, 0 at EOF; read() without the VFS layers */
  rp_recv: { args: ["i32", "buf", "u32", "u32"], ret: "i32" },
  /** (socket fd, buffer, offset, length) -> bytes sent; MSG_NOSIGNAL (EPIPE instead of SIGPIPE) */
  rp_send: { args: ["i32", "buf", "u32", "u32"], ret: "i32" },
  /** (buffer, entries, count) -> count; entries are i32 {fd, offset, length, result}: a send() of
   * buffer[offset, offset + length) each, its result (bytes or -errno) written back. */
  rp_send_batch: { args: ["buf", "buf", "u32"], ret: "i32" },
  /** (fd, a, a length, b, b length) -> bytes written; writev of two buffers (head + body). */
  rp_writev2: { args: ["i32", "buf", "u32", "buf", "u32"], ret: "i32" },
  /** (fd, a, a capacity, b, b capacity) -> bytes read; readv into two buffers. */
  rp_readv2: { args: ["i32", "buf", "u32", "buf", "u32"], ret: "i32" },
  /** (fd, iovec array {u64 base, u64 len}[], count) -> bytes written; generic writev */
  rp_writev: { args: ["i32", "buf", "u32"], ret: "i32" },
  // Files (zig/src/files.zig)
  /** (dir fd or -1, path, path length, out file info) -> fd; read-only, beneath dir (openat2 RESOLVE_BENEATH)
   * when dir >= 0; a regular file only (EISDIR for a directory), EXDEV for a path that leaves dir */
  rp_file_open: { args: ["i32", "buf", "u32", "buf"], ret: "i32" },
  /** (path, path length) -> an O_PATH fd of a directory, for rp_file_open */
  rp_dir_open: { args: ["buf", "u32"], ret: "i32" },
  /** (socket, file, offset high 32 bits, offset low 32 bits, count) -> bytes sent (0 at the end); sendfile(2) */
  rp_sendfile: { args: ["i32", "i32", "u32", "u32", "u32"], ret: "i32" },
  /** (file, buffer, length, offset high 32 bits, offset low 32 bits) -> bytes read (0 at the end); pread(2) */
  rp_pread: { args: ["i32", "buf", "u32", "u32", "u32"], ret: "i32" },
  /** (buffer, length, mask as a little-endian u32, phase 0..3) -> 0; XORs a WebSocket payload in place */
  rp_ws_unmask: { args: ["buf", "u32", "u32", "u32"], ret: "i32" },
  /** (out 8 bytes: two i32 fds [read, write]) -> 0; O_CLOEXEC, both ends nonblocking */
  rp_pipe: { args: ["buf"], ret: "i32" },
  /** (fd) -> a new fd for the same file, O_CLOEXEC */
  rp_dup: { args: ["i32"], ret: "i32" },
  /** (fd) -> 0; sets O_NONBLOCK and FD_CLOEXEC on an fd we did not open (systemd's sockets) */
  rp_adopt: { args: ["i32"], ret: "i32" },
  /** (fd, timeout ms, < 0 for ever) -> revents > 0, or 0 on timeout; poll() for input, then reads what is there */
  rp_wait_input: { args: ["i32", "i32"], ret: "i32" },
  /** Deno: the same call on the blocking pool (returns a Promise); how Deno waits for a wake. */
  rp_wait_input_async: { args: ["i32", "i32"], ret: "i32", nonblocking: true, native: "rp_wait_input" },
  /** (initial value, flags EFD_*) -> fd; always EFD_CLOEXEC */
  rp_eventfd: { args: ["u32", "i32"], ret: "i32" },

  // epoll (zig/src/poller.zig). Events are unpacked natively into 8-byte slots
  // {u32 events, u32 token} so JS never sees the packed x86_64 epoll_event.
  /** () -> epoll fd (EPOLL_CLOEXEC) */
  rp_epoll_create: { args: [], ret: "i32" },
  /** (epfd, op EPOLL_CTL_*, fd, events mask, token) */
  rp_epoll_ctl: { args: ["i32", "i32", "i32", "u32", "u32"], ret: "i32" },

  // Poller: an epoll set + natively allocated event slots + a wake thread.
  // The wake thread poll()s the epoll fd (which does not consume events); when it
  // is readable it writes one byte to the wake pipe and parks until rp_poller_arm.
  /** (max events per wait) -> poller handle >= 0 */
  rp_poller_create: { args: ["u32"], ret: "i32" },
  /** (handle) -> its epoll fd, for rp_epoll_ctl */
  rp_poller_fd: { args: ["i32"], ret: "i32" },
  /** (handle) -> pointer to max_events 8-byte slots {u32 events, u32 token} */
  rp_poller_events: { args: ["i32"], ret: "ptr" },
  /** (handle, timeout ms, -1 = forever) -> events written to the slots */
  rp_poller_wait: { args: ["i32", "i32"], ret: "i32" },
  /** (handle) -> read end of the wake pipe; starts the wake thread on first call */
  rp_poller_wake_fd: { args: ["i32"], ret: "i32" },
  /** (handle) -> 0; lets the wake thread watch again after JS drained the events */
  rp_poller_arm: { args: ["i32"], ret: "i32" },
  /** (handle) -> 0; makes a pending rp_poller_wait(-1) return (eventfd in the set) */
  rp_poller_interrupt: { args: ["i32"], ret: "i32" },
  /** (handle) -> 0; stops and joins the wake thread, closes every fd, frees the slots */
  rp_poller_destroy: { args: ["i32"], ret: "i32" },

  // io_uring read path (zig/src/ring.zig): multishot recv into provided buffers, owned by the
  // thread that created the ring (SINGLE_ISSUER + COOP_TASKRUN). Completions are 16-byte slots
  // {u32 token, u32 generation, i32 result, u32 flags}; a buffer id is flags >> 16.
  /** (sq entries, buffer count, buffer bytes, max completions per reap) -> ring handle */
  rp_ring_create: { args: ["u32", "u32", "u32", "u32"], ret: "i32" },
  /** (handle) -> an eventfd the kernel signals when work for a reap arrives (the runtime watches it) */
  rp_ring_fd: { args: ["i32"], ret: "i32" },
  /** (handle) -> pointer to buffer count * buffer bytes */
  rp_ring_buffers: { args: ["i32"], ret: "ptr" },
  /** (handle) -> pointer to the completion slots */
  rp_ring_completions: { args: ["i32"], ret: "ptr" },
  /** (handle, socket, token, generation) -> 0; queues a multishot recv */
  rp_ring_recv: { args: ["i32", "i32", "u32", "u32"], ret: "i32" },
  /** (handle, fd, token) -> 0; queues a multishot poll for readability */
  rp_ring_poll: { args: ["i32", "i32", "u32"], ret: "i32" },
  /** (handle, fd, now) -> 0; cancels every request on fd (now != 0: submitted at once) */
  rp_ring_cancel: { args: ["i32", "i32", "u32"], ret: "i32" },
  /** (handle) -> 1 when work came (reap again), 0: idle; empties the eventfd and re-enables its signals */
  rp_ring_idle: { args: ["i32"], ret: "i32" },
  /** (handle) -> completions; recycles the last reap's buffers, submits, runs deferred work */
  rp_ring_reap: { args: ["i32"], ret: "i32" },
  /** (handle, token, period µs) -> 0; queues a one-shot timeout completing with token (-ETIME) */
  rp_ring_tick: { args: ["i32", "u32", "u32"], ret: "i32" },
  /** (handle) -> 1 when a reap has work, 0 when back early (a signal); submits, then sleeps for a completion (only with a tick armed) */
  rp_ring_wait: { args: ["i32"], ret: "i32" },
  /** (handle) -> 0; closes the ring, frees its buffers */
  rp_ring_destroy: { args: ["i32"], ret: "i32" },

  // UDP batches (zig/src/udp_batch.zig): one JS-owned buffer of count slots: 48-byte metas
  // {u32 length, u32 address length, u32 flags, u32 pad, sockaddr 28 bytes, pad 4}, room for the
  // mmsghdrs and iovecs each call rebuilds, then slot_bytes of data per slot. Nothing kept natively.
  /** (fd, batch buffer, slot count, slot bytes, max slots) -> datagrams received (MSG_DONTWAIT) */
  rp_udp_receive: { args: ["i32", "buf", "u32", "u32", "u32"], ret: "i32" },
  /** (fd, batch buffer, slot count, slot bytes, slots to send) -> datagrams sent; meta length/address per slot */
  rp_udp_send: { args: ["i32", "buf", "u32", "u32", "u32"], ret: "i32" },

  // Steering (zig/src/bpf.zig)
  /** (fd, group size n) -> 0; CBPF: A = cpu; A %= n; return A */
  rp_reuseport_attach_cbpf_cpu: { args: ["i32", "u32"], ret: "i32" },
  /** (listening fd, i32 fds out, capacity) -> fds taken from its queue; drops SYNs first, then closes it (bpf.zig) */
  rp_listener_retire: { args: ["i32", "buf", "u32"], ret: "i32" },
  /** (fd, sock_filter bytes, instruction count) */
  rp_reuseport_attach_cbpf: { args: ["i32", "buf", "u32"], ret: "i32" },
  /** (fd, program fd) */
  rp_reuseport_attach_ebpf: { args: ["i32", "i32"], ret: "i32" },
  /** (fd) SO_DETACH_REUSEPORT_BPF */
  rp_reuseport_detach: { args: ["i32"], ret: "i32" },
  /** (program type, instruction bytes, instruction count, log out, log capacity) -> program fd;
   * license "GPL"; on failure the verifier log is NUL-terminated in log out. */
  rp_bpf_prog_load: { args: ["u32", "buf", "u32", "buf", "u32"], ret: "i32" },
  /** (map type, key bytes, value bytes, max entries) -> map fd */
  rp_bpf_map_create: { args: ["u32", "u32", "u32", "u32"], ret: "i32" },
  /** (map type, key bytes, value bytes, max entries, map flags e.g. BPF_F_MMAPABLE) -> map fd */
  rp_bpf_map_create_flags: { args: ["u32", "u32", "u32", "u32", "u32"], ret: "i32" },
  /** (map fd, bytes) -> a shared mapping of a BPF_F_MMAPABLE array map, or null */
  rp_bpf_map_mmap: { args: ["i32", "u32"], ret: "ptr" },
  /** (map fd, key, value, flags BPF_ANY|...) */
  rp_bpf_map_update: { args: ["i32", "buf", "buf", "u32"], ret: "i32" },
  /** (map fd, key, value out) */
  rp_bpf_map_lookup: { args: ["i32", "buf", "buf"], ret: "i32" },

  // Process (zig/src/process.zig)
  /** (out 16 bytes: u64 soft, u64 hard) */
  rp_rlimit_nofile_get: { args: ["buf"], ret: "i32" },
  /** (in 16 bytes: u64 soft, u64 hard) */
  rp_rlimit_nofile_set: { args: ["buf"], ret: "i32" },
  /** (cpu) pins the calling thread */
  rp_affinity_set_cpu: { args: ["i32"], ret: "i32" },
  /** (mask bytes, length) sets the calling thread's affinity mask */
  rp_affinity_set: { args: ["buf", "u32"], ret: "i32" },
  /** (out mask bytes, capacity) -> number of CPUs in the calling thread's mask */
  rp_affinity_get: { args: ["buf", "u32"], ret: "i32" },
  /** () -> CPU the calling thread runs on */
  rp_getcpu: { args: [], ret: "i32" },
  /** () -> kernel thread id of the caller */
  rp_gettid: { args: [], ret: "i32" },
  /** (signal) prctl(PR_SET_PDEATHSIG) */
  rp_set_pdeathsig: { args: ["i32"], ret: "i32" },

  // Cluster (zig/src/shm.zig)
  /** (NUL-terminated path, path length, bytes, error out 4 bytes) -> address of a MAP_SHARED
   * mapping of the file (created 0600, grown to bytes), or null with -errno in error out. */
  rp_shm_map: { args: ["buf", "u32", "u32", "buf"], ret: "ptr" },
  /** (address, bytes) */
  rp_shm_unmap: { args: ["ptr", "u32"], ret: "i32" },
  /** (pid, fd in that process) -> a copy of the fd here (pidfd_getfd) */
  rp_pidfd_getfd: { args: ["i32", "i32"], ret: "i32" },
} as const satisfies Record<string, SymbolSpec>;

export type SymbolName = keyof typeof symbols;

/**
 * Sizes of every struct JS and the library share, in rp_layout_size's order (the loader compares each
 * at load; the field order of each is asserted next to the Zig struct).
 */
export const LAYOUT = {
  /** {u32 events, u32 token} (zig/src/poller.zig Slot). */
  epollEventSlotBytes: 8,
  sockaddrStorageBytes: 128,
  udpSlotMetaBytes: 48,
  /** Per UDP batch slot before the data: meta, mmsghdr and iovec. */
  udpSlotHeaderBytes: 128,
  /** {u32 token, u32 generation, i32 result, u32 flags} (zig/src/ring.zig Completion). */
  ringCompletionBytes: 16,
  /** {i32 fd, i32 offset, i32 length, i32 result} (zig/src/io.zig SendEntry). */
  sendEntryBytes: 16,
  /** {u32 size lo, hi, mtime s lo, hi, mtime ns, mode, inode lo, hi} (zig/src/files.zig FileInfo). */
  fileInfoBytes: 32,
} as const;
