/**
 * What the UI remembers of recent runs, folded from the events the control plane passes on:
 * per-stage counters, attempts and latency, the quarantine events and the log lines. It is
 * bounded (runs, quarantines and lines per run) and lives in memory only; the control
 * plane's stored run (its summary and attempts) is what a page falls back on for a run the
 * journal never saw or has forgotten.
 */
import type { RunEvent } from "../protocol/mod.ts";
import type { LogLine, QuarantineView, StageView } from "./_views.ts";

/** Runs whose events are kept; the oldest is forgotten first. */
const MAX_RUNS = 200;
/** Quarantine events and log lines kept per run (the latest). */
const MAX_QUARANTINES = 200;
const MAX_LINES = 1000;

interface StageEntry extends Omit<StageView, "kind" | "latencyMeanMs"> {
  latencyTotalMs: number;
  latencySamples: number;
}

export interface RunEntry {
  stages: Map<string, StageEntry>;
  quarantines: QuarantineView[];
  logs: LogLine[];
  quarantined: number;
}

function pushBounded<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}

export class Journal {
  #runs = new Map<string, RunEntry>();

  run(runId: string): RunEntry | undefined {
    return this.#runs.get(runId);
  }

  #entry(runId: string): RunEntry {
    let entry = this.#runs.get(runId);
    if (!entry) {
      entry = { stages: new Map(), quarantines: [], logs: [], quarantined: 0 };
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

  /** A line for the run's log, from the UI itself (a stop request, say). */
  note(runId: string, level: LogLine["level"], text: string): void {
    pushBounded(this.#entry(runId).logs, { time: Date.now(), level, stage: "", text }, MAX_LINES);
  }

  /** Folds one event of a run into its entry. */
  add(event: RunEvent): void {
    const entry = this.#entry(event.runId);
    const d = event.detail;
    const line = (level: LogLine["level"], text: string) =>
      pushBounded(entry.logs, { time: event.time, level, stage: event.stage, text }, MAX_LINES);
    switch (event.kind) {
      case "run-started":
        line("info", `run started: ${(d.stages as string[] | undefined)?.length ?? 0} stages`);
        break;
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
      case "attempt-failed": {
        const retry = d.retryInMs !== null && d.retryInMs !== undefined;
        if (retry) this.#stage(entry, event.stage, "").retries++;
        line(
          retry ? "warn" : "error",
          `attempt ${d.attempt} failed on ${d.rows} rows: ${d.error}` +
            (retry ? ` (retrying in ${d.retryInMs} ms)` : ""),
        );
        break;
      }
      case "attempt-succeeded": {
        const stage = this.#stage(entry, event.stage, "");
        const ms = Number(d.durationMs ?? 0);
        stage.latencyTotalMs += ms;
        stage.latencySamples++;
        stage.latencyMaxMs = Math.max(stage.latencyMaxMs, Math.round(ms));
        break;
      }
      case "rows-quarantined": {
        const rows = Number(d.rows ?? 0);
        const stage = this.#stage(entry, event.stage, "");
        stage.quarantined += rows;
        entry.quarantined += rows;
        const handler = d.handler ? String(d.handler) : null;
        pushBounded(entry.quarantines, {
          time: event.time,
          stage: event.stage,
          label: stage.label,
          rows,
          handler,
          message: String(d.message ?? ""),
        }, MAX_QUARANTINES);
        line(
          handler ? "warn" : "error",
          `${rows} rows ${handler ? `sent to handler ${handler}` : "failed"}: ${d.message}`,
        );
        break;
      }
      case "position-committed":
        line("info", `position committed: ${JSON.stringify(d.position)}`);
        break;
      case "run-finished": {
        const summary = d.summary as { status?: string; error?: { message: string } | null };
        line(
          summary?.status === "failed" ? "error" : "info",
          `run ${summary?.status ?? "finished"}${
            summary?.error ? `: ${summary.error.message}` : ""
          }`,
        );
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
