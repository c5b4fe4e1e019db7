/**
 * The read side of the run history as the control channel offers it (`getRun`, `listRuns`,
 * `listLogs`): one implementation for the control plane, which serves it over gRPC, and for
 * `heddle workflow runs|status|logs` reading a state directory's database directly, so both
 * page, filter and refuse bad requests the same way.
 */
import {
  type ControlApi,
  ControlError,
  type ListLogsRequest,
  type ListRunsRequest,
  type LogPage,
  type Run,
  type RunPage,
  type RunStatus,
} from "../protocol/mod.ts";
import { History, LIVE_STATUSES } from "./_history.ts";
import { isPostgresUrl } from "./_store_pg.ts";

/** What reads the history. */
export type HistoryApi = Pick<ControlApi, "getRun" | "listRuns" | "listLogs">;

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
    close: () => history.close(),
  };
}
