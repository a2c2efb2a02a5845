//! Build-time gate for libreuseport.so: checks that the dynamic section carries
//! DF_1_NODELETE, that the exported rp_* functions are exactly the native names in
//! src/ffi/symbols.ts, and that src/net/tokens.ts reserves the tokens of src/tokens.zig, then
//! copies the library to the output path.
//! Usage: check_library <libreuseport.so> <symbols.ts> <tokens.ts> <output .so>

const std = @import("std");
const tokens = @import("tokens");

const library_bytes_max = 64 * 1024 * 1024;
const symbols_ts_bytes_max = 1024 * 1024;
const tokens_ts_bytes_max = 64 * 1024;
const exports_max = 256;

// ELF64 little-endian layouts (every target in SUPPORTED_TARGETS).
const Header = extern struct {
    ident: [16]u8,
    type: u16,
    machine: u16,
    version: u32,
    entry: u64,
    phoff: u64,
    shoff: u64,
    flags: u32,
    ehsize: u16,
    phentsize: u16,
    phnum: u16,
    shentsize: u16,
    shnum: u16,
    shstrndx: u16,
};
const SectionHeader = extern struct {
    name: u32,
    type: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    addralign: u64,
    entsize: u64,
};
const Symbol = extern struct { name: u32, info: u8, other: u8, shndx: u16, value: u64, size: u64 };
const Dynamic = extern struct { tag: i64, value: u64 };

const SHT_DYNAMIC = 6;
const SHT_DYNSYM = 11;
const DT_FLAGS_1 = 0x6fff_fffb;
const DF_1_NODELETE = 0x8;
const STT_FUNC = 2;

pub fn main(init: std.process.Init) !void {
    const arena = init.arena.allocator();
    const io = init.io;
    const args = try init.minimal.args.toSlice(arena);
    if (args.len != 5) return fail("usage: check_library <library.so> <symbols.ts> <tokens.ts> <output.so>", .{});
    const cwd = std.Io.Dir.cwd();
    const library = try cwd.readFileAlloc(io, args[1], arena, .limited(library_bytes_max));
    const symbols_ts = try cwd.readFileAlloc(io, args[2], arena, .limited(symbols_ts_bytes_max));
    const tokens_ts = try cwd.readFileAlloc(io, args[3], arena, .limited(tokens_ts_bytes_max));
    try checkTokens(tokens_ts);

    const sections = try sectionHeaders(library);
    try checkNodelete(library, sections);
    var expected: std.ArrayList([]const u8) = .empty;
    try nativeNames(arena, symbols_ts, &expected);
    var exported: std.ArrayList([]const u8) = .empty;
    try exportedFunctions(arena, library, sections, &exported);
    try compareNames(expected.items, exported.items);
    try cwd.writeFile(io, .{ .sub_path = args[4], .data = library });
}

fn fail(comptime format: []const u8, args: anytype) error{CheckFailed} {
    std.debug.print("check_library: " ++ format ++ "\n", args);
    return error.CheckFailed;
}

fn sectionHeaders(library: []const u8) ![]align(1) const SectionHeader {
    if (library.len < @sizeOf(Header)) return fail("not an ELF file", .{});
    const header = std.mem.bytesAsValue(Header, library[0..@sizeOf(Header)]);
    if (!std.mem.eql(u8, header.ident[0..4], "\x7fELF") or header.ident[4] != 2 or header.ident[5] != 1) {
        return fail("not a little-endian ELF64 file", .{});
    }
    const bytes = @as(usize, header.shnum) * @sizeOf(SectionHeader);
    if (header.shoff + bytes > library.len) return fail("section headers out of bounds", .{});
    return std.mem.bytesAsSlice(SectionHeader, library[header.shoff..][0..bytes]);
}

fn sectionBytes(library: []const u8, section: SectionHeader) ![]const u8 {
    if (section.offset + section.size > library.len) return fail("section out of bounds", .{});
    return library[section.offset..][0..section.size];
}

fn checkNodelete(library: []const u8, sections: []align(1) const SectionHeader) !void {
    for (sections) |section| {
        if (section.type != SHT_DYNAMIC) continue;
        const entries = std.mem.bytesAsSlice(Dynamic, try sectionBytes(library, section));
        for (entries) |entry| {
            if (entry.tag == DT_FLAGS_1 and entry.value & DF_1_NODELETE != 0) return;
        }
    }
    return fail("DT_FLAGS_1 lacks NODELETE: the library could be unloaded under its wake threads", .{});
}

/// The native name of each symbols.ts entry: `native: "..."` when given, else the key.
fn nativeNames(arena: std.mem.Allocator, symbols_ts: []const u8, names: *std.ArrayList([]const u8)) !void {
    var lines = std.mem.splitScalar(u8, symbols_ts, '\n');
    while (lines.next()) |line| {
        const trimmed = std.mem.trimStart(u8, line, " ");
        if (!std.mem.startsWith(u8, trimmed, "rp_")) continue;
        const colon = std.mem.indexOf(u8, trimmed, ": {") orelse continue;
        var name = trimmed[0..colon];
        if (std.mem.indexOf(u8, trimmed, "native: \"")) |start| {
            const rest = trimmed[start + "native: \"".len ..];
            name = rest[0 .. std.mem.indexOfScalar(u8, rest, '"') orelse return fail("bad native: {s}", .{line})];
        }
        if (!contains(names.items, name)) try names.append(arena, name);
    }
    if (names.items.len == 0) return fail("no rp_ symbols found in symbols.ts", .{});
}

fn exportedFunctions(
    arena: std.mem.Allocator,
    library: []const u8,
    sections: []align(1) const SectionHeader,
    names: *std.ArrayList([]const u8),
) !void {
    for (sections) |section| {
        if (section.type != SHT_DYNSYM) continue;
        if (section.link >= sections.len) return fail("dynsym has no string table", .{});
        const strings = try sectionBytes(library, sections[section.link]);
        const symbols = std.mem.bytesAsSlice(Symbol, try sectionBytes(library, section));
        for (symbols) |symbol| {
            if (symbol.shndx == 0 or symbol.info & 0xf != STT_FUNC) continue;
            if (symbol.name >= strings.len) return fail("symbol name out of bounds", .{});
            const name = std.mem.sliceTo(strings[symbol.name..], 0);
            if (!std.mem.startsWith(u8, name, "rp_")) continue;
            if (names.items.len == exports_max) return fail("more than {d} exports", .{exports_max});
            try names.append(arena, name);
        }
    }
}

fn compareNames(expected: []const []const u8, exported: []const []const u8) !void {
    var mismatches: usize = 0;
    for (expected) |name| if (!contains(exported, name)) {
        std.debug.print("check_library: missing export {s} (listed in symbols.ts)\n", .{name});
        mismatches += 1;
    };
    for (exported) |name| if (!contains(expected, name)) {
        std.debug.print("check_library: extra export {s} (not in symbols.ts)\n", .{name});
        mismatches += 1;
    };
    if (mismatches != 0) return fail("{d} export mismatches", .{mismatches});
}

/// Every `pub const` of tokens.zig must appear in tokens.ts as `export const NAME = value;` (NAME its
/// upper-case spelling) with the same value, and tokens.ts may export no other constant.
fn checkTokens(tokens_ts: []const u8) !void {
    const names = comptime std.meta.declarations(tokens);
    var mismatches: usize = 0;
    inline for (names) |declared| {
        const name = comptime upperCase(declared);
        const expected: u32 = @field(tokens, declared);
        if (try exportedValue(tokens_ts, name)) |value| {
            if (value != expected) {
                std.debug.print("check_library: {s} is 0x{X} in tokens.ts, 0x{X} in tokens.zig\n", .{ name, value, expected });
                mismatches += 1;
            }
        } else {
            std.debug.print("check_library: {s} (tokens.zig) is missing from tokens.ts\n", .{name});
            mismatches += 1;
        }
    }
    var lines = std.mem.splitScalar(u8, tokens_ts, '\n');
    while (lines.next()) |line| {
        const declared = exportName(line) orelse continue;
        var known = false;
        inline for (names) |zig_name| known = known or std.mem.eql(u8, declared, comptime upperCase(zig_name));
        if (!known) {
            std.debug.print("check_library: {s} (tokens.ts) is not in tokens.zig\n", .{declared});
            mismatches += 1;
        }
    }
    if (mismatches != 0) return fail("{d} reserved token mismatches", .{mismatches});
}

fn upperCase(comptime name: []const u8) []const u8 {
    comptime var upper: [name.len]u8 = undefined;
    inline for (name, 0..) |c, i| upper[i] = comptime std.ascii.toUpper(c);
    const final = upper;
    return &final;
}

/// NAME of a line `export const NAME = ...`, else null.
fn exportName(line: []const u8) ?[]const u8 {
    const prefix = "export const ";
    if (!std.mem.startsWith(u8, line, prefix)) return null;
    const rest = line[prefix.len..];
    const end = std.mem.indexOfAny(u8, rest, " :=") orelse return null;
    return rest[0..end];
}

/// The value of `export const name = <integer>;` in tokens.ts, or null when no line declares name.
fn exportedValue(tokens_ts: []const u8, name: []const u8) !?u32 {
    var lines = std.mem.splitScalar(u8, tokens_ts, '\n');
    while (lines.next()) |line| {
        const declared = exportName(line) orelse continue;
        if (!std.mem.eql(u8, declared, name)) continue;
        const equals = std.mem.indexOfScalar(u8, line, '=') orelse return fail("no value: {s}", .{line});
        const end = std.mem.indexOfScalarPos(u8, line, equals, ';') orelse return fail("no semicolon: {s}", .{line});
        const text = std.mem.trim(u8, line[equals + 1 .. end], " ");
        return std.fmt.parseInt(u32, text, 0) catch fail("not a u32 literal: {s}", .{line});
    }
    return null;
}

fn contains(names: []const []const u8, name: []const u8) bool {
    for (names) |candidate| if (std.mem.eql(u8, candidate, name)) return true;
    return false;
}
