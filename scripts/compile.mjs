#!/usr/bin/env node
// Builds the standalone `reuseport` CLI for this machine: dist/reuseport (Bun's --compile, with the
// native library embedded). Usage: npm run compile [-- --outfile PATH]
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bootstrap } from "./bootstrap.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const at = process.argv.indexOf("--outfile");
const outfile = at > 0 ? process.argv[at + 1] : join(root, "dist/reuseport");
bootstrap();
const result = spawnSync(join(root, "node_modules/.bin/bun"), ["build", "--compile", join(root, "scripts/compiled-cli.ts"), "--outfile", outfile], { stdio: "inherit" });
if (result.status !== 0) process.exit(result.status ?? 1);
console.log(`built ${outfile}: run \`${outfile} serve app.ts --workers auto\``);
