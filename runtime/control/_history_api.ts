/**
 * The read side of the run history as the control channel offers it (`getRun`, `listRuns`,
 * `listLogs`): one implementation for the control plane, which serves it over gRPC, and for
 * `heddle workflow runs|status|logs` reading a state directory's database directly, so both
 * page, filter and refuse bad requests the same way.
 */
import {
  type Attempt,
  type ControlApi,
  ControlError,
  type ListLogsRequest,
  type ListRunsRequest,
  type LogPage,
  type Run,
  type RunDetails,
  type RunPage,
  type RunStatus,
} from "../protocol/mod.ts";
import { type AttemptRecord, History, LIVE_STATUSES } from "./_history.ts";
import { isPostgresUrl } from "./_store_pg.ts";

/** What reads the history. */
export type HistoryApi = Pick<ControlApi, "getRun" | "listRuns" | "listLogs" | "getRunDetails">;

/** Runs one `ListRuns` page holds at most, and by default. */
const MAX_PAGE = 1000;
const DEFAULT_PAGE = 100;

const STATUSES: readonly string[] = [...LIVE_STATUSES, "succeeded", "failed", "stopped"];

export class HistoryQueries implements HistoryApi {
  constructor(private readonly history: History) {}

  getRun(runId: string): Promise<Run> {
    const record = this.history.run(runId);
    return record
      ? Promise.resolve(record)
      : Promise.reject(new ControlError(`no run \`${runId}\``, "not-found"));
  }

  listRuns(request: ListRunsRequest = {}): Promise<RunPage> {
    const size = Math.min(MAX_PAGE, Math.max(1, request.pageSize || DEFAULT_PAGE));
    const token = request.pageToken ? Number(request.pageToken) : null;
    if (token !== null && !Number.isSafeInteger(token)) {
      return Promise.reject(new ControlError(`bad page token \`${request.pageToken}\``, "invalid"));
    }
    if (request.status && !STATUSES.includes(request.status)) {
      return Promise.reject(
        new ControlError(
          `unknown run status \`${request.status}\` (one of: ${STATUSES.join(", ")})`,
          "invalid",
        ),
      );
    }
    const page = this.history.runs(
      {
        workflow: request.workflow || undefined,
        status: (request.status || undefined) as RunStatus,
      },
      size,
      token,
    );
    return Promise.resolve({ runs: page.runs, nextPageToken: page.next?.toString() ?? "" });
  }

  listLogs(request: ListLogsRequest): Promise<LogPage> {
    if (!this.history.run(request.runId)) {
      return Promise.reject(new ControlError(`no run \`${request.runId}\``, "not-found"));
    }
    return Promise.resolve(this.history.logs(request));
  }

  getRunDetails(runId: string): Promise<RunDetails> {
    const run = this.history.run(runId);
    if (!run) return Promise.reject(new ControlError(`no run \`${runId}\``, "not-found"));
    const attempts = attemptsOf(this.history.attempts(runId));
    const quarantined = this.history.quarantined(runId);
    const summary = JSON.parse(run.summaryJson || "{}");
    return Promise.resolve({
      runId,
      attempts,
      attemptsTotal: Math.max(attempts.length, Number(summary.attempts ?? 0)),
      quarantined,
      quarantinedTotal: Math.max(quarantined.length, Number(summary.quarantined ?? 0)),
    });
  }
}

/**
 * The attempts worth showing: every attempt of each batch that failed at least once (its
 * failures, and the retry that succeeded or the last one that gave up), in order. A batch
 * that succeeded at its first attempt is only counted.
 */
export function troubledAttempts(attempts: Attempt[]): Attempt[] {
  const key = (a: Attempt) => `${a.stage}\0${a.batch}`;
  const troubled = new Set(attempts.filter((a) => a.outcome === "failed").map(key));
  return attempts.filter((a) => troubled.has(key(a)));
}

/**
 * One `Attempt` per try from the stored attempt events: a start and the failure or success
 * that ended it (same stage, batch and number) make one attempt. Rows stored before batches
 * were are not paired.
 */
export function attemptsOf(records: AttemptRecord[]): Attempt[] {
  const open = new Map<string, Attempt>();
  const attempts: Attempt[] = [];
  for (const r of records) {
    const key = r.batch < 0 ? null : `${r.stage}\0${r.batch}\0${r.attempt}`;
    let attempt = key === null ? undefined : open.get(key);
    if (!attempt) {
      attempt = {
        stage: r.stage,
        batch: r.batch,
        attempt: r.attempt,
        outcome: "running",
        rows: r.rows,
        errorClass: "",
        errorKind: "",
        message: "",
        retryInMs: -1,
        durationMs: 0,
        time: r.time,
      };
      attempts.push(attempt);
      if (key !== null) open.set(key, attempt);
    }
    if (r.outcome === "started") continue;
    Object.assign(attempt, {
      outcome: r.outcome,
      errorClass: r.errorClass,
      errorKind: r.errorKind,
      message: r.message,
      retryInMs: r.retryInMs,
      durationMs: r.durationMs,
    });
    if (key !== null) open.delete(key);
  }
  return attempts;
}

/**
 * Reads the history in the database at `path` without a control plane; the database must
 * exist (a missing one is `not-found`, since opening would create it).
 */
export function openHistory(path: string): HistoryApi & { close(): void } {
  try {
    if (!isPostgresUrl(path)) Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ControlError(`no run history at ${path}`, "not-found");
    }
    throw e;
  }
  const history = new History(path);
  const queries = new HistoryQueries(history);
  return {
    getRun: (id) => queries.getRun(id),
    listRuns: (request) => queries.listRuns(request),
    listLogs: (request) => queries.listLogs(request),
    getRunDetails: (runId) => queries.getRunDetails(runId),
    close: () => history.close(),
  };
}
