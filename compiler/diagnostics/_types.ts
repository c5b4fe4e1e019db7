/**
 * Diagnostics are data. Every phase returns them instead of throwing, so that one run can
 * report every independent mistake and the LSP can work on broken files. A diagnostic holds
 * offsets only; lines and columns are computed when it is rendered.
 */

/** A half-open range `[start, end)` of UTF-16 code-unit offsets into one source text. */
export interface Span {
  start: number;
  end: number;
}

export type Severity =
  /** The program cannot run; `heddle check` exits 1. */
  | "error"
  /** Suspicious but runnable (an unused binding, types left open). */
  | "warning"
  /** Extra information (an optimisation that was or was not applied). */
  | "info";

/** A secondary place that explains the diagnostic ("expected here", "found there"). */
export interface Label {
  span: Span;
  message: string;
  /** The file the label points into, when it is not the diagnostic's own file. */
  file?: string;
}

export interface Diagnostic {
  /** A stable code such as `HE0001`, listed in `docs/diagnostics.md`. */
  code: string;
  severity: Severity;
  message: string;
  span: Span;
  /** The file `span` points into; unset means the program being compiled. */
  file?: string;
  labels: Label[];
  hints: string[];
}

/** What every compiler phase returns: a value (possibly partial) and what it found. */
export interface Result<T> {
  value: T;
  diagnostics: Diagnostic[];
}
