/**
 * The control plane's memory of what was deployed: workflow definitions in the state
 * database, so that a restarted `heddle local` still knows them, and the opening of that
 * database shared with the run history (`_history.ts`), the schedules and the workers. The
 * state database is an embedded SQLite file (`node:sqlite`) or, for `--state
 * postgres://…`, a PostgreSQL database (`_store_pg.ts`); both are used synchronously
 * through `StateDb`, with SQLite's spelling of SQL. It stores metadata only, never record
 * payloads.
 */
import { DatabaseSync } from "node:sqlite";
import { isPostgresUrl, openPostgres } from "./_store_pg.ts";

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

const schema = `
create table if not exists deploys (
  id integer primary key, file text not null, source text not null, ir_json text not null,
  base_dir text not null, deployed_at text not null);
create table if not exists deployed (
  name text primary key, deploy_id integer not null, version integer not null,
  deployed_at text not null);
`;

/** A row as the state database returns it (PostgreSQL's 64-bit integers come as text). */
export type Row = Record<string, string | number | null>;

/** A value bound to a statement's `?`. */
export type StateValue = string | number | bigint | null;

/**
 * A prepared statement: `node:sqlite`'s `StatementSync`, as much as the stores use. On
 * PostgreSQL `run` returns before the write is done (`_store_pg.ts`): reading `changes`
 * waits for it, and a failure is otherwise thrown by the next statement that waits.
 */
export interface StateStatement {
  run(...params: StateValue[]): { changes: number | bigint };
  get(...params: StateValue[]): unknown;
  all(...params: StateValue[]): unknown[];
}

/** The state database, SQLite or PostgreSQL; statements are written in SQLite's SQL. */
export interface StateDb {
  /** PostgreSQL's tables are made by `_store_pg.ts`: SQLite's schemas apply to SQLite only. */
  readonly dialect: "sqlite" | "postgres";
  exec(sql: string): void;
  prepare(sql: string): StateStatement;
  close(): void;
}

/**
 * Opens the state database: a `postgres://` connection string (see `_store_pg.ts`), or
 * the SQLite file at `path`, created if needed and readable by this user only (SQLite
 * gives its journal files the database's mode); `:memory:` keeps nothing. Several
 * processes may share one file (`heddle run` next to a daemon): WAL lets readers go on
 * while one writes, and a writer waits up to 5 s for another's lock instead of failing.
 */
export function openDatabase(path: string): StateDb {
  if (isPostgresUrl(path)) return openPostgres(path);
  if (path !== ":memory:") makePrivate(path);
  const db = new DatabaseSync(path);
  // In WAL mode `synchronous = normal` cannot corrupt the database; a power cut may lose the
  // last moments of history, and a run no longer pays an fsync for every attempt it records.
  db.exec("pragma busy_timeout = 5000; pragma journal_mode = wal; pragma synchronous = normal;");
  return Object.assign(db, { dialect: "sqlite" as const });
}

/**
 * Runs `fn` in a write transaction. SQLite's is taken at once (`begin immediate`), so that
 * two processes never both read and then both try to write, which SQLite would refuse
 * without waiting; PostgreSQL locks the rows a statement writes.
 */
export function writeTransaction<T>(db: StateDb, fn: () => T): T {
  db.exec(db.dialect === "sqlite" ? "begin immediate" : "begin");
  try {
    const result = fn();
    db.exec("commit");
    return result;
  } catch (e) {
    db.exec("rollback");
    throw e;
  }
}

export class Store {
  #db: StateDb;

  /** Opens the deploys kept at `path` (see `openDatabase`). */
  constructor(path: string) {
    this.#db = openDatabase(path);
    if (this.#db.dialect === "sqlite") {
      this.#db.exec(schema);
      this.#migrate();
    }
  }

  /**
   * Stores a deploy once and points each of `workflows` at it (a new version of each);
   * deploys no workflow points at any more are deleted.
   */
  saveDeploy(deploy: DeployRecord, workflows: string[]): number {
    const now = new Date().toISOString();
    return writeTransaction(this.#db, () => {
      const { id } = this.#db.prepare(
        "insert into deploys (file, source, ir_json, base_dir, deployed_at) " +
          "values (?, ?, ?, ?, ?) returning id",
      ).get(deploy.file, deploy.source, deploy.irJson, deploy.baseDir, now) as Row;
      const upsert = this.#db.prepare(
        "insert into deployed (name, deploy_id, version, deployed_at) values (?, ?, 1, ?) " +
          "on conflict(name) do update set deploy_id = excluded.deploy_id, " +
          "version = deployed.version + 1, deployed_at = excluded.deployed_at",
      );
      for (const name of workflows) upsert.run(name, id, now);
      this.#db.exec("delete from deploys where id not in (select deploy_id from deployed)");
      return Number(id);
    });
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
      const { id } = this.#db.prepare(
        "insert into deploys (file, source, ir_json, base_dir, deployed_at) " +
          "values (?, ?, ?, ?, ?) returning id",
      ).get(r.file, r.source, r.ir_json, r.base_dir, r.deployed_at) as Row;
      this.#db.prepare("insert or replace into deployed values (?, ?, ?, ?)").run(
        r.name,
        id,
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
