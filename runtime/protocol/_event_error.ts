/**
 * Reading the failure an event carries. `attempt-failed` and `rows-quarantined` events carry
 * an `error`: the executor's `ErrorInfo` (class, kind, stage, step, column, row, and a
 * message that never quotes a record, docs/executor.md). Everything that shows or stores
 * an event's failure reads it here, so none reaches for text an event does not have.
 */

/** The message of an event's `error`, or "" when it has none. */
export function eventErrorMessage(detail: Record<string, unknown>): string {
  const error = detail.error as { message?: unknown } | null | undefined;
  return typeof error?.message === "string" ? error.message : "";
}
