/**
 * The shapes the web UI's JSON API returns and its pages render. The server builds them from
 * what the control plane exposes (runs, events, stored IR); the browser code imports these
 * types only, so both sides agree on one definition. Nothing here carries row payloads: the
 * control plane never sees them. It imports nothing: the browser code is type checked with
 * the DOM's types only (`app/deno.json`), so nothing of Deno may reach it through here.
 */

/** A run's status (`RunStatus` of runtime/protocol). */
export type RunStatus = "pending" | "running" | "draining" | "succeeded" | "failed" | "stopped";

/** The fields of a compiler diagnostic the page shows (`WireDiagnostic` of runtime/protocol). */
export interface DiagnosticView {
  file: string;
  line: number;
  column: number;
  severity: string;
  code: string;
  message: string;
}

export interface WorkflowView {
  name: string;
  file: string;
  version: number;
  deployedAt: string;
  /** The newest run of the workflow, or null when it never ran. */
  lastRun: { id: string; status: RunStatus; startedAt: string } | null;
  /** When the control plane starts its runs by itself (docs/history.md), or null. */
  schedule: ScheduleView | null;
}

export interface ScheduleView {
  /** `cron EXPR` (UTC) or `every INTERVAL`. */
  when: string;
  /** ISO 8601. */
  nextAt: string;
  /** ISO 8601; empty before the first firing. */
  lastAt: string;
  /** What the last firing did: `started RUN`, `skipped: ...` or `failed: ...`. */
  lastOutcome: string;
}

/** A deploy the control plane refused, with the compiler's diagnostics. */
export interface DeployErrorView {
  file: string;
  at: string;
  diagnostics: DiagnosticView[];
}

export interface RunRow {
  id: string;
  workflow: string;
  status: RunStatus;
  startedAt: string;
  endedAt: string;
  /** Until now for a run still going. */
  durationMs: number;
  /** Records the workflow's sources read (including ones they could not parse). */
  rowsIn: number;
  /** Rows the workflow's sinks wrote (handler sinks not included: see `quarantined`). */
  rowsOut: number;
  /** Rows routed to handlers (or that failed the run when no handler caught them). */
  quarantined: number;
  worker: string;
  error: string;
  /** What started it: `heddle run`, `workflow start` or `schedule`. */
  origin: string;
}

/** One stage of a run as the events describe it. */
export interface StageView {
  id: string;
  label: string;
  /** The IR stage kind (`source`, `prql`, `call`, `lookup-join`, `sink`, `handler-input`). */
  kind: string;
  batches: number;
  rowsIn: number;
  rowsOut: number;
  rowsPerSecond: number;
  /** Attempts started (each batch's first try and every retry). */
  attempts: number;
  /** Attempts that failed and were tried again. */
  retries: number;
  /** Mean and largest attempt duration of the stage's batches, in milliseconds. */
  latencyMeanMs: number;
  latencyMaxMs: number;
  quarantined: number;
}

/**
 * A row sent to a handler (or that failed the run), as the run history keeps it
 * (`QuarantinedRow` of runtime/protocol): the stage and step (`_error_step`), the record or
 * row, the handler, the error's class, kind and column, the message as the control plane has
 * it (`_error_message` without the row's text) and `_error_attempt`. Never the row's values:
 * the row itself is in the handler's sinks.
 */
export interface QuarantinedRowView {
  /** ISO 8601. */
  time: string;
  stage: string;
  label: string;
  step: string;
  /** Empty when no handler caught it (the run failed). */
  handler: string;
  /** The stage's batch; -1 for a source's records. */
  batch: number;
  /** A source's record number (from 0), else the row's index in its batch; -1: unknown. */
  row: number;
  errorClass: string;
  errorKind: string;
  column: string;
  message: string;
  attempt: number;
}

/**
 * One attempt of a batch at a stage (`Attempt` of runtime/protocol): the run page lists the
 * attempts of every batch that failed at least once.
 */
export interface AttemptView {
  stage: string;
  label: string;
  batch: number;
  attempt: number;
  outcome: "running" | "failed" | "succeeded";
  rows: number;
  errorClass: string;
  errorKind: string;
  message: string;
  /** For a failed attempt: the wait before the next one; -1 when none followed. */
  retryInMs: number;
  durationMs: number;
  /** ISO 8601. */
  time: string;
}

export interface LogLine {
  time: number;
  level: "info" | "warn" | "error";
  stage: string;
  text: string;
}

export interface RunView {
  run: RunRow;
  stages: StageView[];
  /** The attempts of the batches that failed at least once, the first ones of the run. */
  attempts: AttemptView[];
  /** Attempts the run made, and troubled ones beyond those listed. */
  attemptsTotal: number;
  attemptsNotShown: number;
  /** The run's quarantined rows (the first ones), and how many more it had. */
  quarantined: QuarantinedRowView[];
  quarantinedNotShown: number;
  logs: LogLine[];
}

export interface GraphNode {
  id: string;
  label: string;
  kind: string;
  /** The workflow or handler the stage belongs to. */
  graph: string;
  /** What the optimiser did: `fused` (several calls or PRQL blocks in one), `batched lookup`. */
  marks: string[];
  /** The worker that ran the stage in the workflow's latest run, when known. */
  worker: string | null;
}

export interface GraphEdge {
  from: string;
  to: string;
  /** The Arrow schema on the edge, one `name: type` a line. */
  schema: string;
  /** Whether the latest run's batches crossed hosts on it (Arrow Flight). */
  crossesHosts: boolean;
}

export interface GraphView {
  workflow: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export interface WorkflowPage {
  workflow: WorkflowView;
  graph: GraphView;
  runs: RunRow[];
}

export interface FrontPage {
  workflows: WorkflowView[];
  deployErrors: DeployErrorView[];
  runs: RunRow[];
}
