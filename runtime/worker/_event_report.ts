/**
 * How a cluster worker reports a part's events to the control plane without one message per
 * batch. The executor emits a `stage-progress`, an `attempt-started`, an `attempt-succeeded`
 * and a source's `position-committed` for every batch of every stage; sent as they come,
 * they made the control plane's traffic grow with the number of batches (4.8 KB a batch,
 * docs/cluster.md). Here they are folded per stage into what their readers use: the last
 * progress (cumulative counters) and Kafka lag, and the first attempts as a running count
 * with latency buckets (`first-attempts`, runtime/protocol). The fold is sent at most once
 * per report interval and before the part's `run-finished`, with each source's last
 * committed position, which nothing reads while the run goes on.
 *
 * Whatever is rare and says something on its own goes at once, as it came: failed attempts,
 * every attempt after a first and every attempt of a batch that failed before (its pieces,
 * once split: the history shows each attempt of a batch that failed), quarantined rows,
 * package fetches, the start and the end. A batch whose first attempt fails keeps its
 * failure; its start is only counted.
 *
 * The report interval starts at `everyMs` and grows with the part's age (as long as it,
 * so reports come after 1, 2, 4, 8, 16 and 32 s) up to `MAX_REPORT_MS`: a run's reports
 * grow with the log of its length for its first minute, and by one per 30 s after that.
 */
import {
  FIRST_ATTEMPTS,
  type FirstAttempts,
  latencyBucket,
  packReport,
  type RunEvent,
} from "../protocol/mod.ts";

/** The longest a report interval grows to (unless `everyMs` is longer). */
export const MAX_REPORT_MS = 30_000;

/** What is pending for one stage since the last report. */
interface Pending {
  progress?: RunEvent;
  lag?: RunEvent;
  first?: Omit<FirstAttempts, "buckets"> & { time: number; buckets: Map<number, Bucket> };
}

interface Bucket {
  count: number;
  sumMs: number;
}

/** Kinds folded into the last one of their stage. */
const LATEST: Record<string, "progress" | "lag"> = {
  "stage-progress": "progress",
  "source-lag": "lag",
};

export class EventReport {
  #pending = new Map<string, Pending>();
  /** Batches (`stage\0batch`) that failed an attempt: all their attempts go one by one. */
  #troubled = new Set<string>();
  /** Each source's last committed position: nobody reads it live, so it goes at the end. */
  #positions = new Map<string, RunEvent>();
  #runId = "";
  #timer: ReturnType<typeof setTimeout> | undefined;
  #started: number;
  #closed = false;

  constructor(
    private readonly send: (event: RunEvent) => void,
    private readonly everyMs: number,
  ) {
    this.#started = Date.now();
  }

  /** Takes one event of the part: folds it, or sends it (after the fold, for the end). */
  push(event: RunEvent): void {
    if (this.#closed) return this.send(event);
    this.#runId = event.runId; // the same for every event of a part
    if (event.kind === "position-committed") return void this.#positions.set(event.stage, event);
    const latest = LATEST[event.kind];
    if (latest) {
      this.#stage(event.stage)[latest] = event;
      return this.#schedule();
    }
    const batch = `${event.stage}\0${event.detail.batch}`;
    if (event.kind === "attempt-failed") this.#troubled.add(batch);
    const attempt = this.#troubled.has(batch) ? 0 : Number(event.detail.attempt);
    if (attempt === 1 && event.kind === "attempt-started") {
      this.#first(event).started++;
      return this.#schedule();
    }
    if (attempt === 1 && event.kind === "attempt-succeeded") {
      const first = this.#first(event);
      const ms = Number(event.detail.durationMs ?? 0);
      const i = latencyBucket(ms);
      const bucket = first.buckets.get(i) ?? { count: 0, sumMs: 0 };
      first.buckets.set(i, bucket);
      bucket.count++;
      bucket.sumMs += ms;
      first.succeeded++;
      first.rows += Number(event.detail.rows ?? 0);
      first.maxMs = Math.max(first.maxMs, ms);
      return this.#schedule();
    }
    if (event.kind === "run-finished") this.#flush(true);
    this.send(event);
  }

  /** Sends what is pending, every stage's in one message (the positions too at the end). */
  #flush(final: boolean): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const events: RunEvent[] = [];
    for (const [stage, p] of this.#pending) {
      if (p.first) {
        const { time, buckets, ...counts } = p.first;
        const detail: FirstAttempts = {
          ...counts,
          // Milliseconds to the microsecond: the metrics' seconds keep their precision.
          buckets: [...buckets].map(([i, b]) => [i, b.count, Math.round(b.sumMs * 1000) / 1000]),
        };
        events.push({
          runId: this.#runId,
          kind: FIRST_ATTEMPTS,
          stage,
          time,
          detail: { ...detail },
        });
      }
      for (const event of [p.progress, p.lag]) if (event) events.push(event);
    }
    this.#pending.clear();
    if (final) events.push(...this.#positions.values());
    if (final) this.#positions.clear();
    if (events.length === 1) this.send(events[0]);
    if (events.length > 1) this.send(packReport(this.#runId, events));
  }

  /** The part ended: sends what is pending; later events go as they come. */
  close(): void {
    this.#flush(true);
    this.#closed = true;
  }

  #stage(stage: string): Pending {
    let p = this.#pending.get(stage);
    if (!p) this.#pending.set(stage, p = {});
    return p;
  }

  #first(event: RunEvent): NonNullable<Pending["first"]> {
    const p = this.#stage(event.stage);
    p.first ??= { time: 0, started: 0, succeeded: 0, rows: 0, buckets: new Map(), maxMs: 0 };
    p.first.time = event.time;
    return p.first;
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    const age = Date.now() - this.#started;
    const ms = Math.min(Math.max(this.everyMs, age), Math.max(this.everyMs, MAX_REPORT_MS));
    this.#timer = setTimeout(() => this.#flush(false), ms);
  }
}
