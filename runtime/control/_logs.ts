/**
 * What a run's log says: the lines made from its events (failed attempts, rows sent to a
 * handler, per-stage totals at the end). Events reach this module already redacted
 * (`redactEvent` in the control plane), and the lines it makes hold counts, stage names
 * and error messages only: no event field that carries a row's values is ever read here.
 */
import { eventErrorMessage, type LogLevel, type RunEvent } from "../protocol/mod.ts";

/** A line about to be logged: the recorder adds the run, time and position. */
export interface PendingLine {
  stage: string;
  level: LogLevel;
  message: string;
}

/** The longest message a log line keeps; longer ones end with `…`. */
export const MAX_MESSAGE = 2000;

/** `text` cut to `MAX_MESSAGE` characters. */
export function clip(text: string): string {
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE - 1)}…` : text;
}

/** A stage's totals as the executor reports them. */
export interface StageTotals {
  label?: string;
  rowsIn?: number;
  rowsOut?: number;
  rowsQuarantined?: number;
}

/** The lines an event makes (most events, such as progress, make none). */
export function linesOf(event: RunEvent): PendingLine[] {
  const d = event.detail;
  const stage = event.stage ?? "";
  switch (event.kind) {
    case "attempt-failed": {
      const next = typeof d.retryInMs === "number"
        ? `retrying in ${d.retryInMs} ms`
        : "no attempt left";
      return [{
        stage,
        level: "warn",
        message: clip(
          `attempt ${d.attempt} of batch ${d.batch} (${d.rows} rows) failed: ${
            eventErrorMessage(d)
          }; ${next}`,
        ),
      }];
    }
    case "attempt-succeeded":
      return Number(d.attempt) > 1
        ? [{
          stage,
          level: "info",
          message: `batch ${d.batch} (${d.rows} rows) succeeded on attempt ${d.attempt}`,
        }]
        : [];
    case "rows-quarantined":
      return [{
        stage,
        level: d.handler ? "warn" : "error",
        message: clip(
          d.handler
            ? `${d.rows} rows sent to handler \`${d.handler}\`: ${eventErrorMessage(d)}`
            : `${d.rows} rows failed and no handler catches them: ${eventErrorMessage(d)}`,
        ),
      }];
    case "package-fetched":
      return [{
        stage,
        level: d.replacedDamaged ? "warn" : "info",
        message: `plugin package \`${d.package}\` (${String(d.hash).slice(0, 12)}) fetched from ` +
          `the control plane by worker ${d.worker}: ${d.files} files, ${d.bytes} bytes` +
          (d.replacedDamaged ? "; its cached copy had changed on disk and was replaced" : ""),
      }];
    default:
      return [];
  }
}

/** One line per stage with its totals, in the order the run reported them. */
export function totalsLines(stages: Record<string, StageTotals>): PendingLine[] {
  return Object.entries(stages).map(([stage, s]) => ({
    stage,
    level: "info",
    message: `${s.label ?? stage}: ${s.rowsIn ?? 0} rows in, ${s.rowsOut ?? 0} rows out` +
      (s.rowsQuarantined ? `, ${s.rowsQuarantined} rows to handlers` : ""),
  }));
}
