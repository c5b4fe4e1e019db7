/**
 * Runs a placed run: sends each worker its part of the IR (`partition`), passes on the
 * events of the stages each worker owns, and ends the run once every part ended, with one
 * `run-started` and one `run-finished` that speak for the whole run. When one part fails
 * the others are stopped, so no part waits forever for a peer that is gone. It carries
 * metadata only: batches move between the workers (Flight), never through here.
 */
import type { Ir } from "../../compiler/ir/mod.ts";
import type { RunEvent, WorkerApi } from "../protocol/mod.ts";
import { partition, type Placement } from "./_placement.ts";

/** The parts of a run's summary this module merges (the executor's `RunSummary`). */
interface PartSummary {
  status: "completed" | "failed" | "stopped";
  durationMs: number;
  stages: Record<string, { rowsQuarantined?: number }>;
  rowsQuarantined: number;
  committed: Record<string, unknown>;
  outputs: { stage: string }[];
  error: { message: string; stage: string | null } | null;
}

export interface PlacedRun {
  runId: string;
  workflow: string;
  ir: Ir;
  baseDir: string;
  placement: Placement;
  /** The placed workers' APIs and Flight addresses, by id. */
  workers: Map<string, { api: WorkerApi; flight: string }>;
  onEvent: (event: RunEvent) => void;
}

/** Starts every part; resolves when all ended (the last event is the merged `run-finished`). */
export async function runPlaced(run: PlacedRun): Promise<void> {
  const flight = new Map([...run.workers].map(([id, w]) => [id, w.flight]));
  const parts = partition(run.ir, run.placement, { runId: run.runId, flight });
  const owner = new Map(run.placement.stages.map((s) => [s.id, s.worker]));
  const summaries: PartSummary[] = [];
  const failures: string[] = [];
  let started = false;
  const stopOthers = () => {
    for (const id of parts.keys()) run.workers.get(id)!.api.cancel(run.runId).catch(() => {});
  };
  await Promise.all([...parts].map(async ([worker, ir]) => {
    const onEvent = (event: RunEvent) => {
      if (event.kind === "run-finished") {
        const summary = event.detail.summary as PartSummary;
        summaries.push(summary);
        if (summary.status === "failed") stopOthers();
        return;
      }
      if (event.kind === "run-started") {
        if (started) return;
        started = true;
        const stages = run.placement.stages.map((s) => s.id);
        return run.onEvent({ ...event, detail: { ...event.detail, stages } });
      }
      // A stand-in for a stage of another worker reports nothing: its owner does.
      if (event.stage === "" || owner.get(event.stage) === worker) run.onEvent(event);
    };
    try {
      await run.workers.get(worker)!.api.execute({
        runId: run.runId,
        workflow: run.workflow,
        irJson: JSON.stringify(ir),
        baseDir: run.baseDir,
      }, onEvent);
    } catch (e) {
      failures.push(`worker ${worker}: ${(e as Error)?.message ?? e}`);
      stopOthers();
    }
  }));
  run.onEvent({
    runId: run.runId,
    kind: "run-finished",
    stage: "",
    time: Date.now(),
    detail: { summary: merge(run, summaries, owner, failures) },
  });
}

/** One summary for the run: each stage's numbers from the worker that owns it. */
function merge(
  run: PlacedRun,
  parts: PartSummary[],
  owner: Map<string, string | null>,
  failures: string[],
) {
  const own = <T>(record: Record<string, T>) =>
    Object.fromEntries(Object.entries(record).filter(([id]) => owner.has(id)));
  const stages = Object.assign({}, ...parts.map((p) => own(p.stages)));
  const failed = parts.find((p) => p.status === "failed");
  const error = failures.length > 0
    ? { message: failures.join("; "), stage: null }
    : failed?.error ?? null;
  return {
    runId: run.runId,
    workflow: run.workflow,
    status: error ? "failed" : parts.some((p) => p.status === "stopped") ? "stopped" : "completed",
    durationMs: Math.max(0, ...parts.map((p) => p.durationMs)),
    stages,
    rowsQuarantined: Object.values(stages as PartSummary["stages"])
      .reduce((n, s) => n + (s.rowsQuarantined ?? 0), 0),
    committed: Object.assign({}, ...parts.map((p) => own(p.committed))),
    outputs: parts.flatMap((p) => p.outputs.filter((o) => owner.has(o.stage))),
    error,
    placement: run.placement,
  };
}
