/**
 * Fault isolation for one micro-batch at one stage: retries with exponential backoff and
 * full jitter, a timeout per attempt, and, when a batch keeps failing, splitting it in
 * halves until the failing rows are isolated. Whole batches get the full retry policy, as
 * do single rows; intermediate halves get one attempt each, so a batch whose every row is
 * bad costs about 2n + 3n attempts rather than 3 per node of the split tree. It must never
 * re-run work that succeeded, and never hold a result of an attempt that timed out.
 */
import type { Table } from "apache-arrow";
import type { ObjectHandle } from "../registry/mod.ts";
import type { RetryPolicy } from "./_plan.ts";

/** A row of the input that the operation reported as failed (a plugin's row error). */
export interface RowFailure {
  row: number;
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
  message: string;
  attempt: number;
  /** The step (of a fused chain) whose failure this was, when the error named one. */
  step?: string;
}

/** A failed attempt that names the step of a fused chain that failed. */
export class StepAttemptError extends Error {
  constructor(message: string, readonly step: string | undefined) {
    super(message);
    this.name = "StepAttemptError";
  }
}

export interface Isolated<T> {
  /** Results of the pieces that succeeded, in row order. */
  results: { piece: Piece; result: AttemptResult<T> }[];
  failures: Quarantine[];
}

export interface AttemptHooks {
  started(attempt: number, rows: number): void;
  failed(attempt: number, rows: number, message: string, retryInMs: number | null): void;
  succeeded(attempt: number, rows: number, durationMs: number): void;
}

export type Operation<T> = (piece: Piece, signal: AbortSignal) => Promise<AttemptResult<T>>;

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

/** One attempt, abandoned (and its late result disposed) when the timeout fires. */
function attemptWithTimeout<T>(
  op: Operation<T>,
  piece: Piece,
  timeoutMs: number,
  outer: AbortSignal,
): Promise<AttemptResult<T>> {
  const controller = new AbortController();
  const onOuter = () => controller.abort(outer.reason);
  outer.addEventListener("abort", onOuter, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort(new Error("timeout"));
      reject(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  const running = op(piece, controller.signal);
  return Promise.race([running, timeout]).catch((error) => {
    if (controller.signal.aborted) running.then((late) => late.dispose(false), () => {});
    throw error;
  }).finally(() => {
    clearTimeout(timer);
    outer.removeEventListener("abort", onOuter);
  });
}

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

  /** Tries `piece` up to `attempts` times; the last error when all failed. */
  async #tryPiece<T>(
    op: Operation<T>,
    piece: Piece,
    attempts: number,
    hooks: AttemptHooks,
  ): Promise<
    { ok: true; result: AttemptResult<T> } | { ok: false; message: string; step?: string }
  > {
    let message = "";
    let step: string | undefined;
    const rows = piece.table.numRows;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (this.signal.aborted) throw new FatalStageError("the run was aborted");
      hooks.started(attempt, rows);
      const start = performance.now();
      try {
        const result = await attemptWithTimeout(op, piece, this.policy.timeoutMs, this.signal);
        hooks.succeeded(attempt, rows, performance.now() - start);
        return { ok: true, result };
      } catch (error) {
        if (error instanceof FatalStageError) throw error;
        message = messageOf(error);
        step = error instanceof StepAttemptError ? error.step : undefined;
        const retryIn = attempt < attempts ? this.#backoff(attempt) : null;
        hooks.failed(attempt, rows, message, retryIn);
        if (retryIn !== null) await sleep(retryIn, this.signal);
      }
    }
    return { ok: false, message, step };
  }

  /** Runs `op` over `table`, isolating rows that keep failing. */
  async run<T>(table: Table, op: Operation<T>, hooks: AttemptHooks): Promise<Isolated<T>> {
    const out: Isolated<T> = { results: [], failures: [] };
    const visit = async (piece: Piece, attempts: number): Promise<void> => {
      const n = piece.table.numRows;
      const tried = await this.#tryPiece(
        op,
        piece,
        n === 1 ? this.policy.attempts : attempts,
        hooks,
      );
      if (tried.ok) {
        out.results.push({ piece, result: tried.result });
        return;
      }
      if (n <= 1) {
        const rows = n === 1 ? [piece.offset] : [];
        if (rows.length) {
          out.failures.push({
            rows,
            message: tried.message,
            attempt: this.policy.attempts,
            step: tried.step,
          });
        }
        return;
      }
      const half = Math.ceil(n / 2);
      const left = { table: piece.table.slice(0, half), offset: piece.offset, whole: false };
      const right = { table: piece.table.slice(half), offset: piece.offset + half, whole: false };
      await visit(left, 1);
      await visit(right, 1);
    };
    await visit({ table, offset: 0, whole: true }, this.policy.attempts);
    return out;
  }
}
