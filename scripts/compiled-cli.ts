// Entry of the standalone `reuseport` binary (bun build --compile; see scripts/compile.mjs).
// Bun only: it embeds the native library with an import attribute that Deno refuses, which is
// why it lives here and not in src/. Workers re-run this same entry inside the binary.
import process from "node:process";
import libraryFile from "../zig/zig-out/lib/libreuseport.so" with { type: "file" };
import { settings } from "../src/config.ts"; // loads no library

process.env[settings.library.name] ||= libraryFile; // set before the library is first loaded
process.env[settings.cliEmbedded.name] = "1"; // main.ts must not also start itself (it is bundled in here)
const { main } = await import("../src/cli/main.ts");
await main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`reuseport: ${error instanceof Error ? error.message : error}`);
  process.exit(2);
});
