/**
 * The one error type the registry lets out. Callers (the executor, the plugin host) decide
 * on retries and quarantine from `code`, so codes are stable and a message must say which
 * object and segment failed and what was expected versus found. Nothing in the registry
 * may let an `OsError` or an apache-arrow exception escape unwrapped.
 */

export type RegistryErrorCode =
  /** The segment or spill file does not exist (already freed, or never written). */
  | "missing"
  /** The segment is shorter than the handle says, or a message runs past its end. */
  | "truncated"
  /** The bytes are not a valid Arrow IPC stream, or disagree with the handle's row count. */
  | "corrupt"
  /** The stream's schema fingerprint differs from the handle's. */
  | "schema-mismatch"
  /** The registry holds no object with this id (released, or never put). */
  | "unknown-object"
  /** The caller passed something the registry cannot store (no schema, bad counts). */
  | "invalid-input"
  /**
   * Neither /dev/shm nor the spill directory has room for the object (ENOSPC). Retrying
   * cannot help until something else frees space: an executor fails the run at once.
   */
  | "no-space"
  /** The operating system refused (permissions, too many open files, ...). */
  | "system"
  /** The registry was closed; nothing can be put or opened any more. */
  | "closed";

export class RegistryError extends Error {
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    options: { cause?: unknown; segment?: string } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "RegistryError";
    this.segment = options.segment;
  }

  /** The segment name or spill path involved, when there is one. */
  readonly segment: string | undefined;
}
