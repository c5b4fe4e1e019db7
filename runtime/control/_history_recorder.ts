/**
 * Writes one run into the history as it goes: its attempts, its log lines (within the
 * per-run limit), and its per-stage counters, which are saved at most once a second while
 * the run is live so that another process (`heddle workflow status`, the UI) sees them move
 * without the database being written for every batch. The control plane makes one per run
 * and feeds it the run's (already redacted) events.
 */
import {
  eventErrorMessage,
  FIRST_ATTEMPTS,
  firstAttemptsOf,
  type LogLevel,
  type RunEvent,
  type RunStatus,
} from "../protocol/mod.ts";
import type { AttemptRecord, History } from "./_history.ts";
import { clip, linesOf, type PendingLine, type StageTotals, totalsLines } from "./_logs.ts";

/** How much history a control plane keeps. */
export interface HistoryLimits {
  /** Finished runs kept (newest first); older ones, their attempts and logs are deleted. */
  keepRuns: number;
  /** Log lines stored per run; past it a run's lines are counted, and the count is logged. */
  keepLogLines: number;
}

/**
 * Per-run summary kept from the events: what `Run.summaryJson` holds, with whatever the
 * control plane adds when the run starts (its placement).
 */
export interface Summary {
  stages: Record<string, StageTotals & Record<string, unknown>>;
  quarantined: number;
  /** Attempts started and attempts that failed and were tried again, in all and per stage. */
  attempts: number;
  retries: number;
  tries: Record<string, StageTries>;
  [more: string]: unknown;
}

/** A row's failure as a `rows-quarantined` event describes it (the executor's `RowFailure`). */
interface RowError {
  class?: unknown;
  kind?: unknown;
  step?: unknown;
  column?: unknown;
  row?: unknown;
  message?: unknown;
  attempt?: unknown;
}

export interface StageTries {
  attempts: number;
  retries: number;
}

/** Attempt events stored per run (the summary still counts every attempt). */
const MAX_STORED_ATTEMPTS = 10_000;
/** Quarantined rows stored per run (the summary still counts them all). */
export const MAX_STORED_QUARANTINED = 1000;
/** The least time between two saves of a live run's counters. */
const SAVE_EVERY_MS = 1000;

/** How a run ended, as the control plane decided it. */
export interface Ending {
  status: Extract<RunStatus, "succeeded" | "failed" | "stopped">;
  error: string;
  /** The executor's final per-stage totals, when it sent them. */
  stages?: Summary["stages"];
}

export class RunRecorder {
  readonly summary: Summary;
  #lines = 0;
  #dropped = 0;
  #savedAt = 0;
  #attemptEvents = 0;
  /** Attempts not stored yet, and the timer that stores them. */
  #attempts: AttemptRecord[] = [];
  #flushSoon: ReturnType<typeof setTimeout> | undefined;
  #quarantinedRows = 0;

  constructor(
    private readonly history: History,
    private readonly runId: string,
    private readonly limits: HistoryLimits,
    more: Record<string, unknown> = {},
  ) {
    this.summary = { ...more, stages: {}, quarantined: 0, attempts: 0, retries: 0, tries: {} };
  }

  /** Logs a line about the run (`stage` empty) or one of its stages. */
  log(level: LogLevel, stage: string, message: string): void {
    this.#append({ level, stage, message }, false);
  }

  event(event: RunEvent): void {
    if (event.kind.startsWith("attempt-")) this.#attempt(event);
    if (event.kind === FIRST_ATTEMPTS) {
      // A cluster worker's running count of first attempts: counted, not stored one by one
      // (only the attempts of batches that failed are shown, and those come one by one).
      const { started } = firstAttemptsOf(event.detail);
      const tries = this.summary.tries[event.stage] ??= { attempts: 0, retries: 0 };
      this.summary.attempts += started;
      tries.attempts += started;
    }
    if (event.kind === "stage-progress") {
      this.summary.stages[event.stage] = {
        ...event.detail,
        rowsQuarantined: this.summary.stages[event.stage]?.rowsQuarantined ?? 0,
      };
      this.#saveNowAndThen();
    }
    if (event.kind === "rows-quarantined") {
      const rows = Number(event.detail.rows ?? 0);
      this.summary.quarantined += rows;
      const stage = this.summary.stages[event.stage] ??= {};
      stage.rowsQuarantined = (stage.rowsQuarantined ?? 0) + rows;
      this.#quarantined(event);
    }
    for (const line of linesOf(event)) this.#append(line, false);
  }

  /**
   * Counts an attempt event and stores it: every attempt counts, the first ones of a run are
   * stored, so a long run's history stays bounded.
   */
  #attempt(event: RunEvent): void {
    const d = event.detail;
    const tries = this.summary.tries[event.stage] ??= { attempts: 0, retries: 0 };
    if (event.kind === "attempt-started") this.summary.attempts++, tries.attempts++;
    const retried = event.kind === "attempt-failed" && typeof d.retryInMs === "number";
    if (retried) this.summary.retries++, tries.retries++;
    if (++this.#attemptEvents > MAX_STORED_ATTEMPTS) return;
    const error = (d.error ?? {}) as { class?: unknown; kind?: unknown };
    this.#attempts.push({
      runId: event.runId,
      stage: event.stage,
      attempt: Number(d.attempt ?? 0),
      outcome: event.kind.slice("attempt-".length) as "started" | "failed" | "succeeded",
      message: eventErrorMessage(d),
      time: new Date(event.time).toISOString(),
      batch: Number(d.batch ?? -1),
      rows: Number(d.rows ?? 0),
      errorClass: String(error.class ?? ""),
      errorKind: String(error.kind ?? ""),
      retryInMs: retried ? Number(d.retryInMs) : -1,
      durationMs: Number(d.durationMs ?? 0),
    });
    // A failure is stored at once (whoever looks is looking for it); the rest within a second.
    if (event.kind === "attempt-failed") this.flushAttempts();
    else if (this.#flushSoon === undefined) {
      // Like every observer of a run, a failing store must not fail it (nor keep the
      // process alive for it: `finish` stores what is left).
      const timer = setTimeout(() => {
        try {
          this.flushAttempts();
        } catch {
          // The history is closed or unreachable; the run's summary still counts them.
        }
      }, SAVE_EVERY_MS);
      Deno.unrefTimer(timer);
      this.#flushSoon = timer;
    }
  }

  /** Stores the attempts not stored yet. */
  flushAttempts(): void {
    clearTimeout(this.#flushSoon);
    this.#flushSoon = undefined;
    const attempts = this.#attempts;
    this.#attempts = [];
    this.history.recordAttempts(attempts);
  }

  /** Stores the rows an event describes, within the per-run limit. */
  #quarantined(event: RunEvent): void {
    const d = event.detail;
    const described = Array.isArray(d.errors) ? d.errors as RowError[] : [];
    const kept = described.slice(0, MAX_STORED_QUARANTINED - this.#quarantinedRows);
    if (kept.length === 0) return;
    this.#quarantinedRows += kept.length;
    const time = new Date(event.time).toISOString();
    this.history.recordQuarantined(
      this.runId,
      kept.map((e) => ({
        time,
        stage: event.stage,
        step: String(e.step ?? ""),
        handler: String(d.handler ?? ""),
        batch: typeof d.batch === "number" ? d.batch : -1,
        row: typeof e.row === "number" ? e.row : -1,
        errorClass: String(e.class ?? ""),
        errorKind: String(e.kind ?? ""),
        column: String(e.column ?? ""),
        message: clip(String(e.message ?? "")),
        attempt: Number(e.attempt ?? 1),
      })),
    );
  }

  /**
   * Stores how the run ended: the totals and the closing line first, then the final state,
   * so that whoever sees the state ended has every line (see `History.logs`). Then prunes
   * the history to its limit.
   */
  finish(ending: Ending): void {
    this.flushAttempts();
    if (ending.stages) this.summary.stages = ending.stages;
    for (const line of totalsLines(this.summary.stages)) this.#append(line, true);
    if (this.#dropped > 0) {
      this.#append({
        stage: "",
        level: "warn",
        message: `${this.#dropped} more log lines were not kept (the limit is ` +
          `${this.limits.keepLogLines} a run)`,
      }, true);
    }
    const quarantined = this.summary.quarantined > 0
      ? `, ${this.summary.quarantined} rows to handlers`
      : "";
    this.#append({
      stage: "",
      level: ending.status === "failed" ? "error" : "info",
      message: clip(`run ${ending.status}${quarantined}${ending.error ? `: ${ending.error}` : ""}`),
    }, true);
    this.history.updateRun(this.runId, {
      status: ending.status,
      endedAt: new Date().toISOString(),
      summaryJson: JSON.stringify(this.summary),
      error: ending.error,
    });
    this.history.pruneRuns(this.limits.keepRuns);
  }

  /** Stores a line unless the run has used its lines; `closing` lines are always stored. */
  #append(line: PendingLine, closing: boolean): void {
    if (!closing && this.#lines >= this.limits.keepLogLines) {
      this.#dropped++;
      return;
    }
    this.#lines++;
    this.history.appendLog({ ...line, runId: this.runId, time: new Date().toISOString() });
  }

  #saveNowAndThen(): void {
    const now = Date.now();
    if (now - this.#savedAt < SAVE_EVERY_MS) return;
    this.#savedAt = now;
    this.history.updateRun(this.runId, { summaryJson: JSON.stringify(this.summary) });
  }
}
