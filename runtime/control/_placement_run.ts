/**
 * Runs a placed run: sends each worker its part of the IR (`partition`), passes on the
 * events of the stages each worker owns, and ends the run once every part ended, with one
 * `run-started` and one `run-finished` that speak for the whole run. When one part fails
 * the others are stopped, so no part waits forever for a peer that is gone. When a worker
 * is lost (its stream broke, or it missed its heartbeats) the run is placed again on the
 * live workers and started over: sources resume from their committed positions (a Kafka
 * group's offsets; a file from its start, its outputs replaced as a whole), as a restarted
 * run on one host does. It carries metadata only: batches move between the workers.
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

/** Placements a run gets at most: the first and two after lost workers. */
const MAX_PLACEMENTS = 3;
/** How long an attempt waits at most for the workers to answer its stops. */
const STOP_ANSWER_MS = 10_000;

/** Waits until every promise settled, or `ms` passed. */
async function settledWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  try {
    await Promise.race([Promise.allSettled(promises), late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface PlacedRun {
  runId: string;
  workflow: string;
  ir: Ir;
  baseDir: string;
  /** Places the run on the workers alive now; throws when it fits none. */
  place(): Placement;
  /** A live worker's API and Flight address; undefined once it is gone. */
  worker(id: string): { api: WorkerApi; flight: string } | undefined;
  /** A placed worker's stream broke: it is gone for the control plane too. */
  lost(id: string, reason: string): void;
  /** Each placement, the first included, before its parts start. */
  onPlaced(placement: Placement): void;
  /**
   * What the edges of this run's placements are named after, before their number (default
   * `RUN~`): a run a restarted control plane resumes names them apart from the parts of the
   * previous process that may still be winding down (`_recovery.ts`).
   */
  edgePrefix?: string;
  onEvent(event: RunEvent): void;
}

/** One attempt's parts, with a way to give up on a worker from outside. */
interface Attempt {
  workers: Set<string>;
  giveUp: Map<string, (reason: string) => void>;
}

export class PlacedRunHandle {
  readonly done: Promise<void>;
  #current: Attempt | null = null;
  #stopped = false;

  constructor(private run: PlacedRun, first: Placement) {
    this.done = this.#loop(first);
  }

  /** A worker was declared dead: the attempt using it gives up on it and is placed again. */
  workerDied(id: string, reason: string): void {
    this.#current?.giveUp.get(id)?.(reason);
  }

  /** The run was asked to stop: no placement after this one. */
  stopping(): string[] {
    this.#stopped = true;
    return [...(this.#current?.workers ?? [])];
  }

  async #loop(first: Placement): Promise<void> {
    let placement = first;
    let started = false;
    const notStarted = (event: RunEvent) => {
      if (event.kind !== "run-started" || !started) run.onEvent(event);
      if (event.kind === "run-started") started = true;
    };
    const run = this.run;
    for (let n = 1;; n++) {
      run.onPlaced(placement);
      const outcome = await this.#attempt(placement, n, notStarted);
      if (outcome.lost.length === 0 || this.#stopped || n === MAX_PLACEMENTS) {
        return this.#finish(placement, outcome.summaries, outcome.lost.map((l) => l.reason));
      }
      try {
        placement = run.place();
      } catch (e) {
        const why = outcome.lost.map((l) => l.reason);
        return this.#finish(placement, [], [...why, (e as Error).message]);
      }
      run.onEvent({
        runId: run.runId,
        kind: "run-replaced",
        stage: "",
        time: Date.now(),
        detail: {
          placement: n + 1,
          lost: outcome.lost.map((l) => l.worker),
          reason: outcome.lost[0].reason,
        },
      });
    }
  }

  async #attempt(placement: Placement, n: number, emit: (event: RunEvent) => void) {
    const run = this.run;
    const workers = [...new Set(placement.groups.map((g) => g.worker!))];
    const flight = new Map(workers.map((id) => [id, run.worker(id)?.flight ?? ""]));
    // Edge ids are the run's and the placement's: a late part of an earlier placement
    // cannot meet a new one.
    const prefix = run.edgePrefix ?? `${run.runId}~`;
    const parts = partition(run.ir, placement, { runId: `${prefix}${n}`, flight });
    const owner = new Map(placement.stages.map((s) => [s.id, s.worker]));
    const attempt: Attempt = { workers: new Set(workers), giveUp: new Map() };
    this.#current = attempt;
    const summaries: PartSummary[] = [];
    const lost: { worker: string; reason: string }[] = [];
    // A lost worker ends the attempt at once: every other part is fenced off (its stream
    // cancelled, so its worker stops it) and left to wind down on its own. Waiting for it
    // could take long: a part sending to a frozen worker waits for room on the edge.
    const abandon = new AbortController();
    const abandoned = new Promise<"">((resolve) =>
      abandon.signal.addEventListener("abort", () => resolve(""), { once: true })
    );
    // Stops go by run id: each is answered before the attempt ends, so that none reaches a
    // worker after the next placement's part of the run started there (and stops that).
    const stops: Promise<unknown>[] = [];
    const stopOthers = () => {
      for (const id of workers) {
        const stop = run.worker(id)?.api.cancel(run.runId).catch(() => {});
        if (stop) stops.push(stop);
      }
    };
    await Promise.all([...parts].map(async ([worker, ir]) => {
      let finished = false;
      // Fencing: once the run gave up on this part (its worker declared dead, its stream
      // broken), the part is told to stop and nothing it still sends is taken. A frozen
      // worker that wakes up cannot add events or a result to a newer placement.
      const fence = new AbortController();
      const onEvent = (event: RunEvent) => {
        if (fence.signal.aborted) return;
        if (event.kind === "run-finished") {
          finished = true;
          const summary = event.detail.summary as PartSummary;
          summaries.push(summary);
          if (summary.status === "failed") stopOthers();
          return;
        }
        if (event.kind === "run-started") {
          const stages = placement.stages.map((s) => s.id);
          return emit({ ...event, detail: { ...event.detail, stages } });
        }
        // A stand-in for a stage of another worker reports nothing: its owner does.
        if (event.stage === "" || owner.get(event.stage) === worker) emit(event);
      };
      const api = run.worker(worker)?.api;
      const gone = new Promise<string>((resolve) => attempt.giveUp.set(worker, resolve));
      try {
        if (!api) throw new Error(`worker ${worker} is gone`);
        const execution = api.execute(
          {
            runId: run.runId,
            workflow: run.workflow,
            irJson: JSON.stringify(ir),
            baseDir: run.baseDir,
          },
          onEvent,
          fence.signal,
        ).then(() => null);
        let reason = await Promise.race([execution, gone, abandoned]);
        if (reason === "") return fence.abort(); // another part's worker was lost
        // A stream that ends without the part's result is a worker lost mid-run (killed:
        // its connection closed), not a part that finished: the run is placed again.
        if (reason === null && !finished) {
          reason = `worker ${worker} ended the run's stream without a result`;
          run.lost(worker, reason);
        }
        if (reason !== null) {
          fence.abort();
          lost.push({ worker, reason });
          abandon.abort();
        }
      } catch (e) {
        fence.abort();
        const reason = `worker ${worker}: ${(e as Error)?.message ?? e}`;
        lost.push({ worker, reason });
        run.lost(worker, reason);
        abandon.abort();
      }
    }));
    // A frozen worker does not answer; it is declared dead and left out of the next
    // placement, so the wait for its answer is bounded.
    await settledWithin(stops, STOP_ANSWER_MS);
    this.#current = null;
    return { summaries, lost };
  }

  #finish(placement: Placement, parts: PartSummary[], failures: string[]): void {
    const run = this.run;
    const owner = new Map(placement.stages.map((s) => [s.id, s.worker]));
    const own = <T>(record: Record<string, T>) =>
      Object.fromEntries(Object.entries(record).filter(([id]) => owner.has(id)));
    const stages = Object.assign({}, ...parts.map((p) => own(p.stages)));
    const failed = parts.find((p) => p.status === "failed");
    const error = failures.length > 0
      ? { message: failures.join("; "), stage: null }
      : failed?.error ?? null;
    run.onEvent({
      runId: run.runId,
      kind: "run-finished",
      stage: "",
      time: Date.now(),
      detail: {
        summary: {
          runId: run.runId,
          workflow: run.workflow,
          status: error
            ? "failed"
            : parts.some((p) => p.status === "stopped")
            ? "stopped"
            : "completed",
          durationMs: Math.max(0, ...parts.map((p) => p.durationMs)),
          stages,
          rowsQuarantined: Object.values(stages as PartSummary["stages"])
            .reduce((n, s) => n + (s.rowsQuarantined ?? 0), 0),
          committed: Object.assign({}, ...parts.map((p) => own(p.committed))),
          outputs: parts.flatMap((p) => p.outputs.filter((o) => owner.has(o.stage))),
          error,
          placement,
        },
      },
    });
  }
}
