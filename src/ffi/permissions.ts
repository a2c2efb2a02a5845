// Deno's permissions, checked up front so that one error names every flag that is missing (Deno's own
// NotCapable names one, from deep inside the library). Bun has no permissions: nothing to check.

/** A Deno permission the process was not granted; `missing` lists the flags to add. */
export class PermissionError extends Error {
  override readonly name = "PermissionError";
  constructor(readonly missing: string[], what: string) {
    super(`reuseport needs ${missing.map((name) => `--allow-${name}`).join(" ")} ${what} (or run with -A)`);
  }
}

/** Loading the library: env (REUSEPORT_*), read (the library file and the libc probe), ffi (dlopen). */
export const LOAD_PERMISSIONS = ["env", "read", "ffi"] as const;
/** A cluster: run (worker processes), sys (uid, CPUs), write (the control directory), net (its unix socket). */
export const CLUSTER_PERMISSIONS = ["run", "sys", "write", "net"] as const;

interface DenoPermissions {
  permissions: { querySync(descriptor: { name: string }): { state: string } };
}

export function requirePermissions(names: readonly string[], what: string): void {
  const deno = (globalThis as { Deno?: DenoPermissions }).Deno;
  if (deno?.permissions === undefined || "Bun" in globalThis) return;
  const missing = names.filter((name) => deno.permissions.querySync({ name }).state !== "granted");
  if (missing.length > 0) throw new PermissionError(missing, what);
}
