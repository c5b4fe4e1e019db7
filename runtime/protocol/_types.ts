/**
 * The control channel as TypeScript interfaces. The control plane and the worker talk
 * through these whether they share a process (`heddle run`) or not (`heddle local`,
 * `heddle cluster`, where gRPC carries the same calls): one code path, two transports.
 * The shapes mirror `proto/control.proto` field for field.
 */
import type { JsonDiagnostic } from "../../compiler/diagnostics/mod.ts";
/**
 * The lifecycle of a run.
 * - `pending`: accepted, not yet placed on a worker.
 * - `running`: its worker is executing it.
 * - `draining`: asked to stop; sources have stopped, in-flight batches are finishing.
 * - `succeeded`: every source ended and every sink flushed.
 * - `failed`: a stage failed with nowhere to send its rows, or the worker died.
 * - `stopped`: drained after a stop request.
 */
export type RunStatus = "pending" | "running" | "draining" | "succeeded" | "failed" | "stopped";

/** A diagnostic as it crosses the wire: the compiler's JSON form (1-based positions). */
export type WireDiagnostic = JsonDiagnostic;

/** A file a program needs besides its source (its schema snapshot), sent with a deploy. */
export interface DeployFile {
  /** Relative to the program, e.g. `fraud_detection.schema.json`. */
  name: string;
  content: string;
}

export interface DeployRequest {
  /** The program's name as the deployer knows it, for messages; never opened. */
  file: string;
  source: string;
  overrides: string[];
  /** Files the program needs (its `<program>.schema.json`); a daemon reads nothing else of the deployer's. */
  files?: DeployFile[];
}

export interface DeployResponse {
  ok: boolean;
  workflows: string[];
  diagnostics: WireDiagnostic[];
}

export interface WorkflowInfo {
  name: string;
  file: string;
  version: number;
  deployedAt: string;
}

export interface Run {
  id: string;
  workflow: string;
  status: RunStatus;
  startedAt: string;
  endedAt: string;
  worker: string;
  summaryJson: string;
  error: string;
  /** What started it: `heddle run`, `workflow start` or `schedule`. */
  origin: string;
}

export interface WorkerInfo {
  id: string;
  address: string;
  host: string;
  /**
   * Plugin runtimes the worker can start (`python`, `typescript`, ...) and its `--labels`;
   * placement puts a stage group only where its runtimes are among them. Absent: a worker
   * attached in-process (`heddle run`), which runs anything.
   */
  runtimes?: string[];
  labels?: string[];
  /** Where the worker serves Arrow Flight to other workers; empty when it serves none. */
  flightAddress?: string;
}

export interface ExecuteRequest {
  runId: string;
  workflow: string;
  irJson: string;
  baseDir: string;
}

/** One thing that happened in a run; `detail` holds the kind's own fields. */
export interface RunEvent {
  runId: string;
  kind: string;
  stage: string;
  time: number;
  detail: Record<string, unknown>;
}

/** Which runs `listRuns` returns: newest first, a page at a time. */
export interface ListRunsRequest {
  /** Only this workflow's runs (empty or absent: all). */
  workflow?: string;
  /** Runs per page (default 100, at most 1000). */
  pageSize?: number;
  /** The previous page's `nextPageToken`; absent for the first page. */
  pageToken?: string;
  /** Only runs in this state (empty or absent: all), e.g. `failed`. */
  status?: RunStatus | "";
}

export interface RunPage {
  runs: Run[];
  /** Pass as `pageToken` for the next page; empty when this was the last. */
  nextPageToken: string;
}

/** How much a log line matters. */
export type LogLevel = "info" | "warn" | "error";

/**
 * One line of a run's log. It says what happened (a stage's attempt failed, rows went to a
 * handler, the run ended) and never carries a row's values.
 */
export interface LogLine {
  /** Increasing across the database's log: `listLogs` continues after it. */
  seq: number;
  runId: string;
  /** The stage the line is about; empty for the run as a whole. */
  stage: string;
  level: LogLevel;
  /** ISO 8601, UTC. */
  time: string;
  message: string;
}

/** Which log lines `listLogs` returns: a run's, oldest first, after a position. */
export interface ListLogsRequest {
  runId: string;
  /** Only this stage's lines (empty or absent: all). */
  stage?: string;
  /** Lines after this `seq` (0 or absent: from the first). */
  after?: number;
  /** Lines per page (default 1000, at most 10000). */
  limit?: number;
}

export interface LogPage {
  lines: LogLine[];
  /** Pass as `after` to continue; the same value when no line came. */
  next: number;
  /** The run had ended and this page holds its last line: nothing follows. */
  complete: boolean;
}

/** How one attempt of a batch at a stage went (`getRunDetails`). */
export interface Attempt {
  stage: string;
  /** The stage's batch number (from 0); -1 in runs recorded before batches were stored. */
  batch: number;
  /** The attempt's number for its batch, from 1. */
  attempt: number;
  /** `running` until the attempt has ended. */
  outcome: "running" | "failed" | "succeeded";
  rows: number;
  /** For a failed attempt: the error's class (`transient`, `fatal`) and kind (`plugin`, ...). */
  errorClass: string;
  errorKind: string;
  /** For a failed attempt: its message, which never quotes a row. */
  message: string;
  /** For a failed attempt: the wait before the next attempt, or -1 when none followed. */
  retryInMs: number;
  /** For an attempt that ended: how long it took. */
  durationMs: number;
  /** ISO 8601: when it started (or, for one whose start was not kept, ended). */
  time: string;
}

/**
 * A row sent to a handler (or that failed the run), as the control plane may know it: where
 * and why, never the row's values. The row itself is in the handler's sinks.
 */
export interface QuarantinedRow {
  /** ISO 8601: when the stage sent it. */
  time: string;
  /** The stage it failed at, and the step (`_error_step`). */
  stage: string;
  step: string;
  /** The handler that received it; empty when none did and the run failed. */
  handler: string;
  /** The stage's batch it failed in; -1 for a source's records. */
  batch: number;
  /** A source's record number (from 0), else the row's index in its batch; -1 when unknown. */
  row: number;
  /** The failure's `ErrorInfo` class, kind and column (empty when none is named). */
  errorClass: string;
  errorKind: string;
  column: string;
  /** The message the control plane has: the row's `_error_message` without the row's text. */
  message: string;
  /** `_error_attempt`. */
  attempt: number;
}

/** What the history keeps of a run beyond its `Run` record. */
export interface RunDetails {
  runId: string;
  /** The run's attempts in the order they started (the first 10,000 attempts kept). */
  attempts: Attempt[];
  /** Attempts the run made, kept or not. */
  attemptsTotal: number;
  /** The run's first 1,000 quarantined rows, in the order they failed. */
  quarantined: QuarantinedRow[];
  /** Rows the run quarantined, kept or not. */
  quarantinedTotal: number;
}

/** A workflow's schedule: when the control plane starts its runs by itself. */
export interface ScheduleInfo {
  workflow: string;
  /** The cron expression (five fields, UTC), or empty when `every` is set. */
  cron: string;
  /** The interval as `--every` takes it (`10m`, `1h30m`), or empty when `cron` is set. */
  every: string;
  /** Whether a firing starts a run while another run of the workflow is still live. */
  allowOverlap: boolean;
  /** ISO 8601: when it fires next. */
  nextAt: string;
  /** ISO 8601: when it last fired; empty before its first firing. */
  lastAt: string;
  /** What the last firing did: `started RUN`, `skipped: ...` or `failed: ...`. */
  lastOutcome: string;
}

/** Schedules `workflow` (replacing its schedule): exactly one of `cron` and `every`. */
export interface SetScheduleRequest {
  workflow: string;
  cron?: string;
  every?: string;
  allowOverlap?: boolean;
}

/** What the control plane offers to the CLI and to workers. */
export interface ControlApi {
  deploy(request: DeployRequest): Promise<DeployResponse>;
  listWorkflows(): Promise<WorkflowInfo[]>;
  startRun(workflow: string): Promise<Run>;
  getRun(runId: string): Promise<Run>;
  listRuns(request?: ListRunsRequest): Promise<RunPage>;
  stopRun(runId: string): Promise<Run>;
  listLogs(request: ListLogsRequest): Promise<LogPage>;
  /** A run's attempts and quarantined rows as the history kept them. */
  getRunDetails(runId: string): Promise<RunDetails>;
  setSchedule(request: SetScheduleRequest): Promise<ScheduleInfo>;
  listSchedules(): Promise<ScheduleInfo[]>;
  /** Deletes a workflow's schedule and returns it; `not-found` when it has none. */
  deleteSchedule(workflow: string): Promise<ScheduleInfo>;
  registerWorker(info: WorkerInfo): Promise<void>;
  /**
   * A worker is stopping: the control plane closes its client to it and places nothing more
   * on it, then answers (false: it did not know the worker). The worker closes its servers
   * only after that, so no server of its ends a connection the control plane still holds.
   */
  leaveWorker(id: string): Promise<boolean>;
  /**
   * Where a deployed workflow's stage groups would run on the workers registered now, as
   * JSON (`runtime/control`'s `Placement`); fails when a group fits no worker.
   */
  planRun(workflow: string): Promise<string>;
  /**
   * A plugin package a deploy carries, by its content hash and directory name (what a
   * deployed IR's `modules[].package` holds); `not-found` when this control plane keeps none.
   */
  fetchPackage(ref: { hash: string; name: string; dir?: string }): Promise<WirePackage>;
}

/** A plugin package as the control channel carries it (runtime/plugins `PluginPackage`). */
export interface WirePackage {
  hash: string;
  name: string;
  /** The package directory's place in the tree of `files` (runtime/plugins `PluginPackage`). */
  dir: string;
  files: { path: string; content: Uint8Array; executable: boolean }[];
}

/** What a worker offers to the control plane. */
export interface WorkerApi {
  /**
   * Runs the workflow, calling `onEvent` for each event; resolves when the run has ended.
   * Aborting `signal` stops the run (its caller gave up on it: a stale placement, a control
   * plane gone) and no event follows.
   */
  execute(
    request: ExecuteRequest,
    onEvent: (event: RunEvent) => void,
    signal?: AbortSignal,
  ): Promise<void>;
  /** Asks a run to drain and stop; false when the worker does not know the run. */
  cancel(runId: string): Promise<boolean>;
  health(): Promise<WorkerHealth>;
}

/**
 * A worker's answer to a health check: alive, how busy, and the gauges the control plane's
 * `/metrics` exports for it (asked at each scrape, so remote workers report them too).
 */
export interface WorkerHealth {
  status: string;
  activeRuns: number;
  /** Bytes of the worker's registry objects in shared memory, and spilled to files. */
  registryMemoryBytes: number;
  registrySpillBytes: number;
  /** Each plugin package the worker's runs used, with its processes started again. */
  plugins: { plugin: string; restarts: number }[];
}

/** A failure the control plane reports to its caller (unknown workflow, unknown run). */
export class ControlError extends Error {
  constructor(
    message: string,
    /** `not-leader`: a standby control plane refused the call (docs/cluster.md). */
    readonly code: "not-found" | "invalid" | "unavailable" | "unauthenticated" | "not-leader",
  ) {
    super(message);
  }
}
