/**
 * Schedules as the state database keeps them: one per workflow, its cron expression or
 * interval, when it fires next, and what its last firing did. The next time is stored, not
 * derived, so that a control plane that was down or paused knows a firing was missed, and
 * claiming a firing is one conditional update, so that it happens once even if two control
 * planes share the database.
 */
import { openDatabase, type Row, type StateDb } from "./_store.ts";

export interface ScheduleRecord {
  workflow: string;
  /** The cron expression, or empty for an interval. */
  cron: string;
  /** The interval in milliseconds, or 0 for a cron expression. */
  everyMs: number;
  /** Whether a firing starts a run while another run of the workflow is live. */
  allowOverlap: boolean;
  createdAt: number;
  /** Epoch milliseconds of the next firing. */
  nextAt: number;
  /** Epoch milliseconds of the last firing; 0 before the first. */
  lastAt: number;
  /** What the last firing did: `started RUN`, `skipped: ...` or `failed: ...`. */
  lastOutcome: string;
}

const schema = `
create table if not exists schedules (
  workflow text primary key, cron text not null, every_ms integer not null,
  allow_overlap integer not null, created_at integer not null, next_at integer not null,
  last_at integer not null default 0, last_outcome text not null default '');
`;

export class ScheduleStore {
  #db: StateDb;

  constructor(path: string) {
    this.#db = openDatabase(path);
    if (this.#db.dialect === "sqlite") this.#db.exec(schema);
  }

  /** Creates or replaces the schedule of `s.workflow`. */
  save(s: Omit<ScheduleRecord, "lastAt" | "lastOutcome">): ScheduleRecord {
    this.#db.prepare(
      "insert into schedules (workflow, cron, every_ms, allow_overlap, created_at, next_at) " +
        "values (?, ?, ?, ?, ?, ?) on conflict(workflow) do update set cron = excluded.cron, " +
        "every_ms = excluded.every_ms, allow_overlap = excluded.allow_overlap, " +
        "created_at = excluded.created_at, next_at = excluded.next_at, last_at = 0, " +
        "last_outcome = ''",
    ).run(s.workflow, s.cron, s.everyMs, s.allowOverlap ? 1 : 0, s.createdAt, s.nextAt);
    return this.get(s.workflow)!;
  }

  get(workflow: string): ScheduleRecord | undefined {
    const row = this.#db.prepare("select * from schedules where workflow = ?").get(workflow) as
      | Row
      | undefined;
    return row && toSchedule(row);
  }

  list(): ScheduleRecord[] {
    return (this.#db.prepare("select * from schedules order by workflow").all() as Row[]).map(
      toSchedule,
    );
  }

  delete(workflow: string): boolean {
    return Number(
      this.#db.prepare("delete from schedules where workflow = ?").run(workflow)
        .changes,
    ) > 0;
  }

  /**
   * Moves a due schedule's next firing from `due` to `next`; true when this call did it
   * (nobody fired it meanwhile), which is what allows exactly one firing.
   */
  claim(workflow: string, due: number, next: number, now: number): boolean {
    return Number(
      this.#db.prepare(
        "update schedules set next_at = ?, last_at = ? where workflow = ? and next_at = ?",
      ).run(next, now, workflow, due).changes,
    ) === 1;
  }

  recordOutcome(workflow: string, outcome: string): void {
    this.#db.prepare("update schedules set last_outcome = ? where workflow = ?").run(
      outcome,
      workflow,
    );
  }

  close(): void {
    this.#db.close();
  }
}

function toSchedule(r: Row): ScheduleRecord {
  return {
    workflow: String(r.workflow),
    cron: String(r.cron),
    everyMs: Number(r.every_ms),
    allowOverlap: Number(r.allow_overlap) === 1,
    createdAt: Number(r.created_at),
    nextAt: Number(r.next_at),
    lastAt: Number(r.last_at),
    lastOutcome: String(r.last_outcome),
  };
}
