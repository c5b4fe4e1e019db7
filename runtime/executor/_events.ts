/**
 * The events a run emits, as typed data, through the `onEvent` callback: the CLI renders
 * progress from them and the control plane persists attempts and positions. They carry
 * metadata only, never row payloads nor text that may quote them (errors are `ErrorInfo`s),
 * and emitting one must never block or fail the run.
 */
import type { Position } from "../connectors/mod.ts";
import type { ErrorInfo } from "./_errors.ts";

export type RunStatus =
  /** Every bounded source ended and every row was delivered or handled. */
  | "completed"
  /** Stopped on request (`stop()`, an aborted signal) before its sources ended: drained. */
  | "stopped"
  /** A fatal error or unhandled failed rows ended the run; see `error`. */
  | "failed";

export interface StageStats {
  label: string;
  batches: number;
  rowsIn: number;
  rowsOut: number;
  rowsQuarantined: number;
}

/** What became of a sink's rows when the run ended. */
export type OutputState =
  /** Published whole at the end of a completed run (a file renamed into place). */
  | "published"
  /** Not published, because the run stopped or failed: what was at the target is unchanged. */
  | "discarded"
  /** Delivered as they were written (a topic): they stay, however the run ended. */
  | "delivered";

/** One sink of the run, for telling the user what was written where. */
export interface OutputReport {
  stage: string;
  label: string;
  /** Where the rows go: a file's path, a topic, else the sink's operation. */
  target: string;
  /** Rows the sink received (published, discarded or delivered). */
  rows: number;
  state: OutputState;
}

export interface RunSummary {
  runId: string;
  workflow: string;
  status: RunStatus;
  durationMs: number;
  stages: Record<string, StageStats>;
  /** Rows routed to handlers. */
  rowsQuarantined: number;
  /** The last committed position per source stage (null: none committed). */
  committed: Record<string, Position | null>;
  /** Every sink of the run (main graph and handlers), in stage order. */
  outputs: OutputReport[];
  error: { message: string; stage: string | null } | null;
}

/** Failed rows described in a run's events, at most (the control plane keeps as many). */
export const MAX_DESCRIBED_ROWS = 1000;

/** One failed row as the control plane may know it: its `ErrorInfo` and its attempt. */
export type RowFailure = ErrorInfo & { attempt: number };

interface Base {
  runId: string;
  /** Milliseconds since the epoch. */
  at: number;
}

export type RunEvent =
  | Base & { type: "run-started"; workflow: string; stages: string[] }
  | Base & {
    type: "stage-progress";
    stage: string;
    label: string;
    batches: number;
    rowsIn: number;
    rowsOut: number;
    rowsPerSecond: number;
    /** Bytes of the Arrow batches the stage has passed on (their buffers' sizes). */
    bytesOut: number;
  }
  | Base & { type: "attempt-started"; stage: string; batch: number; attempt: number; rows: number }
  | Base & {
    type: "attempt-failed";
    stage: string;
    batch: number;
    attempt: number;
    rows: number;
    /** What failed, without row text (the control plane sees it). */
    error: ErrorInfo;
    /** The backoff before the next attempt; null when no attempt follows. */
    retryInMs: number | null;
  }
  | Base & {
    type: "attempt-succeeded";
    stage: string;
    batch: number;
    attempt: number;
    rows: number;
    durationMs: number;
  }
  | Base & {
    type: "rows-quarantined";
    stage: string;
    rows: number;
    /** The handler receiving them; null when none catches them (the run fails). */
    handler: string | null;
    /** The first row's failure, without row text; the rows themselves carry full messages. */
    error: ErrorInfo;
    /** The stage's batch the rows failed in (null: a source's records). */
    batch: number | null;
    /**
     * Each row's failure, in row order, without row text: the first `MAX_DESCRIBED_ROWS`
     * failed rows of the run are described, later events carry none.
     */
    errors: RowFailure[];
  }
  | Base & { type: "position-committed"; stage: string; position: Position }
  /** Messages after a source's last committed offset, per partition (Kafka). */
  | Base & { type: "source-lag"; stage: string; topic: string; partitions: Record<string, number> }
  | Base & { type: "run-finished"; summary: RunSummary };

/** An event without the fields the run fills in. */
export type EventBody = RunEvent extends infer E
  ? E extends RunEvent ? Omit<E, "runId" | "at"> : never
  : never;

export type EventSink = (event: RunEvent) => void;
