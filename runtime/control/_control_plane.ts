/**
 * The control plane: owns workflow definitions and run state, compiles programs, places
 * runs on workers and records every attempt. It sees metadata only (IR, events), never
 * record payloads, and it talks to workers only through `WorkerApi`, whether the worker
 * shares its process or sits behind gRPC.
 */
import {
  type ControlApi,
  ControlError,
  type DeployRequest,
  type DeployResponse,
  type ListLogsRequest,
  type ListRunsRequest,
  type LogPage,
  type Run,
  type RunDetails,
  type RunEvent,
  type RunPage,
  type ScheduleInfo,
  type SetScheduleRequest,
  type WirePackage,
  type WorkerApi,
  type WorkerInfo,
  type WorkflowInfo,
} from "../protocol/mod.ts";
import { type Compiled, compileForDeploy, type CompileOptions } from "./_compile.ts";
import { CompileThread } from "./_compile_thread.ts";
import { MissingSecrets, unsealSecrets } from "./_secrets.ts";
import { redact, redactValues } from "../redact/mod.ts";
import { Store } from "./_store.ts";
import { type AttemptRecord, History, resumable, type RunRecord } from "./_history.ts";
import { type HistoryLimits, RunRecorder } from "./_history_recorder.ts";
import { HistoryQueries } from "./_history_api.ts";
import { place, type Placement, PlacementError } from "./_placement.ts";
import type { Ir } from "../../compiler/ir/mod.ts";
import { Scheduler } from "./_schedule.ts";
import { ScheduleStore } from "./_schedule_store.ts";
import { type PlacedRun, PlacedRunHandle } from "./_placement_run.ts";
import { resumeAdopted } from "./_recovery.ts";
import { DEFAULT_WORKER_TIMEOUT_MS, WorkerRoster } from "./_workers.ts";
import { PackageStore } from "./_packages.ts";

export interface ControlPlaneOptions {
  /** SQLite database path; `:memory:` keeps nothing across restarts. */
  database: string;
  /**
   * Where runs and their logs are kept, when not in `database` (`heddle run` keeps its
   * deploy in memory and its history in the state directory).
   */
  history?: string;
  /** What starts runs through `startRun` (`Run.origin`); default `workflow start`. */
  origin?: string;
  /** How to reach a worker that registers itself over the network. */
  connect?: (info: WorkerInfo) => WorkerApi & { close(): void };
  /** How long a remote worker may miss heartbeats before it is dead (default 10 s). */
  workerTimeoutMs?: number;
  /** `HEDDLE_PATH` for finding plugin manifests when compiling. */
  heddlePath?: string;
  /**
   * Whether deploys may read files next to the program (plugins, its snapshot) on this
   * machine: only `heddle run`, where the caller is this process's user. A daemon compiles
   * what the deploy carries and the operator's module path, nothing else.
   */
  readCallerFiles?: boolean;
  /**
   * Where a daemon keeps its deploys' plugin packages for workers to fetch
   * (`_packages.ts`); undefined: deploys carry none (`heddle run`).
   */
  packages?: string;
  /** Per-request limits and retention (defaults: `DEFAULT_LIMITS`). */
  limits?: Partial<ControlLimits>;
  /** The schedules' clock (tests move it); default `Date.now`. */
  clock?: () => number;
  /**
   * Compile deploys on their own thread, each within this many milliseconds (a daemon:
   * `--compile-timeout`); undefined compiles on the caller's thread (`heddle run`).
   */
  compileTimeoutMs?: number;
  /** How long a finished run's events stay in memory for a late `watch` (default 10 s). */
  finishedGraceMs?: number;
  /**
   * Resume the runs a previous process of this control plane left running (a daemon), by
   * placing them again once their workers are back (`_recovery.ts`); otherwise they fail.
   */
  resumeRuns?: boolean;
}

/** What one request may cost a control plane, and how much history it keeps. */
export interface ControlLimits extends HistoryLimits {
  /** Bytes of program text and files one deploy may carry. */
  maxSourceBytes: number;
  /** Workflows one deploy may declare. */
  maxWorkflows: number;
}

export const DEFAULT_LIMITS: ControlLimits = {
  maxSourceBytes: 1024 * 1024,
  maxWorkflows: 1000,
  keepRuns: 10_000,
  keepLogLines: 10_000,
};

/** How long a finished run's events stay in memory for a late `watch`. */
const FINISHED_GRACE_MS = 10_000;

/** A deployed workflow ready to place: its IR with secrets unsealed. */
interface Prepared {
  workflow: string;
  ir: Ir;
  baseDir: string;
  secrets: Map<string, string>;
}

interface RunState {
  record: RunRecord;
  /** The workers the run's stage groups were placed on. */
  workers: string[];
  /** Places the run again when a worker is lost. */
  handle?: PlacedRunHandle;
  events: RunEvent[];
  listeners: Set<(event: RunEvent) => void>;
  done: Promise<void>;
}

/**
 * Someone who follows everything the control plane sees (the web UI, metrics): every run
 * event with its workflow, every change of a run's record, every deploy's outcome. Called
 * synchronously; an observer must not throw or block.
 */
export interface ControlObserver {
  event?(workflow: string, event: RunEvent): void;
  runChanged?(run: Run): void;
  deployed?(file: string, response: DeployResponse): void;
  /** A remote worker left the roster: it said it was stopping, or it was declared dead. */
  workerGone?(id: string, how: "left" | "dead", reason: string): void;
}

export class ControlPlane implements ControlApi {
  #store: Store;
  #history: History;
  #queries: HistoryQueries;
  #schedules: ScheduleStore;
  #scheduler: Scheduler;
  #origin: string;
  #roster: WorkerRoster;
  #accepts: boolean;
  #runs = new Map<string, RunState>();
  #nextWorker = 0;
  #compile: CompileOptions;
  /** Plain-text secrets of deploys, by deploy id: never stored (`_secrets.ts`). */
  #secrets = new Map<number, Map<string, string>>();
  #limits: ControlLimits;
  #observers = new Set<ControlObserver>();
  #compileThread: CompileThread | null;
  #finishedGraceMs: number;
  #packages: PackageStore | null;
  #stopResuming: () => void = () => {};

  constructor(options: ControlPlaneOptions) {
    this.#store = new Store(options.database);
    this.#history = new History(
      options.history ?? options.database,
      options.resumeRuns ? resumable : undefined,
    );
    this.#queries = new HistoryQueries(this.#history);
    this.#origin = options.origin ?? "workflow start";
    this.#schedules = new ScheduleStore(options.database);
    this.#scheduler = new Scheduler(this.#schedules, {
      workflowExists: (name) => this.#store.workflow(name) !== undefined,
      hasWorker: () => this.#roster.list().length > 0,
      liveRuns: (workflow) => this.#history.ownLiveRuns(workflow),
      start: (workflow) => this.startRunFor(workflow, "schedule"),
    }, options.clock);
    this.#accepts = options.connect !== undefined;
    this.#roster = new WorkerRoster({
      database: options.database,
      connect: options.connect,
      timeoutMs: options.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS,
      onDead: (id, reason) => this.#workerGone(id, "dead", reason),
      onLeft: (id) => this.#workerGone(id, "left", `worker ${id} left: it was stopped`),
    });
    this.#compile = { heddlePath: options.heddlePath, readCallerFiles: options.readCallerFiles };
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    const timeout = options.compileTimeoutMs;
    this.#compileThread = timeout === undefined ? null : new CompileThread(timeout);
    this.#finishedGraceMs = options.finishedGraceMs ?? FINISHED_GRACE_MS;
    this.#packages = options.packages
      ? new PackageStore(options.packages, options.heddlePath)
      : null;
    if (this.#history.adopted.length > 0) {
      this.#stopResuming = resumeAdopted(this.#history.adopted, {
        heard: (id) => this.#roster.heard(id),
        known: (id) => this.#roster.get(id) !== undefined,
        resume: (run) => this.#resume(run),
      });
    }
  }

  /** Adds a worker reached in-process (`heddle run`) or through a client (`heddle local`). */
  attachWorker(info: WorkerInfo, api: WorkerApi): void {
    this.#roster.attach(info, api);
  }

  /** A worker registers, and re-registers as its heartbeat (`_workers.ts`). */
  registerWorker(info: WorkerInfo): Promise<void> {
    if (!this.#accepts) {
      return Promise.reject(
        new ControlError("this control plane does not accept remote workers", "invalid"),
      );
    }
    this.#roster.register(info);
    return Promise.resolve();
  }

  /** A worker that is stopping leaves before its servers close (`WorkerRoster.leave`). */
  leaveWorker(id: string): Promise<boolean> {
    return Promise.resolve(this.#roster.leave(id));
  }

  #workerGone(id: string, how: "left" | "dead", reason: string): void {
    for (const run of this.#runs.values()) run.handle?.workerDied(id, reason);
    this.#observers.forEach((o) => o.workerGone?.(id, how, reason));
  }

  /**
   * Closes the clients of remote workers. A daemon calls it before its gRPC servers shut
   * down: a server's GOAWAY arriving on a live client session in the same process crashes
   * Deno's node:http2 (exit 134 or 139 in nghttp2, denoland/deno#36788), which is how
   * `heddle local` died on SIGTERM before closing its database (issue 16).
   */
  disconnect(): void {
    this.#roster.disconnect();
  }

  async deploy(request: DeployRequest): Promise<DeployResponse> {
    this.#checkSize(request);
    const compiled: Compiled = this.#compileThread
      ? await this.#compileThread.compile(request, this.#compile)
      : compileForDeploy(request, this.#compile);
    if (!compiled.ok) {
      const failed = { ok: false, workflows: [], diagnostics: compiled.diagnostics };
      this.#observers.forEach((o) => o.deployed?.(request.file, failed));
      return failed;
    }
    const { maxWorkflows } = this.#limits;
    if (compiled.workflows.length > maxWorkflows) {
      throw new ControlError(
        `the program declares ${compiled.workflows.length} workflows; this control plane ` +
          `accepts up to ${maxWorkflows} per deploy (--max-workflows)`,
        "invalid",
      );
    }
    const { sealed } = compiled;
    // The plugin packages go with the deploy: workers elsewhere fetch them (`fetchPackage`).
    const irJson = this.#packages ? await this.#packages.carry(sealed.irJson) : sealed.irJson;
    const deployId = this.#store.saveDeploy({
      file: request.file,
      source: sealed.source,
      irJson,
      baseDir: compiled.baseDir,
    }, compiled.workflows);
    if (sealed.values.size > 0) this.#secrets.set(deployId, sealed.values);
    const response = { ok: true, workflows: compiled.workflows, diagnostics: compiled.diagnostics };
    this.#observers.forEach((o) => o.deployed?.(request.file, response));
    return response;
  }

  /** Refuses a deploy whose text and files exceed `maxSourceBytes`, before compiling it. */
  #checkSize(request: DeployRequest): void {
    const bytes = [request.source, ...(request.files ?? []).map((f) => f.content)]
      .reduce((n, text) => n + new TextEncoder().encode(text).length, 0);
    const { maxSourceBytes } = this.#limits;
    if (bytes > maxSourceBytes) {
      throw new ControlError(
        `the program and its files are ${bytes} bytes; this control plane accepts up to ` +
          `${maxSourceBytes} bytes per deploy (--max-source-size)`,
        "invalid",
      );
    }
  }

  listWorkflows(): Promise<WorkflowInfo[]> {
    return Promise.resolve(
      this.#store.workflows().map(({ name, file, version, deployedAt }) => ({
        name,
        file,
        version,
        deployedAt,
      })),
    );
  }

  startRun(workflow: string): Promise<Run> {
    return this.startRunFor(workflow, this.#origin);
  }

  /** Starts a run of `workflow`, recording who asked (`Run.origin`). */
  async startRunFor(workflow: string, origin: string): Promise<Run> {
    const prepared = this.#prepare(workflow);
    const placement = this.#place(prepared.ir, workflow);
    const runId = crypto.randomUUID();
    this.#history.createRun(runId, workflow, origin);
    this.#launch(runId, prepared, placement, "started");
    const run = await this.getRun(runId);
    this.#changed(run);
    return run;
  }

  /**
   * Places a run that a previous process of this control plane left running again, from its
   * sources' committed positions (`_recovery.ts`); fails it when that is impossible.
   */
  #resume(record: RunRecord): void {
    try {
      const prepared = this.#prepare(record.workflow);
      const placement = this.#place(prepared.ir, record.workflow);
      // Edges named apart from the previous process's placements of the run.
      const edgePrefix = `${record.id}~${crypto.randomUUID().slice(0, 8)}.`;
      this.#launch(record.id, prepared, placement, "resumed after a control plane restart", {
        edgePrefix,
      });
    } catch (e) {
      new RunRecorder(this.#history, record.id, this.#limits).finish({
        status: "failed",
        error: `the control plane restarted and could not resume the run: ${
          (e as Error)?.message ?? e
        }`,
      });
    }
    const run = this.#history.run(record.id);
    if (run) this.#changed(run);
  }

  /** A deployed workflow's IR with its secrets, or a `ControlError` saying why not. */
  #prepare(workflow: string): Prepared {
    const definition = this.#store.workflow(workflow);
    if (!definition) throw new ControlError(`no workflow \`${workflow}\` is deployed`, "not-found");
    const secrets = this.#secrets.get(definition.deployId) ?? new Map<string, string>();
    let irJson: string;
    try {
      irJson = unsealSecrets(definition.irJson, secrets);
    } catch (e) {
      if (e instanceof MissingSecrets) throw new ControlError(e.message, "invalid");
      throw e;
    }
    return { workflow, ir: JSON.parse(irJson), baseDir: definition.baseDir, secrets };
  }

  /** Runs a recorded run on its placement, placing it again when a worker is lost. */
  #launch(
    runId: string,
    prepared: Prepared,
    placement: Placement,
    how: string,
    more: Pick<PlacedRun, "edgePrefix"> = {},
  ): void {
    const { workflow, ir, secrets } = prepared;
    const workers = [...new Set(placement.groups.map((g) => g.worker!))];
    this.#history.updateRun(runId, {
      status: "running",
      worker: workers.join(","),
      summaryJson: JSON.stringify({ placement }),
    });
    const recorder = new RunRecorder(this.#history, runId, this.#limits, { placement });
    recorder.log("info", "", `run of \`${workflow}\` ${how} on \`${workers.join("`, `")}\``);
    const state: RunState = {
      record: this.#history.run(runId)!,
      workers,
      events: [],
      listeners: new Set(),
      done: Promise.resolve(),
    };
    this.#runs.set(runId, state);
    state.handle = new PlacedRunHandle({
      ...more,
      runId,
      workflow,
      ir,
      baseDir: prepared.baseDir,
      place: () => this.#place(ir, workflow),
      worker: (id) => {
        const entry = this.#roster.get(id);
        return entry && { api: entry.api, flight: entry.info.flightAddress ?? "" };
      },
      lost: (id, reason) => this.#roster.lost(id, reason),
      onPlaced: (placed) => {
        state.workers = [...new Set(placed.groups.map((g) => g.worker!))];
        this.#history.updateRun(runId, { worker: state.workers.join(",") });
      },
      onEvent: (event) => {
        if (event.kind === "run-replaced") {
          const { placement: n, reason } = event.detail as { placement: number; reason: string };
          recorder.log("warn", "", `placed again (placement ${n}): ${reason}`);
        }
        this.#onEvent(state, recorder, redactEvent(event, secrets.values()), workflow);
      },
    }, placement);
    state.done = state.handle.done.then(
      () => this.#finish(runId, recorder, null),
      (e) =>
        this.#finish(
          runId,
          recorder,
          redact(String((e as Error)?.message ?? e), secrets.values()),
        ),
    );
  }

  getRun(runId: string): Promise<Run> {
    return this.#queries.getRun(runId);
  }

  listRuns(request: ListRunsRequest = {}): Promise<RunPage> {
    return this.#queries.listRuns(request);
  }

  async stopRun(runId: string): Promise<Run> {
    const state = this.#runs.get(runId);
    const record = await this.getRun(runId);
    if (!state || record.status !== "running") return record;
    this.#history.updateRun(runId, { status: "draining" });
    this.#history.appendLog({
      runId,
      stage: "",
      level: "info",
      time: new Date().toISOString(),
      message: "stop requested: draining in-flight batches",
    });
    this.#changed(await this.getRun(runId));
    const placed = state.handle?.stopping() ?? state.workers;
    await Promise.all(placed.map((id) => this.#roster.get(id)?.api.cancel(runId)));
    return this.getRun(runId);
  }

  /** Calls `listener` with every event of a run, past and future, until it ends. */
  watch(runId: string, listener: (event: RunEvent) => void): Promise<Run> {
    const state = this.#runs.get(runId);
    if (!state) return this.getRun(runId);
    state.events.forEach(listener);
    state.listeners.add(listener);
    return state.done.then(() => {
      state.listeners.delete(listener);
      return this.getRun(runId);
    });
  }

  /** Follows every event, run change and deploy from now on; returns the unsubscribe. */
  observe(observer: ControlObserver): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  /** A deployed workflow's stored (optimised, sealed) IR as JSON, or null. */
  workflowIr(name: string): string | null {
    return this.#store.workflow(name)?.irJson ?? null;
  }

  /** The workers runs are placed on, and how to ask each about its health. */
  workers(): { info: WorkerInfo; api: WorkerApi }[] {
    return this.#roster.list().map((info) => ({ info, api: this.#roster.get(info.id)!.api }));
  }

  #changed(run: Run): void {
    this.#observers.forEach((o) => o.runChanged?.(run));
  }

  attempts(runId: string): AttemptRecord[] {
    return this.#history.attempts(runId);
  }

  listLogs(request: ListLogsRequest): Promise<LogPage> {
    return this.#queries.listLogs(request);
  }

  getRunDetails(runId: string): Promise<RunDetails> {
    return this.#queries.getRunDetails(runId);
  }

  setSchedule(request: SetScheduleRequest): Promise<ScheduleInfo> {
    return settle(() => this.#scheduler.set(request));
  }

  listSchedules(): Promise<ScheduleInfo[]> {
    return settle(() => this.#scheduler.list());
  }

  deleteSchedule(workflow: string): Promise<ScheduleInfo> {
    return settle(() => this.#scheduler.delete(workflow));
  }

  /** Starts firing schedules (a daemon, once its workers can take runs). */
  startSchedules(): void {
    this.#scheduler.start();
  }

  /** Fires the schedules due by the clock now (tests with a clock of their own). */
  fireDueSchedules(): Promise<void> {
    return this.#scheduler.tick();
  }

  close(): void {
    this.#stopResuming();
    this.#scheduler.stop();
    this.#schedules.close();
    this.#roster.close();
    this.#compileThread?.close();
    this.#history.close();
    this.#store.close();
  }

  /** Where a deployed workflow's stage groups would run now, as JSON (`Placement`). */
  planRun(workflow: string): Promise<string> {
    const definition = this.#store.workflow(workflow);
    if (!definition) {
      return Promise.reject(
        new ControlError(`no workflow \`${workflow}\` is deployed`, "not-found"),
      );
    }
    try {
      return Promise.resolve(JSON.stringify(this.#place(JSON.parse(definition.irJson), workflow)));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** A plugin package of a deploy, for a worker that does not have it yet. */
  fetchPackage(ref: { hash: string; name: string; dir?: string }): Promise<WirePackage> {
    if (!this.#packages) {
      return Promise.reject(
        new ControlError("this control plane keeps no plugin packages", "not-found"),
      );
    }
    return this.#packages.fetch(ref);
  }

  /** Places a run's stage groups on the workers (docs/cluster.md); runs take turns. */
  #place(ir: Ir, workflow: string) {
    const workers = this.#roster.registered();
    if (workers.length === 0) {
      const known = this.#roster.list().length;
      throw new ControlError(
        known === 0 ? "no worker is available" : `no worker has registered with this control ` +
          `plane since it started (${known} known from before; a live worker heartbeats ` +
          `within seconds: start the run again)`,
        "unavailable",
      );
    }
    try {
      return place(ir, workflow, workers, this.#nextWorker++);
    } catch (e) {
      if (e instanceof PlacementError) throw new ControlError(e.message, "invalid");
      throw e;
    }
  }

  #onEvent(state: RunState, recorder: RunRecorder, event: RunEvent, workflow: string): void {
    state.events.push(event);
    this.#observers.forEach((o) => o.event?.(workflow, event));
    recorder.event(event);
    for (const listener of state.listeners) listener(event);
  }

  #finish(runId: string, recorder: RunRecorder, error: string | null): void {
    const draining = this.#history.run(runId)?.status === "draining";
    const finished = this.#runs.get(runId)?.events.findLast((e) => e.kind === "run-finished");
    const outcome = finished?.detail.summary as
      | { status: string; error: { message: string } | null }
      | undefined;
    const failed = error ??
      (outcome?.status === "failed" ? outcome.error?.message ?? "the run failed" : null);
    // The executor knows whether a stop cut the run short (a stop after its sources ended
    // changes nothing); without its summary, a run asked to stop counts as stopped.
    const stopped = outcome ? outcome.status === "stopped" : draining;
    recorder.finish({
      status: failed ? "failed" : stopped ? "stopped" : "succeeded",
      error: failed ?? "",
      stages: (finished?.detail.summary as { stages?: RunRecorder["summary"]["stages"] })?.stages,
    });
    const ended = this.#history.run(runId);
    if (ended) this.#changed(ended);
    // A finished run's events stay only long enough for a `watch` that raced its end.
    const timer = setTimeout(() => this.#runs.delete(runId), this.#finishedGraceMs);
    Deno.unrefTimer(timer);
  }
}

/** `fn`'s result as a promise, its exception as a rejection. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * An event with every secret of its workflow and every URL password replaced by `***` in
 * all its strings: connectors redact what they know, and this is the last check before an
 * event is kept, stored or shown.
 */
function redactEvent(event: RunEvent, secrets: Iterable<string>): RunEvent {
  return redactValues(event, [...secrets]);
}
