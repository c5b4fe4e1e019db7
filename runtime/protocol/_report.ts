/**
 * How a cluster worker's events travel folded (runtime/worker `_event_report.ts`), so that
 * the control plane's traffic does not grow with the number of batches (docs/cluster.md):
 *
 * - `first-attempts`: the batches a stage got through at their first attempt, as a running
 *   count instead of an `attempt-started` and an `attempt-succeeded` per batch. Whatever
 *   reads attempt events (the history's counts, the UI, the metrics' counters and latency
 *   histogram) reads this too: its latency buckets are the metrics' own bounds, and each
 *   bucket carries the sum of its durations, so a histogram fed from it is exact.
 * - `report`: the events of one report in one message; `connectWorker` unpacks it, so
 *   nothing past the transport sees it.
 */
import type { RunEvent } from "./_types.ts";

/** The kinds. */
export const FIRST_ATTEMPTS = "first-attempts";
export const REPORT = "report";

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
  /**
   * Their durations: for each bucket of `LATENCY_BOUNDS_MS` (index `LATENCY_BOUNDS_MS.length`
   * is above the last) that has any, `[index, count, sum of their milliseconds]`.
   */
  buckets: [number, number, number][];
  /** The longest of them. */
  maxMs: number;
}

/** The bucket of `LATENCY_BOUNDS_MS` a duration falls in. */
export function latencyBucket(ms: number): number {
  const i = LATENCY_BOUNDS_MS.findIndex((bound) => ms <= bound);
  return i < 0 ? LATENCY_BOUNDS_MS.length : i;
}

/** A `first-attempts` detail as received: numbers checked, buckets that exist. */
export function firstAttemptsOf(detail: Record<string, unknown>): FirstAttempts {
  const n = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);
  const buckets = (Array.isArray(detail.buckets) ? detail.buckets : [])
    .filter((b): b is unknown[] => Array.isArray(b))
    .map((b) => [n(b[0]), n(b[1]), n(b[2])] as [number, number, number])
    .filter(([i]) => Number.isInteger(i) && i <= LATENCY_BOUNDS_MS.length);
  return {
    started: n(detail.started),
    succeeded: n(detail.succeeded),
    rows: n(detail.rows),
    buckets,
    maxMs: n(detail.maxMs),
  };
}

/** Events as one `report` event of `runId` (their own run ids left out). */
export function packReport(runId: string, events: RunEvent[]): RunEvent {
  const packed = events.map(({ kind, stage, time, detail }) => ({ kind, stage, time, detail }));
  return { runId, kind: REPORT, stage: "", time: Date.now(), detail: { events: packed } };
}

/** The events a received event stands for: a `report`'s own, else itself. */
export function unpackReport(event: RunEvent): RunEvent[] {
  if (event.kind !== REPORT) return [event];
  const events = Array.isArray(event.detail.events) ? event.detail.events : [];
  return events.map((e: Partial<RunEvent>) => ({
    runId: event.runId,
    kind: String(e?.kind ?? ""),
    stage: String(e?.stage ?? ""),
    time: Number(e?.time ?? event.time),
    detail: (e?.detail ?? {}) as Record<string, unknown>,
  }));
}
