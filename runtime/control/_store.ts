/**
 * The control plane's memory: workflow definitions, runs and step attempts in an embedded
 * SQLite database (`node:sqlite`), so that a restarted `heddle local` still knows what was
 * deployed and what ran. It stores metadata only, never record payloads.
 */
import { DatabaseSync } from "node:sqlite";
import type { Run, RunStatus } from "../protocol/mod.ts";

export interface WorkflowRecord {
  name: string;
  file: string;
  source: string;
  irJson: string;
  /** The program's directory, where plugins and relative paths are looked up. */
  baseDir: string;
  version: number;
  deployedAt: string;
}

/** A run as stored: exactly the control channel's `Run`. */
export type RunRecord = Run;

export interface AttemptRecord {
  runId: string;
  stage: string;
  attempt: number;
  outcome: "started" | "failed" | "succeeded";
  message: string;
  time: string;
}

const schema = `
create table if not exists workflows (
  name text primary key, file text not null, source text not null, ir_json text not null,
  base_dir text not null,
  version integer not null, deployed_at text not null);
create table if not exists runs (
  id text primary key, workflow text not null, status text not null, started_at text not null,
  ended_at text not null default '', worker text not null default '',
  summary_json text not null default '{}', error text not null default '');
create table if not exists attempts (
  run_id text not null, stage text not null, attempt integer not null, outcome text not null,
  message text not null, time text not null);
create index if not exists attempts_by_run on attempts(run_id);
`;

type Row = Record<string, string | number | null>;

export class Store {
  #db: DatabaseSync;

  /**
   * Opens (creating if needed) the database at `path`, readable by this user only (SQLite
   * gives its journal files the database's mode); `:memory:` keeps nothing.
   */
  constructor(path: string) {
    if (path !== ":memory:") makePrivate(path);
    this.#db = new DatabaseSync(path);
    this.#db.exec("pragma journal_mode = wal; pragma busy_timeout = 5000;");
    this.#db.exec(schema);
    // A control plane that died mid-run cannot know how those runs ended.
    this.#db.prepare(
      "update runs set status = 'failed', error = 'the control plane stopped during the run', " +
        "ended_at = ? where status in ('pending', 'running', 'draining')",
    ).run(new Date().toISOString());
  }

  saveWorkflow(w: Omit<WorkflowRecord, "version" | "deployedAt">): WorkflowRecord {
    const previous = this.workflow(w.name);
    const record = {
      ...w,
      version: (previous?.version ?? 0) + 1,
      deployedAt: new Date().toISOString(),
    };
    this.#db.prepare(
      "insert or replace into workflows values (?, ?, ?, ?, ?, ?, ?)",
    ).run(
      record.name,
      record.file,
      record.source,
      record.irJson,
      record.baseDir,
      record.version,
      record.deployedAt,
    );
    return record;
  }

  workflow(name: string): WorkflowRecord | undefined {
    const row = this.#db.prepare("select * from workflows where name = ?").get(name) as
      | Row
      | undefined;
    return row && toWorkflow(row);
  }

  workflows(): WorkflowRecord[] {
    return (this.#db.prepare("select * from workflows order by name").all() as Row[]).map(
      toWorkflow,
    );
  }

  createRun(id: string, workflow: string): RunRecord {
    const startedAt = new Date().toISOString();
    this.#db.prepare("insert into runs (id, workflow, status, started_at) values (?, ?, ?, ?)")
      .run(id, workflow, "pending", startedAt);
    return this.run(id)!;
  }

  updateRun(id: string, change: Partial<Omit<RunRecord, "id" | "workflow">>): void {
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

  runs(workflow?: string): RunRecord[] {
    const rows = workflow
      ? this.#db.prepare("select * from runs where workflow = ? order by started_at").all(workflow)
      : this.#db.prepare("select * from runs order by started_at").all();
    return (rows as Row[]).map(toRun);
  }

  recordAttempt(a: AttemptRecord): void {
    this.#db.prepare("insert into attempts values (?, ?, ?, ?, ?, ?)").run(
      a.runId,
      a.stage,
      a.attempt,
      a.outcome,
      a.message,
      a.time,
    );
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
    }));
  }

  close(): void {
    this.#db.close();
  }
}

/** Creates `path` empty with mode 0600, or takes group and world access from an old one. */
function makePrivate(path: string): void {
  try {
    Deno.writeFileSync(path, new Uint8Array(), { createNew: true, mode: 0o600 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  Deno.chmodSync(path, 0o600);
}

function toWorkflow(r: Row): WorkflowRecord {
  return {
    name: String(r.name),
    file: String(r.file),
    source: String(r.source),
    irJson: String(r.ir_json),
    baseDir: String(r.base_dir),
    version: Number(r.version),
    deployedAt: String(r.deployed_at),
  };
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
  };
}
