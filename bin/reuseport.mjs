#!/usr/bin/env node
// Launcher for the `reuseport` command: runs src/cli/main.ts under Bun (default) or Deno
// (REUSEPORT_RUNTIME=deno), forwarding signals so SIGTERM/SIGHUP reach the primary.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const runtime = process.env.REUSEPORT_RUNTIME ?? "bun";
if (runtime !== "bun" && runtime !== "deno") {
  console.error(`reuseport: REUSEPORT_RUNTIME must be "bun" or "deno", got ${JSON.stringify(runtime)}`);
  process.exit(2);
}
const local = join(root, "node_modules/.bin", runtime);
const binary = existsSync(local) ? local : runtime;
const main = join(root, "src/cli/main.ts");
const args = runtime === "bun" ? [main, ...process.argv.slice(2)] : ["run", "-A", main, ...process.argv.slice(2)];
const child = spawn(binary, args, { stdio: "inherit" });
child.on("error", (error) => {
  console.error(`reuseport: cannot start ${runtime} (${error.message}); install it or set REUSEPORT_RUNTIME`);
  process.exit(2);
});
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
