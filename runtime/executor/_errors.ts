/**
 * Which failures are worth another attempt. Retrying and splitting a batch only helps when
 * the next attempt could go differently (a timeout, a reset connection, a crashed plugin);
 * when it cannot (a plugin that does not start, a bad config, a rejected password, a full
 * /dev/shm), retrying row by row turns one clear error into minutes of identical failures
 * and a handler full of valid rows. So every error an attempt ends with is classified here,
 * once, and a fatal one fails the run at once with its cause. Unknown errors stay transient:
 * the old behaviour, which at worst costs retries. This file decides from error codes, never
 * from row contents, and must never let a fatal error be quarantined row by row.
 */
import { ConnectorError } from "../connectors/mod.ts";
import type { PluginError, PluginErrorCode } from "../plugins/mod.ts";
import { RegistryError, type RegistryErrorCode } from "../registry/mod.ts";

/** How the executor treats a failed attempt (docs/executor.md, "Error classes"). */
export type ErrorClass =
  /** Trying again may succeed: retried with backoff, then the batch is split. */
  | "transient"
  /** Trying again cannot succeed: the run fails at once with this error as its cause. */
  | "fatal";

/** Plugin failures that no retry can fix: the plugin cannot run at all, or breaks its contract. */
const FATAL_PLUGIN_CODES: ReadonlySet<PluginErrorCode> = new Set([
  "unknown-step",
  "start-failed",
  "bad-output",
  "closed",
]);

/** `StepError.code`s a plugin reports that no retry can fix (docs/plugins.md, "Errors"). */
const FATAL_STEP_CODES: ReadonlySet<string> = new Set([
  "BAD_CONFIG",
  "UNKNOWN_STEP",
  "BAD_OUTPUT",
  "NO_SPACE",
]);

/**
 * Registry failures that no retry can fix: no room in /dev/shm nor the spill directory, a
 * closed registry, or an object the executor built wrongly.
 */
const FATAL_REGISTRY_CODES: ReadonlySet<RegistryErrorCode> = new Set([
  "no-space",
  "closed",
  "invalid-input",
]);

const ENOSPC = 28;
const NO_SPACE_TEXT = /No space left on device|\bENOSPC\b/;

/**
 * True when `error` or one of its causes is ENOSPC: an errno or code from the registry's
 * libc calls or from Deno, or the text a plugin process reports it with (its SDK's
 * `RegistryError` message crosses the process boundary as text only).
 */
export function isNoSpace(error: unknown): boolean {
  for (let e = error, depth = 0; e != null && depth < 8; depth++) {
    if (typeof e !== "object") return NO_SPACE_TEXT.test(String(e));
    const found = e as { errno?: unknown; code?: unknown; message?: unknown; cause?: unknown };
    if (found.errno === ENOSPC || found.code === "ENOSPC" || found.code === "no-space") return true;
    if (typeof found.message === "string" && NO_SPACE_TEXT.test(found.message)) return true;
    e = found.cause;
  }
  return false;
}

/** The class of a plugin host's failure (`InvokeResult.error`). */
export function pluginErrorClass(error: PluginError): ErrorClass {
  if (FATAL_PLUGIN_CODES.has(error.code)) return "fatal";
  const stepCode = error.details.stepCode;
  if (stepCode !== undefined && FATAL_STEP_CODES.has(stepCode)) return "fatal";
  return isNoSpace(error) ? "fatal" : "transient";
}

/** The class of whatever an attempt threw: a connector's, the registry's, or the OS's error. */
export function errorClass(error: unknown): ErrorClass {
  if (error instanceof ConnectorError) return error.code === "config" ? "fatal" : "transient";
  if (error instanceof RegistryError && FATAL_REGISTRY_CODES.has(error.code)) return "fatal";
  if (error instanceof Deno.errors.PermissionDenied) return "fatal";
  return isNoSpace(error) ? "fatal" : "transient";
}
