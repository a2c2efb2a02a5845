// Which runtime runs the suite, for tests that must spawn a child of the same runtime.
declare const Bun: unknown;
declare const Deno: { execPath(): string };
export const runtimeName: "bun" | "deno" = typeof Bun !== "undefined" ? "bun" : "deno";
