/**
 * What the UI remembers of recent runs beyond the run history (docs/history.md), folded from
 * the events the control plane passes on: live per-stage rows, attempts, retries, latency
 * and quarantined rows. It is bounded (runs) and lives in memory only; for a run it never
 * saw, a page shows the stored counters.
 */
import { FIRST_ATTEMPTS, firstAttemptsOf, type RunEvent } from "../protocol/mod.ts";
import type { StageView } from "./_views.ts";

/** Runs whose events are kept; the oldest is forgotten first. */
const MAX_RUNS = 200;

interface StageEntry extends Omit<StageView, "kind" | "latencyMeanMs"> {
  latencyTotalMs: number;
  latencySamples: number;
}

export interface RunEntry {
  stages: Map<string, StageEntry>;
  quarantined: number;
}

export class Journal {
  #runs = new Map<string, RunEntry>();

  run(runId: string): RunEntry | undefined {
    return this.#runs.get(runId);
  }

  #entry(runId: string): RunEntry {
    let entry = this.#runs.get(runId);
    if (!entry) {
      entry = { stages: new Map(), quarantined: 0 };
      this.#runs.set(runId, entry);
      const oldest = this.#runs.keys().next().value;
      if (this.#runs.size > MAX_RUNS && oldest !== undefined) this.#runs.delete(oldest);
    }
    return entry;
  }

  #stage(entry: RunEntry, id: string, label: string): StageEntry {
    let stage = entry.stages.get(id);
    if (!stage) {
      stage = {
        id,
        label,
        batches: 0,
        rowsIn: 0,
        rowsOut: 0,
        rowsPerSecond: 0,
        attempts: 0,
        retries: 0,
        latencyMaxMs: 0,
        latencyTotalMs: 0,
        latencySamples: 0,
        quarantined: 0,
      };
      entry.stages.set(id, stage);
    }
    if (label && !stage.label) stage.label = label;
    return stage;
  }

  /** Folds one event of a run into its entry. */
  add(event: RunEvent): void {
    const entry = this.#entry(event.runId);
    const d = event.detail;
    switch (event.kind) {
      case "stage-progress": {
        const stage = this.#stage(entry, event.stage, String(d.label ?? ""));
        stage.batches = Number(d.batches ?? 0);
        stage.rowsIn = Number(d.rowsIn ?? 0);
        stage.rowsOut = Number(d.rowsOut ?? 0);
        stage.rowsPerSecond = Number(d.rowsPerSecond ?? 0);
        break;
      }
      case "attempt-started":
        this.#stage(entry, event.stage, "").attempts++;
        break;
      case "attempt-failed":
        if (d.retryInMs !== null && d.retryInMs !== undefined) {
          this.#stage(entry, event.stage, "").retries++;
        }
        break;
      case "attempt-succeeded": {
        const stage = this.#stage(entry, event.stage, "");
        const ms = Number(d.durationMs ?? 0);
        stage.latencyTotalMs += ms;
        stage.latencySamples++;
        stage.latencyMaxMs = Math.max(stage.latencyMaxMs, Math.round(ms));
        break;
      }
      case FIRST_ATTEMPTS: {
        // A cluster worker's running count (runtime/protocol): the same sums, folded.
        const stage = this.#stage(entry, event.stage, "");
        const first = firstAttemptsOf(d);
        stage.attempts += first.started;
        stage.latencyTotalMs += first.buckets.reduce((sum, [, , ms]) => sum + ms, 0);
        stage.latencySamples += first.succeeded;
        stage.latencyMaxMs = Math.max(stage.latencyMaxMs, Math.round(first.maxMs));
        break;
      }
      case "rows-quarantined": {
        const rows = Number(d.rows ?? 0);
        this.#stage(entry, event.stage, "").quarantined += rows;
        entry.quarantined += rows;
        break;
      }
    }
  }
}

/** A stage entry as the page shows it, with its IR kind. */
export function stageView(stage: StageEntry, kind: string): StageView {
  const { latencyTotalMs, latencySamples, ...rest } = stage;
  return {
    ...rest,
    kind,
    latencyMeanMs: latencySamples > 0 ? Math.round(latencyTotalMs / latencySamples) : 0,
  };
}
