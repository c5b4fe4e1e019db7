/**
 * Which failures are worth another attempt. Retrying and splitting a batch only helps when
 * the next attempt could go differently (a timeout, a reset connection, a crashed plugin);
 * when it cannot (a plugin that does not start, a bad config, a rejected password, a full
 * /dev/shm), retrying row by row turns one clear error into minutes of identical failures
 * and a handler full of valid rows. So every error an attempt ends with is classified here,
 * once, and a fatal one fails the run at once with its cause. Unknown errors stay transient:
 * the old behaviour, which at worst costs retries. This file decides from error codes, never
 * from row contents, and must never let a fatal error be quarantined row by row.
 *
 * It also describes every failure for the control plane (`ErrorInfo`): class, stage, step,
 * column, row index and a message in Heddle's own words. Error texts that may quote a
 * record (a source's excerpt, a cell value, a plugin's or remote's rejection, an unknown
 * exception from code that read the rows) never go into it: they stay in the `_error_message`
 * of the rows handed to handlers, on the data path (docs/security.md, "No payloads").
 */
import { ConnectorError, type SourceRowError } from "../connectors/mod.ts";
import { PluginError, type PluginErrorCode } from "../plugins/mod.ts";
import { PrqlExecutionError } from "../prql/mod.ts";
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

/**
 * A failure told without the record's contents: what events, stored attempts and run errors
 * carry. `message` is built here from the error's kind and codes, never from row text.
 */
export interface ErrorInfo {
  class: ErrorClass;
  /**
   * `record`: a source could not read a record; `rejected`: a step reported the row as
   * failed; `timeout`, `plugin`, `connector`, `prql`, `registry`, `system`: what the attempt
   * failed with; `error`: anything else (its message is withheld: it may quote the rows).
   */
  kind:
    | "record"
    | "rejected"
    | "timeout"
    | "plugin"
    | "connector"
    | "prql"
    | "registry"
    | "system"
    | "error";
  /** The stage's id (`s3`). */
  stage: string;
  /** The step's label (of a fused chain, the one that failed), when known. */
  step: string | null;
  /** The column at fault, when the error names one. */
  column: string | null;
  /**
   * For `record`, the record's zero-based number in its source; else the first failed row's
   * index in its batch; null when a whole batch failed.
   */
  row: number | null;
  message: string;
}

/** Where a failure happened, as the executor knows it. */
export interface FailureSite {
  stage: string;
  step: string | null;
  row: number | null;
}

const DENO_ERRORS = Object.values(Deno.errors) as (new () => Error)[];

/**
 * What `error` is, in words that cannot quote a record: Heddle's own messages (timeouts,
 * the registry, fatal errors it raised), a connector's message unless it is a remote's
 * rejection of the rows, and for plugins and unknown errors only their codes and names.
 */
function publicOf(error: unknown): Pick<ErrorInfo, "kind" | "column" | "message"> {
  if (error instanceof Error && error.name === "FatalStageError" && error.cause !== undefined) {
    return publicOf(error.cause);
  }
  if (error instanceof Error && error.name === "StepAttemptError" && error.cause !== undefined) {
    return publicOf(error.cause);
  }
  if (error instanceof PluginError) {
    const { step, stepCode, column } = error.details;
    // The host's own messages stay, as does a step's own about its config or the machine
    // (a fatal code); any other of a step's own, and a crash's stderr, may quote the rows.
    const own = error.code === "step-failed" && pluginErrorClass(error) !== "fatal";
    if (!own && error.code !== "crashed") {
      const kind = error.code === "timeout" ? "timeout" : "plugin";
      return { kind, column: column ?? null, message: error.message };
    }
    const what = own ? "failed" : "crashed (its plugin process died)";
    return {
      kind: "plugin",
      column: column ?? null,
      message: `plugin step \`${step}\` ${what}${stepCode ? ` with ${stepCode}` : ""}` +
        (column ? ` (column \`${column}\`)` : ""),
    };
  }
  if (error instanceof ConnectorError) {
    return { kind: "connector", column: null, message: connectorText(error) };
  }
  // The PRQL engine's messages name columns and operations, never values.
  if (error instanceof PrqlExecutionError) {
    return { kind: "prql", column: null, message: error.message };
  }
  if (error instanceof RegistryError) {
    return { kind: "registry", column: null, message: error.message };
  }
  if (DENO_ERRORS.some((c) => error instanceof c)) {
    return { kind: "system", column: null, message: (error as Error).message };
  }
  if (
    error instanceof Error && (error.name === "AttemptTimeout" || error.name === "FatalStageError")
  ) {
    return {
      kind: error.name === "AttemptTimeout" ? "timeout" : "error",
      column: null,
      message: error.message,
    };
  }
  const name = error instanceof Error ? error.name : typeof error;
  return {
    kind: "error",
    column: null,
    message:
      `failed with ${name} (its message is kept with the failed rows, since it may quote them)`,
  };
}

/**
 * A connector's message, unless it may quote rows: a remote's answer other than a connection
 * failure or a config error (a value a server could not parse) is told by its code only, as
 * is any rejection of the rows themselves (`data`).
 */
function connectorText(error: ConnectorError): string {
  const remote = error.remote;
  const quiet = error.code === "data" ||
    (remote !== null && error.code !== "config" && !remote.network);
  if (!quiet) return error.message;
  const what = remote?.what ?? "the step";
  const code = remote?.code ? ` (${remote.code})` : "";
  return error.code === "data"
    ? `${what}: the outside system rejected the rows${code}`
    : `${what}: the outside system answered with an error${code}`;
}

/** The description of an attempt's or a stage's failure. */
export function describeError(error: unknown, site: FailureSite): ErrorInfo {
  const fatal = error instanceof Error && error.name === "FatalStageError";
  return { class: fatal ? "fatal" : errorClass(error), ...site, ...publicOf(error) };
}

/** The description of a record a source could not read (`SourceRowError`). */
export function describeRecord(e: SourceRowError, stage: string, step: string): ErrorInfo {
  return {
    class: "transient",
    kind: "record",
    stage,
    step,
    column: e.column ?? null,
    row: e.record,
    message: e.reason,
  };
}

/** The description of a row a step reported as failed (a plugin's row error). */
export function describeRejected(site: FailureSite): ErrorInfo {
  return {
    class: "transient",
    kind: "rejected",
    ...site,
    column: null,
    message: `row ${site.row} was rejected by step \`${site.step}\``,
  };
}
