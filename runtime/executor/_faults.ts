/**
 * Fault isolation for one micro-batch at one stage: retries with exponential backoff and
 * full jitter, a timeout per attempt, and, when a batch keeps failing, splitting it in
 * halves until the failing rows are isolated. Whole batches get the full retry policy, as
 * do single rows; intermediate halves get one attempt each, so a batch whose every row is
 * bad costs about 2n + 3n attempts rather than 3 per node of the split tree. Only transient
 * errors get this treatment: a fatal one (`_errors.ts`) ends the run at the first attempt,
 * and once an attempt timed out, the split shares one deadline, so a hung step costs a few
 * timeouts per batch rather than one per row. It must never re-run work that succeeded,
 * and never hold a result of an attempt that timed out.
 */
import type { Table } from "apache-arrow";
import type { ObjectHandle } from "../registry/mod.ts";
import { errorClass } from "./_errors.ts";
import type { RetryPolicy } from "./_plan.ts";

/** A row of the input that the operation reported as failed (a plugin's row error). */
export interface RowFailure {
  row: number;
  /** The step's own words, which may quote the row: for the handler's rows only. */
  message: string;
  /** The step (of a fused chain) that rejected it, when not the stage's own label. */
  step?: string;
}

/**
 * What one successful attempt produced. `handle`, when set, is the value already in the
 * registry with one consumer count per downstream consumer, so it can move on uncopied;
 * `dispose(forwarded)` frees whatever the executor did not hand on.
 */
export interface AttemptResult<T> {
  value: T;
  handle?: ObjectHandle;
  rowErrors: RowFailure[];
  dispose(forwarded: boolean): void;
}

/** An error that no retry or split can fix (a bad config): the stage fails the run. */
export class FatalStageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FatalStageError";
  }
}

export interface Piece {
  table: Table;
  /** Index of the piece's first row in the whole batch. */
  offset: number;
  /** True when the piece is the whole batch (so the batch's handle can be reused). */
  whole: boolean;
}

export interface Quarantine {
  /** The failed rows' indexes in the whole batch. */
  rows: number[];
  /** The last attempt's error message, which may quote the rows: for the handler's rows only. */
  message: string;
  /** The last attempt's error, described for the control plane by `describeError`. */
  error: unknown;
  attempt: number;
  /** The step (of a fused chain) whose failure this was, when the error named one. */
  step?: string;
}

/** A failed attempt that names the step of a fused chain that failed, and whether it timed out. */
export class StepAttemptError extends Error {
  constructor(
    message: string,
    readonly step: string | undefined,
    readonly timedOut = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "StepAttemptError";
  }
}

/** An attempt that did not finish within its timeout (it was abandoned). */
export class AttemptTimeout extends Error {
  constructor(timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
    this.name = "AttemptTimeout";
  }
}

export interface Isolated<T> {
  /** Results of the pieces that succeeded, in row order. */
  results: { piece: Piece; result: AttemptResult<T> }[];
  failures: Quarantine[];
}

export interface AttemptHooks {
  started(attempt: number, rows: number): void;
  /** `error` is what the attempt threw (described for events by `describeError`). */
  failed(attempt: number, rows: number, error: unknown, retryInMs: number | null): void;
  succeeded(attempt: number, rows: number, durationMs: number): void;
}

/**
 * One attempt at `piece`. `timeoutMs` is the attempt's own limit (a plugin invocation passes
 * it on, so the plugin host kills a hung process in time); past it the attempt is abandoned.
 */
export type Operation<T> = (
  piece: Piece,
  signal: AbortSignal,
  timeoutMs: number,
) => Promise<AttemptResult<T>>;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * One attempt, abandoned (and its late result disposed) when the timeout fires or the run
 * is aborted: a failed run must not wait for a hung plugin's invocation to end by itself.
 */
function attemptWithTimeout<T>(
  op: Operation<T>,
  piece: Piece,
  timeoutMs: number,
  outer: AbortSignal,
): Promise<AttemptResult<T>> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onOuter = () => {};
  const abandoned = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const timeout = new AttemptTimeout(timeoutMs);
      controller.abort(timeout);
      reject(timeout);
    }, timeoutMs);
    onOuter = () => {
      controller.abort(outer.reason);
      reject(new FatalStageError("the run was aborted"));
    };
    outer.addEventListener("abort", onOuter, { once: true });
  });
  const running = op(piece, controller.signal, timeoutMs);
  return Promise.race([running, abandoned]).catch((error) => {
    if (controller.signal.aborted) running.then((late) => late.dispose(false), () => {});
    throw error;
  }).finally(() => {
    clearTimeout(timer);
    outer.removeEventListener("abort", onOuter);
  });
}

type Tried<T> =
  | { ok: true; result: AttemptResult<T> }
  | { ok: false; message: string; error: unknown; step?: string; timedOut: boolean };

export class FaultRunner {
  constructor(
    private policy: RetryPolicy,
    private random: () => number,
    private signal: AbortSignal,
  ) {}

  #backoff(attempt: number): number {
    const cap = Math.min(this.policy.maxBackoffMs, this.policy.backoffMs * 2 ** (attempt - 1));
    return this.policy.jitter ? Math.floor(this.random() * cap) : cap;
  }

  /**
   * Tries `piece` up to `attempts` times, each within the policy's timeout and before
   * `deadline` (a `performance.now()` time; null: none); the last error when all failed.
   * A fatal error ends the run at once (as a `FatalStageError`): retrying cannot fix it.
   */
  async #tryPiece<T>(
    op: Operation<T>,
    piece: Piece,
    attempts: number,
    hooks: AttemptHooks,
    deadline: number | null,
  ): Promise<Tried<T>> {
    let failed: Tried<T> = { ok: false, message: "", error: null, timedOut: false };
    const rows = piece.table.numRows;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (this.signal.aborted) throw new FatalStageError("the run was aborted");
      const left = deadline === null ? Infinity : Math.floor(deadline - performance.now());
      if (left <= 0) break;
      const timeoutMs = Math.min(this.policy.timeoutMs, left);
      hooks.started(attempt, rows);
      const start = performance.now();
      try {
        const result = await attemptWithTimeout(op, piece, timeoutMs, this.signal);
        hooks.succeeded(attempt, rows, performance.now() - start);
        return { ok: true, result };
      } catch (error) {
        if (error instanceof FatalStageError) throw error;
        if (errorClass(error) === "fatal") {
          throw new FatalStageError(messageOf(error), { cause: error });
        }
        failed = {
          ok: false,
          message: messageOf(error),
          error,
          step: error instanceof StepAttemptError ? error.step : undefined,
          timedOut: error instanceof AttemptTimeout ||
            (error instanceof StepAttemptError && error.timedOut),
        };
        const left = deadline === null ? Infinity : deadline - performance.now();
        const retryIn = attempt < attempts
          ? Math.max(0, Math.floor(Math.min(this.#backoff(attempt), left)))
          : null;
        hooks.failed(attempt, rows, error, retryIn);
        if (retryIn !== null) await sleep(retryIn, this.signal);
      }
    }
    return failed;
  }

  /**
   * Runs `op` over `table`, isolating rows that keep failing. Once an attempt timed out,
   * the halves split from it share one deadline (one timeout from the split) instead of a
   * full timeout each: a hung plugin costs a few timeouts per batch, not one per row.
   */
  async run<T>(table: Table, op: Operation<T>, hooks: AttemptHooks): Promise<Isolated<T>> {
    const out: Isolated<T> = { results: [], failures: [] };
    const timeoutMs = this.policy.timeoutMs;
    const visit = async (piece: Piece, attempts: number, deadline: number | null) => {
      const n = piece.table.numRows;
      if (n === 0) return;
      const tried = await this.#tryPiece(
        op,
        piece,
        n === 1 ? this.policy.attempts : attempts,
        hooks,
        deadline,
      );
      if (tried.ok) {
        out.results.push({ piece, result: tried.result });
        return;
      }
      const shared = deadline ?? (tried.timedOut ? performance.now() + timeoutMs : null);
      const expired = shared !== null && performance.now() >= shared;
      if (n === 1 || expired) {
        const late = `the split batch's shared deadline (${timeoutMs} ms) passed before ` +
          "these rows were tried on their own";
        const message = expired && n > 1 || !tried.message
          ? `${tried.message || "timed out"}; ${late}`
          : tried.message;
        out.failures.push({
          rows: Array.from({ length: n }, (_, i) => piece.offset + i),
          message,
          error: tried.error ?? new AttemptTimeout(timeoutMs),
          attempt: this.policy.attempts,
          step: tried.step,
        });
        return;
      }
      const half = Math.ceil(n / 2);
      const left = { table: piece.table.slice(0, half), offset: piece.offset, whole: false };
      const right = { table: piece.table.slice(half), offset: piece.offset + half, whole: false };
      await visit(left, 1, shared);
      await visit(right, 1, shared);
    };
    await visit({ table, offset: 0, whole: true }, this.policy.attempts, null);
    return out;
  }
}
