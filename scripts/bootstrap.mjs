#!/usr/bin/env node
// Makes a fresh clone runnable: npm devDependencies, the pinned Zig (from PyPI, into .tools/),
// and the native library. Every step checks first, so a second run is a fast no-op.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync, mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ZIG_VERSION = "0.17.0";
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const quiet = process.argv.includes("--quiet");
const log = (message) => quiet || console.error(`[bootstrap] ${message}`);

if (process.platform !== "linux") { // before anything is installed: nothing here works elsewhere
  console.error(`reuseport runs on Linux only (SO_REUSEPORT groups, epoll, BPF); this is ${process.platform}.`);
  process.exit(1);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"], ...options });
  if (result.error) throw new Error(`${command} ${args.join(" ")}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${result.status}`);
}

function npmDependenciesPresent() {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  for (const [name, version] of Object.entries(pkg.devDependencies ?? {})) {
    const manifest = join(root, "node_modules", name, "package.json");
    if (!existsSync(manifest)) return false;
    if (JSON.parse(readFileSync(manifest, "utf8")).version !== version) return false;
  }
  return existsSync(join(root, "node_modules/.bin/bun")) && existsSync(join(root, "node_modules/.bin/deno"));
}

function ensureNpm() {
  if (npmDependenciesPresent()) return;
  log("installing npm devDependencies (bun, deno, tsup, typescript, hono)");
  const lock = existsSync(join(root, "package-lock.json"));
  run("npm", [lock ? "ci" : "install", "--no-audit", "--no-fund", "--loglevel=error"]);
  if (!npmDependenciesPresent()) throw new Error("npm install finished but bun/deno are missing from node_modules/.bin");
}

function zigVersionOf(binary) {
  const result = spawnSync(binary, ["version"], { encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim() : null;
}

/** The pinned zig: one on PATH at the pinned version, else the project-local PyPI copy. */
export function findZig() {
  if (zigVersionOf("zig") === ZIG_VERSION) return "zig";
  const local = join(root, ".tools/zig/ziglang/zig");
  if (existsSync(local) && zigVersionOf(local) === ZIG_VERSION) return local;
  return null;
}

function ensureZig() {
  const found = findZig();
  if (found) return found;
  log(`installing zig ${ZIG_VERSION} from PyPI (ziglang) into .tools/zig`);
  mkdirSync(join(root, ".tools"), { recursive: true });
  run("python3", ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade",
    "--target", join(root, ".tools/zig"), `ziglang==${ZIG_VERSION}`]);
  const installed = findZig();
  if (!installed) throw new Error(`zig ${ZIG_VERSION} is not runnable after pip install`);
  return installed;
}

function newestMtime(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

export const LIBRARY_PATH = join(root, "zig/zig-out/lib/libreuseport.so");

function ensureNative(zig) {
  const sources = Math.max(newestMtime(join(root, "zig/src")), newestMtime(join(root, "zig/build.zig")));
  if (existsSync(LIBRARY_PATH) && statSync(LIBRARY_PATH).mtimeMs >= sources) return;
  log("building the native library (zig build)");
  run(zig, ["build", "-Doptimize=ReleaseSafe"], { cwd: join(root, "zig") });
}

export function bootstrap() {
  ensureNpm();
  ensureNative(ensureZig());
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    bootstrap();
  } catch (error) {
    console.error(`[bootstrap] failed: ${error.message}`);
    process.exit(1);
  }
}
