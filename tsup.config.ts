// Bundles the public API into dist/ for consumers that do not take the "bun"/"deno" export
// conditions (bundlers, Node-flavoured tooling). Bun and Deno themselves import src/index.ts.
import { defineConfig } from "tsup";

export default defineConfig({
  entry: { index: "src/index.ts" },
  format: ["esm"],
  target: "es2022",
  platform: "neutral",
  outDir: "dist",
  clean: true,
  // The runtime loaders stay separate chunks: ffi/index.ts imports exactly one of them at load time.
  splitting: true,
  sourcemap: true,
  dts: true,
  external: ["bun:ffi", /^node:/],
});
