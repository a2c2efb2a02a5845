// Deno entry: runs every shared suite under `deno test`.
import "./suites/index.ts";
