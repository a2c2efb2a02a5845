//! Builds libreuseport.so, the C ABI under src/ffi/symbols.ts.
//! Layout of this file: constants (supported Zig version, targets, sources), then helpers
//! that create artifacts, then build(), which wires every user-visible step at its end.
//!
//!   zig build                 host library -> zig-out/lib/libreuseport.so (ReleaseSafe)
//!   zig build -Dtarget=T      one target   -> zig-out/lib/libreuseport.so
//!   zig build cross           SUPPORTED_TARGETS -> zig-out/lib/<target>/libreuseport.so
//!   zig build test            Zig unit tests on the host (loopback, port 0)
//!
//! Why the library is linked by a `zig build-lib` command rather than b.addLibrary: it must
//! carry DF_1_NODELETE (`-z nodelete`) so that a runtime's dlclose (Deno closes the library
//! when a Worker ends) cannot unmap code a wake thread is still running. Zig 0.17.0's
//! Step.Compile exposes only the -z flags notext, norelro, lazy, defs and page sizes
//! (lib/compiler/Maker/Step/Compile.zig), so we pass the flag to the CLI ourselves.
//! tools/check_library.zig then verifies NODELETE, the export list and the reserved tokens
//! (src/tokens.zig against src/net/tokens.ts) before install.

const std = @import("std");
const builtin = @import("builtin");

const zig_version_supported = "0.17.0";

pub const SUPPORTED_TARGETS = [_][]const u8{
    "x86_64-linux-gnu",
    "x86_64-linux-musl",
    "aarch64-linux-gnu",
    "aarch64-linux-musl",
};

/// The contract the exports are checked against.
const symbols_ts_path = "../src/ffi/symbols.ts";
/// The TypeScript copy of src/tokens.zig, checked against it.
const tokens_ts_path = "../src/net/tokens.ts";
const library_file_name = "libreuseport.so";

comptime {
    const supported = std.SemanticVersion.parse(zig_version_supported) catch unreachable;
    if (builtin.zig_version.order(supported) != .eq) {
        @compileError("reuseport is built and tested with Zig " ++ zig_version_supported ++
            ", not " ++ builtin.zig_version_string);
    }
}

/// Links src/root.zig into a shared library with `-z nodelete`. libc is linked because the
/// poller's wake thread must be a real pthread inside Bun's and Deno's processes (Zig's
/// libc-free threads need TLS set up by Zig's own start code, which a .so never runs).
fn linkLibrary(b: *std.Build, target: std.Build.ResolvedTarget, optimize: std.builtin.Optimize) std.Build.LazyPath {
    const link = b.addSystemCommand(&.{ b.graph.zig_exe, "build-lib" });
    link.setName(b.fmt("link {s} ({s})", .{ library_file_name, describe(b, target) }));
    link.addArgs(&.{ "-dynamic", "-lc", "-z", "nodelete", "-fPIC" });
    link.addArgs(&.{ "-O", @tagName(optimize), "--name", "reuseport" });
    if (!target.query.isNative()) {
        const triple = target.query.zigTriple(b.allocator) catch @panic("OOM");
        const cpu = target.query.serializeCpuAlloc(b.allocator) catch @panic("OOM");
        link.addArgs(&.{ "-target", triple, "-mcpu", cpu });
    }
    link.addFileArg(b.path("src/root.zig"));
    addSourceInputs(b, link);
    return link.addPrefixedOutputFileArg("-femit-bin=", library_file_name);
}

/// Every .zig file in src/ is an input of the link: it is re-run when any one of them changes (and the
/// configure phase when one is added or removed).
fn addSourceInputs(b: *std.Build, link: *std.Build.Step.Run) void {
    const io = b.graph.io;
    b.dependOnDirectoryMetadata(b.path("src"));
    var dir = b.root.openDir(io, "src", .{ .iterate = true }) catch |err|
        std.debug.panic("cannot open zig/src: {t}", .{err});
    defer dir.close(io);
    var entries = dir.iterate();
    while (entries.next(io) catch |err| std.debug.panic("cannot list zig/src: {t}", .{err})) |entry| {
        if (entry.kind != .file or !std.mem.endsWith(u8, entry.name, ".zig")) continue;
        link.addFileInput(b.path(b.fmt("src/{s}", .{entry.name})));
    }
}

fn describe(b: *std.Build, target: std.Build.ResolvedTarget) []const u8 {
    if (target.query.isNative()) return "native";
    return target.query.zigTriple(b.allocator) catch @panic("OOM");
}

/// Runs the checker over a linked library; the returned path is the verified copy.
fn checkLibrary(b: *std.Build, checker: *std.Build.Step.Compile, library: std.Build.LazyPath) std.Build.LazyPath {
    const check = b.addRunArtifact(checker);
    check.addFileArg(library);
    check.addFileArg(b.path(symbols_ts_path));
    check.addFileArg(b.path(tokens_ts_path));
    return check.addOutputFileArg(library_file_name);
}

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.option(std.builtin.Optimize, "optimize", "Optimization mode (default ReleaseSafe: asserts stay on)") orelse .safe;

    const checker = b.addExecutable(.{
        .name = "check_library",
        .root_module = b.createModule(.{
            .root_source_file = b.path("tools/check_library.zig"),
            .target = b.graph.host,
            .optimize = .debug,
        }),
    });
    checker.root_module.addImport("tokens", b.createModule(.{ .root_source_file = b.path("src/tokens.zig") }));

    const library = checkLibrary(b, checker, linkLibrary(b, target, optimize));
    const install_library = b.addInstallLibFile(library, library_file_name);

    const cross_step = b.step("cross", "Build every SUPPORTED_TARGETS entry into zig-out/lib/<target>/");
    for (SUPPORTED_TARGETS) |triple| {
        const query = std.Target.Query.parse(.{ .arch_os_abi = triple }) catch @panic("bad SUPPORTED_TARGETS entry");
        const cross_library = checkLibrary(b, checker, linkLibrary(b, b.resolveTargetQuery(query), optimize));
        const install_cross = b.addInstallLibFile(cross_library, b.fmt("{s}/{s}", .{ triple, library_file_name }));
        cross_step.dependOn(&install_cross.step);
    }

    const unit_tests = b.addTest(.{
        .root_module = b.createModule(.{
            .root_source_file = b.path("src/root.zig"),
            .target = target,
            .optimize = optimize,
            .link_libc = true,
        }),
    });
    const test_step = b.step("test", "Run the Zig unit tests (loopback sockets, port 0)");
    test_step.dependOn(&b.addRunArtifact(unit_tests).step);

    b.getInstallStep().dependOn(&install_library.step);
}
