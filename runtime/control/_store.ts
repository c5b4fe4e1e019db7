/**
 * The control plane's memory: workflow definitions, runs and step attempts in an embedded
 * SQLite database (`node:sqlite`), so that a restarted `heddle local` still knows what was
 * deployed and what ran. It stores metadata only, never record payloads.
 */
import { DatabaseSync } from "node:sqlite";
import type { Run, RunStatus } from "../protocol/mod.ts";

/** One deploy: the program's (secret-free) source and IR, stored once for its workflows. */
export interface DeployRecord {
  file: string;
  source: string;
  irJson: string;
  /** Where relative paths resolve when the worker has no allowed directories (`heddle run`). */
  baseDir: string;
}

/** A deployed workflow: its deploy (source and IR are shared by the deploy's workflows). */
export interface WorkflowRecord extends DeployRecord {
  name: string;
  deployId: number;
  version: number;
  deployedAt: string;
}

/** A workflow as listed: no source, no IR. */
export type WorkflowSummary = Pick<WorkflowRecord, "name" | "file" | "version" | "deployedAt">;

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
create table if not exists deploys (
  id integer primary key, file text not null, source text not null, ir_json text not null,
  base_dir text not null, deployed_at text not null);
create table if not exists deployed (
  name text primary key, deploy_id integer not null, version integer not null,
  deployed_at text not null);
create table if not exists runs (
  id text primary key, workflow text not null, status text not null, started_at text not null,
  ended_at text not null default '', worker text not null default '',
  summary_json text not null default '{}', error text not null default '');
create index if not exists runs_by_workflow on runs(workflow);
create table if not exists attempts (
  run_id text not null, stage text not null, attempt integer not null, outcome text not null,
  message text not null, time text not null);
create index if not exists attempts_by_run on attempts(run_id);
`;

/** A page of runs, newest first, and the token of the next page (null: no more). */
export interface RunPage {
  runs: RunRecord[];
  next: number | null;
}

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
    this.#migrate();
    // A control plane that died mid-run cannot know how those runs ended.
    this.#db.prepare(
      "update runs set status = 'failed', error = 'the control plane stopped during the run', " +
        "ended_at = ? where status in ('pending', 'running', 'draining')",
    ).run(new Date().toISOString());
  }

  /**
   * Stores a deploy once and points each of `workflows` at it (a new version of each);
   * deploys no workflow points at any more are deleted.
   */
  saveDeploy(deploy: DeployRecord, workflows: string[]): number {
    const now = new Date().toISOString();
    this.#db.exec("begin");
    try {
      const { lastInsertRowid } = this.#db.prepare(
        "insert into deploys (file, source, ir_json, base_dir, deployed_at) values (?, ?, ?, ?, ?)",
      ).run(deploy.file, deploy.source, deploy.irJson, deploy.baseDir, now);
      const upsert = this.#db.prepare(
        "insert into deployed (name, deploy_id, version, deployed_at) values (?, ?, 1, ?) " +
          "on conflict(name) do update set deploy_id = excluded.deploy_id, " +
          "version = version + 1, deployed_at = excluded.deployed_at",
      );
      for (const name of workflows) upsert.run(name, lastInsertRowid, now);
      this.#db.exec("delete from deploys where id not in (select deploy_id from deployed)");
      this.#db.exec("commit");
      return Number(lastInsertRowid);
    } catch (e) {
      this.#db.exec("rollback");
      throw e;
    }
  }

  workflow(name: string): WorkflowRecord | undefined {
    const row = this.#db.prepare(
      "select w.name, w.deploy_id, w.version, w.deployed_at, d.file, d.source, d.ir_json, " +
        "d.base_dir from deployed w join deploys d on d.id = w.deploy_id where w.name = ?",
    ).get(name) as Row | undefined;
    return row && {
      name: String(row.name),
      deployId: Number(row.deploy_id),
      version: Number(row.version),
      deployedAt: String(row.deployed_at),
      file: String(row.file),
      source: String(row.source),
      irJson: String(row.ir_json),
      baseDir: String(row.base_dir),
    };
  }

  workflows(): WorkflowSummary[] {
    return (this.#db.prepare(
      "select w.name, w.version, w.deployed_at, d.file from deployed w " +
        "join deploys d on d.id = w.deploy_id order by w.name",
    ).all() as Row[]).map((r) => ({
      name: String(r.name),
      file: String(r.file),
      version: Number(r.version),
      deployedAt: String(r.deployed_at),
    }));
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

  /** Runs newest first, `limit` at a time; `before` is the `next` of the previous page. */
  runs(workflow: string | undefined, limit: number, before: number | null): RunPage {
    const where = [
      ...(workflow ? ["workflow = ?"] : []),
      ...(before !== null ? ["rowid < ?"] : []),
    ];
    const args = [...(workflow ? [workflow] : []), ...(before !== null ? [before] : [])];
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

  /** Deletes finished runs (and their attempts) beyond the newest `keep`. */
  pruneRuns(keep: number): void {
    const cutoff = this.#db.prepare("select rowid from runs order by rowid desc limit 1 offset ?")
      .get(keep) as Row | undefined;
    if (!cutoff) return;
    const finished = "status not in ('pending', 'running', 'draining') and rowid <= ?";
    this.#db.prepare(
      `delete from attempts where run_id in (select id from runs where ${finished})`,
    ).run(cutoff.rowid);
    this.#db.prepare(`delete from runs where ${finished}`).run(cutoff.rowid);
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

  /**
   * Databases written before deploys were stored once kept a `workflows` table with a copy
   * of the source and IR per workflow: each row becomes a deploy of its own.
   */
  #migrate(): void {
    const old = this.#db.prepare(
      "select 1 from sqlite_master where type = 'table' and name = 'workflows'",
    ).get();
    if (!old) return;
    this.#db.exec("begin");
    for (const r of this.#db.prepare("select * from workflows").all() as Row[]) {
      const { lastInsertRowid } = this.#db.prepare(
        "insert into deploys (file, source, ir_json, base_dir, deployed_at) values (?, ?, ?, ?, ?)",
      ).run(r.file, r.source, r.ir_json, r.base_dir, r.deployed_at);
      this.#db.prepare("insert or replace into deployed values (?, ?, ?, ?)").run(
        r.name,
        lastInsertRowid,
        r.version,
        r.deployed_at,
      );
    }
    this.#db.exec("drop table workflows; commit");
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
