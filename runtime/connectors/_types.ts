/**
 * The interfaces between the executor and connectors, apart from the registry so that
 * connector files can import them without a cycle through mod.ts. Types and one error class
 * only: nothing here may touch the outside world.
 */
import type { Schema, Table } from "apache-arrow";
import type { ArrowType } from "../../compiler/modules/mod.ts";

/** Where a source is in its input; opaque to the executor, JSON so it can be persisted. */
export type Position = string | number | boolean | null | Position[] | {
  [key: string]: Position;
};

/** A row a source could not turn into a typed row (a malformed line). */
export interface SourceRowError {
  /** The zero-based record number in the source (line number for line formats). */
  record: number;
  /** The whole story, with the start of the record's text: for the handler's rows only. */
  message: string;
  /** Where and why, never quoting the record: what the control plane may see. */
  reason: string;
  /** The column that rejected its value, when one did. */
  column?: string;
}

/** One micro-batch from a source: typed rows, rows that failed, and the position after it. */
export interface SourceBatch {
  table: Table;
  errors: SourceRowError[];
  position: Position;
}

export interface Source {
  /** Whether the source ends by itself (a file) or runs until stopped (a topic). */
  readonly bounded: boolean;
  /** The rows' schema; every batch has exactly this schema. */
  readonly schema: Schema;
  /** Yields batches until the input ends or `signal` aborts; then returns. */
  batches(signal: AbortSignal): AsyncIterable<SourceBatch>;
  /** Records that everything up to and including `position` was fully processed. */
  commit(position: Position): Promise<void>;
  close(): Promise<void>;
}

/** A step that turns each micro-batch into another (an LLM call, an enrichment). */
export interface Transform {
  apply(input: Table, signal: AbortSignal): Promise<Table>;
  close(): Promise<void>;
}

/**
 * A parameterised query answered for a whole micro-batch at once: `keys` holds the distinct
 * values of the key columns, the result holds every matching row (key columns included).
 * Postgres and ClickHouse implement it as one `WHERE id = ANY(@ids)` query per batch.
 */
export interface Lookup {
  lookup(keys: Table, signal: AbortSignal): Promise<Table>;
  close(): Promise<void>;
}

export type SinkAck =
  /** Rows are durable once `write` resolves (a broker that acknowledged them). */
  | "on-write"
  /**
   * Rows are durable only after `flush` resolves, which publishes the whole output at once (a
   * file renamed into place). A run that fails, or is stopped before a bounded source reached
   * its end, calls `abort` instead, so partial output is never published.
   */
  | "on-flush";

export interface Sink {
  readonly acknowledges: SinkAck;
  /** Accepts rows; the sink must copy what it keeps, since `rows` is freed afterwards. */
  write(rows: Table, signal: AbortSignal): Promise<void>;
  /**
   * Optional: how many `write`s the executor may have outstanding at once (default 1). An
   * `on-write` sink that sends over a network says more, so that the next batches are sent
   * while earlier ones wait for their acknowledgement; each `write` still resolves only when
   * its own rows are acknowledged, whatever order they resolve in.
   */
  readonly inFlight?: number;
  /**
   * Makes everything written so far durable (for `on-flush` sinks: publishes it). Called once
   * at the end of a run that did not fail; for an `on-flush` sink only if no bounded source
   * was stopped before its end. An unbounded run that drains after a stop is complete.
   */
  flush(): Promise<void>;
  /** Discards whatever was not flushed (a failed or cut-short run); never throws. */
  abort(): Promise<void>;
  /**
   * Optional: every batch of the stage's input was written, before the run's outcome is
   * known (a Flight edge to another host ends here, so that the peer's part can finish).
   */
  end?(): Promise<void>;
}

export type ConnectorErrorCode =
  /** The step's config is unusable (a missing file, a bad format); retrying cannot help. */
  | "config"
  /** The outside system failed or was unreachable; a retry may help. */
  | "unavailable"
  /** The rows themselves were rejected; splitting the batch isolates them. */
  | "data";

/**
 * What a connector knows about an outside system's error apart from its text, which may
 * quote the rows sent (a value the server could not parse): the control plane sees these.
 */
export interface RemoteFailure {
  /** The connector's own words for what it was doing (`postgresql lookup \`db\``). */
  what: string;
  /** The remote's code (a SQLSTATE, a server error number, an HTTP status), if any. */
  code: string | null;
  /** Whether the connection itself failed (refused, reset, timed out): no rows in its text. */
  network: boolean;
}

export class ConnectorError extends Error {
  constructor(
    readonly code: ConnectorErrorCode,
    message: string,
    options?: { cause?: unknown; remote?: RemoteFailure },
  ) {
    super(message, options);
    this.name = "ConnectorError";
    this.remote = options?.remote ?? null;
  }

  /** Set when the error came from an outside system (`remoteError`). */
  readonly remote: RemoteFailure | null;
}

/** A column of an edge's row type; `type` is null where inference left it open. */
export interface ColumnSpec {
  name: string;
  type: ArrowType | null;
  nullable: boolean;
}

/** What a connector is opened with: the step's config, resources, and the edge's schema. */
export interface ConnectorContext {
  /** The operation's config, with `env(...)`/`secret(...)` already resolved. */
  config: Record<string, unknown>;
  /** Injected resources by slot name: the resource's config. */
  resources: Record<string, Record<string, unknown>>;
  /** For sources: the output row type; for sinks: the input row type; null when open. */
  schema: ColumnSpec[] | null;
  /** Rows per micro-batch a source should aim for. */
  batchRows: number;
  /** A source position to resume after (committed by an earlier run), or null. */
  resumeAfter: Position | null;
  /** The directory relative paths in config are resolved against (the program's). */
  baseDir: string;
  /**
   * Real paths of the directories file paths must resolve into (a daemon's `--allow-path`);
   * undefined when any path may be used (`heddle run`).
   */
  allowPaths?: readonly string[];
  /** The workflow's name, for consumer groups and temp file names. */
  workflow: string;
  /** A source's report of messages after its committed offsets, per partition (for metrics). */
  reportLag?: (topic: string, partitions: Record<string, number>) => void;
  /**
   * Aborted when the run is asked to stop (its sources stop, in-flight batches drain). A sink
   * whose write waits on something that may never come (a Flight edge to a frozen host)
   * gives up some time after it rather than hold the drain.
   */
  stopped?: AbortSignal;
}

export type ConnectorFactory =
  | { role: "source"; open(ctx: ConnectorContext): Promise<Source> }
  | { role: "transform"; open(ctx: ConnectorContext): Promise<Transform> }
  | {
    role: "lookup";
    open(ctx: ConnectorContext): Promise<Lookup>;
    /** The same query without `@params`, starting a pipeline: its result, batch by batch. */
    openSource?(ctx: ConnectorContext): Promise<Source>;
  }
  | { role: "sink"; open(ctx: ConnectorContext): Promise<Sink> };
