/**
 * The run history: every run's state, per-stage counters, attempts and log lines, kept in
 * the state database so that they outlive the process that ran them. Several processes
 * write one database at once (a daemon and any number of `heddle run`), so every run names
 * its owner (host, process, instance) and only runs whose owner is gone are closed as
 * failed when a history opens. It stores metadata and messages only, never a row's values.
 */
import type {
  ListLogsRequest,
  LogLevel,
  LogLine,
  LogPage,
  QuarantinedRow,
  Run,
  RunStatus,
} from "../protocol/mod.ts";
import { openDatabase, type Row, type StateDb, writeTransaction } from "./_store.ts";

/** A run as stored: exactly the control channel's `Run`. */
export type RunRecord = Run;

/** One attempt event as stored: its start, its failure or its success. */
export interface AttemptRecord {
  runId: string;
  stage: string;
  attempt: number;
  outcome: "started" | "failed" | "succeeded";
  message: string;
  time: string;
  /** The stage's batch number; -1 in rows stored before it was. */
  batch: number;
  rows: number;
  /** The failure's `ErrorInfo` class and kind; empty unless failed. */
  errorClass: string;
  errorKind: string;
  /** The wait before the next attempt; -1 when none follows or the attempt did not fail. */
  retryInMs: number;
  durationMs: number;
}

/** A log line before it is stored (the database numbers it). */
export type NewLogLine = Omit<LogLine, "seq">;

/** A page of runs, newest first, and the token of the next page (null: no more). */
export interface RunPage {
  runs: RunRecord[];
  next: number | null;
}

/** Which runs `runs()` lists. */
export interface RunFilter {
  workflow?: string;
  status?: RunStatus;
}

/** States of a run that has not ended. */
export const LIVE_STATUSES: readonly RunStatus[] = ["pending", "running", "draining"];
const LIVE = `('pending', 'running', 'draining')`;

/** Log lines one `logs()` page holds at most, and by default. */
const MAX_LOG_PAGE = 10_000;
const DEFAULT_LOG_PAGE = 1000;

const schema = `
create table if not exists runs (
  id text primary key, workflow text not null, status text not null, started_at text not null,
  ended_at text not null default '', worker text not null default '',
  summary_json text not null default '{}', error text not null default '');
create index if not exists runs_by_workflow on runs(workflow);
create table if not exists attempts (
  run_id text not null, stage text not null, attempt integer not null, outcome text not null,
  message text not null, time text not null);
create index if not exists attempts_by_run on attempts(run_id);
create table if not exists logs (
  seq integer primary key autoincrement, run_id text not null, stage text not null,
  level text not null, time text not null, message text not null);
create index if not exists logs_by_run on logs(run_id, seq);
create table if not exists quarantined_rows (
  run_id text not null, time text not null, stage text not null, step text not null,
  handler text not null, batch integer not null, row_index integer not null,
  error_class text not null, error_kind text not null, column_name text not null,
  message text not null, attempt integer not null);
create index if not exists quarantined_rows_by_run on quarantined_rows(run_id);
`;

/** Columns added to tables after their first version, with their definitions. */
const ADDED_COLUMNS: Record<string, Record<string, string>> = {
  runs: {
    origin: "text not null default ''",
    owner: "text not null default ''",
  },
  attempts: {
    batch: "integer not null default -1",
    row_count: "integer not null default 0",
    error_class: "text not null default ''",
    error_kind: "text not null default ''",
    retry_in_ms: "integer not null default -1",
    duration_ms: "real not null default 0",
  },
};

/**
 * Whether a live run whose process died may be resumed by a control plane (cluster or `heddle local`): a run it
 * placed (not one of `heddle run`, whose worker died with it) that was not being stopped.
 */
export function resumable(run: RunRecord): boolean {
  return run.status === "running" && run.origin !== "heddle run" && run.worker !== "";
}

/** Histories open in this process, by instance id: their runs are not orphans. */
const openHere = new Set<string>();

export class History {
  #db: StateDb;
  /** `host/pid/instance`: who writes this history's runs. */
  readonly owner: string;
  #instance = crypto.randomUUID();
  /** Runs of dead owners this history took over (`adopt`): its owner resumes them. */
  readonly adopted: RunRecord[] = [];

  /**
   * Opens the history at `path` (see `openDatabase`) and closes the runs of dead owners,
   * except those `adopt` takes over (a restarted control plane, runtime/control/
   * _recovery.ts): they become this history's, still live, listed in `adopted`. Runs a
   * control plane would resume (`resumable`) are left live by every other opener (a reader,
   * `heddle run`): failing them would take them from the control plane that comes back.
   */
  constructor(path: string, adopt?: (run: RunRecord) => boolean) {
    this.#db = openDatabase(path);
    this.owner = `${Deno.hostname()}/${Deno.pid}/${this.#instance}`;
    openHere.add(this.#instance);
    if (this.#db.dialect === "postgres") {
      // The tables are made when it is opened. Only the leader writes, and it opens a history
      // that adopts only once it took the lease (cli/_state.ts): every other owner of a live
      // run is then a former leader, dead or fenced off. A history opened only to read
      // (`heddle workflow runs --state`) has no `adopt` and touches nothing.
      if (adopt) writeTransaction(this.#db, () => this.#closeOrphans(adopt, () => false));
      return;
    }
    writeTransaction(this.#db, () => {
      this.#db.exec(schema);
      for (const [table, columns] of Object.entries(ADDED_COLUMNS)) {
        const have = new Set(
          (this.#db.prepare(`pragma table_info(${table})`).all() as Row[]).map((c) => c.name),
        );
        for (const [name, type] of Object.entries(columns)) {
          if (!have.has(name)) this.#db.exec(`alter table ${table} add column ${name} ${type}`);
        }
      }
    });
    this.#closeOrphans(adopt ?? (() => false));
  }

  createRun(id: string, workflow: string, origin: string): RunRecord {
    this.#db.prepare(
      "insert into runs (id, workflow, status, started_at, origin, owner) values (?, ?, ?, ?, ?, ?)",
    ).run(id, workflow, "pending", new Date().toISOString(), origin, this.owner);
    return this.run(id)!;
  }

  updateRun(id: string, change: Partial<Omit<RunRecord, "id" | "workflow" | "origin">>): void {
    const columns: Record<string, string> = {
      status: "status",
      startedAt: "started_at",
      endedAt: "ended_at",
      worker: "worker",
      summaryJson: "summary_json",
      error: "error",
    };
    const entries = Object.entries(change).filter(([k]) => k in columns);
    if (entries.length === 0) return;
    const sets = entries.map(([k]) => `${columns[k]} = ?`).join(", ");
    this.#db.prepare(`update runs set ${sets} where id = ?`).run(
      ...entries.map(([, v]) => v as string),
      id,
    );
  }

  run(id: string): RunRecord | undefined {
    const row = this.#db.prepare("select * from runs where id = ?").get(id) as Row | undefined;
    return row && toRun(row);
  }

  /** Runs newest first, `limit` at a time; `before` is the `next` of the previous page. */
  runs(filter: RunFilter, limit: number, before: number | null): RunPage {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.workflow) where.push("workflow = ?"), args.push(filter.workflow);
    if (filter.status) where.push("status = ?"), args.push(filter.status);
    if (before !== null) where.push("rowid < ?"), args.push(before);
    const rows = this.#db.prepare(
      `select rowid, * from runs ${where.length ? `where ${where.join(" and ")}` : ""} ` +
        "order by rowid desc limit ?",
    ).all(...args, limit + 1) as Row[];
    const page = rows.slice(0, limit);
    return {
      runs: page.map(toRun),
      next: rows.length > limit ? Number(page[page.length - 1].rowid) : null,
    };
  }

  /** Ids of this history's live runs (pending, running or draining) of `workflow`. */
  ownLiveRuns(workflow: string): string[] {
    return (this.#db.prepare(
      `select id from runs where workflow = ? and owner = ? and status in ${LIVE} order by rowid`,
    ).all(workflow, this.owner) as Row[]).map((r) => String(r.id));
  }

  /** Deletes finished runs (and their attempts and log lines) beyond the newest `keep`. */
  pruneRuns(keep: number): void {
    const cutoff = this.#db.prepare("select rowid from runs order by rowid desc limit 1 offset ?")
      .get(keep) as Row | undefined;
    if (!cutoff) return;
    const finished = `select id from runs where status not in ${LIVE} and rowid <= ?`;
    writeTransaction(this.#db, () => {
      this.#db.prepare(`delete from attempts where run_id in (${finished})`).run(cutoff.rowid);
      this.#db.prepare(`delete from logs where run_id in (${finished})`).run(cutoff.rowid);
      this.#db.prepare(`delete from quarantined_rows where run_id in (${finished})`)
        .run(cutoff.rowid);
      this.#db.prepare(`delete from runs where id in (${finished})`).run(cutoff.rowid);
    });
  }

  /**
   * Stores attempt events in one transaction: a busy stream sends several per batch, and a
   * statement and a commit each cost more than the batch's own work.
   */
  recordAttempts(attempts: readonly AttemptRecord[]): void {
    if (attempts.length === 0) return;
    const insert = this.#db.prepare(
      "insert into attempts (run_id, stage, attempt, outcome, message, time, batch, row_count, " +
        "error_class, error_kind, retry_in_ms, duration_ms) values (?, ?, ?, ?, ?, ?, ?, ?, ?, " +
        "?, ?, ?)",
    );
    writeTransaction(this.#db, () => {
      for (const a of attempts) {
        insert.run(
          a.runId,
          a.stage,
          a.attempt,
          a.outcome,
          a.message,
          a.time,
          a.batch,
          a.rows,
          a.errorClass,
          a.errorKind,
          a.retryInMs,
          a.durationMs,
        );
      }
    });
  }

  attempts(runId: string): AttemptRecord[] {
    return (this.#db.prepare("select * from attempts where run_id = ? order by rowid").all(
      runId,
    ) as Row[]).map((r) => ({
      runId: String(r.run_id),
      stage: String(r.stage),
      attempt: Number(r.attempt),
      outcome: r.outcome as AttemptRecord["outcome"],
      message: String(r.message),
      time: String(r.time),
      batch: Number(r.batch),
      rows: Number(r.row_count),
      errorClass: String(r.error_class),
      errorKind: String(r.error_kind),
      retryInMs: Number(r.retry_in_ms),
      durationMs: Number(r.duration_ms),
    }));
  }

  recordQuarantined(runId: string, rows: QuarantinedRow[]): void {
    const insert = this.#db.prepare(
      "insert into quarantined_rows (run_id, time, stage, step, handler, batch, row_index, " +
        "error_class, error_kind, column_name, message, attempt) " +
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    writeTransaction(this.#db, () => {
      for (const r of rows) {
        insert.run(
          runId,
          r.time,
          r.stage,
          r.step,
          r.handler,
          r.batch,
          r.row,
          r.errorClass,
          r.errorKind,
          r.column,
          r.message,
          r.attempt,
        );
      }
    });
  }

  quarantined(runId: string): QuarantinedRow[] {
    return (this.#db.prepare("select * from quarantined_rows where run_id = ? order by rowid")
      .all(runId) as Row[]).map((r) => ({
        time: String(r.time),
        stage: String(r.stage),
        step: String(r.step),
        handler: String(r.handler),
        batch: Number(r.batch),
        row: Number(r.row_index),
        errorClass: String(r.error_class),
        errorKind: String(r.error_kind),
        column: String(r.column_name),
        message: String(r.message),
        attempt: Number(r.attempt),
      }));
  }

  appendLog(line: NewLogLine): void {
    this.#db.prepare(
      "insert into logs (run_id, stage, level, time, message) values (?, ?, ?, ?, ?)",
    ).run(line.runId, line.stage, line.level, line.time, line.message);
  }

  /**
   * A run's log lines after `after`, oldest first. The run's state is read before its
   * lines, and a run's last lines are written before its final state: so a page read from
   * an ended run holds every line that run will ever have.
   */
  logs(request: ListLogsRequest): LogPage {
    const run = this.run(request.runId);
    const ended = run !== undefined && !LIVE_STATUSES.includes(run.status);
    const limit = Math.min(MAX_LOG_PAGE, Math.max(1, request.limit || DEFAULT_LOG_PAGE));
    const after = request.after ?? 0;
    const rows = this.#db.prepare(
      "select * from logs where run_id = ? and seq > ? " +
        `${request.stage ? "and stage = ? " : ""}order by seq limit ?`,
    ).all(
      request.runId,
      after,
      ...(request.stage ? [request.stage] : []),
      limit + 1,
    ) as Row[];
    const lines = rows.slice(0, limit).map((r) => ({
      seq: Number(r.seq),
      runId: String(r.run_id),
      stage: String(r.stage),
      level: r.level as LogLevel,
      time: String(r.time),
      message: String(r.message),
    }));
    return {
      lines,
      next: lines.at(-1)?.seq ?? after,
      complete: ended && rows.length <= limit,
    };
  }

  close(): void {
    openHere.delete(this.#instance);
    this.#db.close();
  }

  /**
   * Fails the unfinished runs whose owner is gone: a process that died mid-run cannot say
   * how its runs ended. An owner is gone when it is this host's and its process no longer
   * exists (or is this process, whose history was not open here). Owners on other hosts
   * are left alone; runs written before owners were recorded have none and count as gone.
   * `alive` decides instead on a PostgreSQL database, where the lease does. Runs a control
   * plane would resume (`resumable`) are left live unless this history adopts them.
   */
  #closeOrphans(
    adopt: (run: RunRecord) => boolean,
    alive = ownerAlive,
  ): void {
    const owners = (this.#db.prepare(`select distinct owner from runs where status in ${LIVE}`)
      .all() as Row[]).map((r) => String(r.owner));
    const live = this.#db.prepare(`select * from runs where owner = ? and status in ${LIVE}`);
    const take = this.#db.prepare("update runs set owner = ? where id = ?");
    const fail = this.#db.prepare(
      "update runs set status = 'failed', error = 'the process running it stopped during the " +
        "run', ended_at = ? where id = ?",
    );
    for (const owner of owners) {
      if (alive(owner)) continue;
      for (const run of (live.all(owner) as Row[]).map(toRun)) {
        if (adopt(run)) {
          take.run(this.owner, run.id);
          this.adopted.push(run);
        } else if (!resumable(run)) {
          fail.run(new Date().toISOString(), run.id);
        }
      }
    }
  }
}

/** Whether the process that wrote `owner` (`host/pid/instance`) may still be running. */
function ownerAlive(owner: string): boolean {
  const [host, pid, instance] = owner.split("/");
  if (!instance) return false;
  if (host !== Deno.hostname()) return true;
  if (Number(pid) === Deno.pid) return openHere.has(instance);
  try {
    // Signal 0 checks the process exists without touching it.
    Deno.kill(Number(pid), 0 as unknown as Deno.Signal);
    return true;
  } catch (e) {
    return !(e instanceof Deno.errors.NotFound);
  }
}

function toRun(r: Row): RunRecord {
  return {
    id: String(r.id),
    workflow: String(r.workflow),
    status: r.status as RunStatus,
    startedAt: String(r.started_at),
    endedAt: String(r.ended_at),
    worker: String(r.worker),
    summaryJson: String(r.summary_json),
    error: String(r.error),
    origin: String(r.origin ?? ""),
  };
}
