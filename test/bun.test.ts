// Bun entry: runs every shared suite under `bun test`.
import "./suites/index.ts";
