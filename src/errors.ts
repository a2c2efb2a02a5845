// Errors for bad input, raised before any syscall. Syscall failures are SyscallError (ffi/errno.ts).
export { SyscallError } from "./ffi/errno.ts";
export { PermissionError } from "./ffi/permissions.ts";

/** An option that cannot be used; the message names the option and what was wrong with it. */
export class ConfigError extends TypeError {
  override readonly name = "ConfigError";
  constructor(readonly option: string, message: string) {
    super(`${option} ${message}`);
  }
}

/** A BPF program the kernel refused; `log` is the verifier's output. */
export class BpfError extends Error {
  override readonly name = "BpfError";
  constructor(readonly code: string, message: string, readonly log: string) {
    super(log ? `${message}\n${log}` : message);
  }
}
