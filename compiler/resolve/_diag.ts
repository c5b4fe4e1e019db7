/**
 * A small builder for diagnostics shared by the phases after syntax, so that every phase
 * words and shapes them the same way. It must never decide whether something is an error.
 */
import type { Diagnostic, Label, Severity, Span } from "../diagnostics/_types.ts";

export interface CodeEntry {
  code: string;
  title: string;
}

export function diag(
  entry: CodeEntry,
  message: string,
  span: Span,
  extra: { labels?: Label[]; hints?: string[]; severity?: Severity } = {},
): Diagnostic {
  return {
    code: entry.code,
    severity: extra.severity ?? "error",
    message,
    span,
    labels: extra.labels ?? [],
    hints: extra.hints ?? [],
  };
}
