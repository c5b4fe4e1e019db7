/**
 * The `first-attempts` event: how a cluster worker reports the batches a stage got through
 * at their first attempt, as a running count instead of an `attempt-started` and an
 * `attempt-succeeded` per batch (runtime/worker `_event_report.ts`), so that the control
 * plane's traffic does not grow with the number of batches (docs/cluster.md). Everything
 * that reads attempt events (the history's counts, the UI, the metrics' counters and
 * latency histogram) reads this too: its latency buckets are the metrics' own bounds, and
 * each bucket carries the sum of its durations, so a histogram fed from it is exact.
 */

/** The event's kind. */
export const FIRST_ATTEMPTS = "first-attempts";

/** Upper bounds (inclusive) of the latency buckets, in milliseconds; one more is unbounded. */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  1,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10_000,
  30_000,
  60_000,
];

/** What a `first-attempts` event's detail holds: counts since the stage's previous one. */
export interface FirstAttempts {
  /** First attempts that started. */
  started: number;
  /** First attempts that succeeded, with their rows. */
  succeeded: number;
  rows: number;
  /** Their durations: per bucket of `LATENCY_BOUNDS_MS` (and one above), a count and a sum. */
  counts: number[];
  sumsMs: number[];
  /** The longest of them. */
  maxMs: number;
}

/** The bucket of `LATENCY_BOUNDS_MS` a duration falls in. */
export function latencyBucket(ms: number): number {
  const i = LATENCY_BOUNDS_MS.findIndex((bound) => ms <= bound);
  return i < 0 ? LATENCY_BOUNDS_MS.length : i;
}

/** A `first-attempts` detail as received: numbers checked, arrays of the right length. */
export function firstAttemptsOf(detail: Record<string, unknown>): FirstAttempts {
  const n = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);
  const list = (v: unknown) =>
    Array.from({ length: LATENCY_BOUNDS_MS.length + 1 }, (_, i) => n((v as unknown[])?.[i]));
  return {
    started: n(detail.started),
    succeeded: n(detail.succeeded),
    rows: n(detail.rows),
    counts: list(detail.counts),
    sumsMs: list(detail.sumsMs),
    maxMs: n(detail.maxMs),
  };
}
