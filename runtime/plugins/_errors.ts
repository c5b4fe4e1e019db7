/**
 * The one error type the plugin host returns. The executor decides on retries and quarantine
 * from `code` alone, so codes are stable and each message names the plugin, the step and
 * (where there is one) the column. The host returns these inside `InvokeResult`; it never
 * throws them at its caller.
 */

export type PluginErrorCode =
  /** No manifest on the module path declares the module, or the module has no such step. */
  | "unknown-step"
  /** The plugin process could not be started or did not answer health checks in time. */
  | "start-failed"
  /** The plugin process died (or its connection broke) during the invocation. */
  | "crashed"
  /** The invocation did not finish within its timeout; the plugin process was killed. */
  | "timeout"
  /** The plugin answered with something that is not a valid object (bad handle, wrong segment, corrupt IPC, impossible row errors). */
  | "malformed-output"
  /** The output is a valid object but breaks the step's declared output schema; `column` names where. */
  | "bad-output"
  /** The step itself reported a failure (its code threw, bad config, bad input); see `stepCode`. */
  | "step-failed"
  /** The host was closed. */
  | "closed";

export class PluginError extends Error {
  override readonly name = "PluginError";

  constructor(
    readonly code: PluginErrorCode,
    message: string,
    readonly details: {
      /** The wire name of the step (`fraud-score/detect.process`). */
      step: string;
      /** The column at fault, for `bad-output` (and `step-failed` when the plugin says). */
      column?: string;
      /** The plugin's own `StepError.code` (`USER_CODE`, `BAD_CONFIG`, ...) for `step-failed`. */
      stepCode?: string;
      /** For `step-failed` in a chain: which step failed (0 for the first; `step` names it). */
      stepIndex?: number;
      cause?: unknown;
    },
  ) {
    super(message, { cause: details.cause });
  }

  get step(): string {
    return this.details.step;
  }

  get column(): string | undefined {
    return this.details.column;
  }
}
