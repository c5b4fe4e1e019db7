/**
 * One run of one workflow: a task per stage, bounded queues between them, batches held in
 * the registry and moved as handles, lineage counters that decide when a source position
 * may be committed, and handlers fed with the rows that failed. It is a library: it never
 * exits the process, never prints, and never lets a user error escape as an exception;
 * everything ends in a `RunSummary`. It must never commit a position whose rows were not all
 * acknowledged, and never leave a registry object unreleased, even when the run fails.
 */
import { type Schema, type Table, Table as ArrowTable } from "apache-arrow";
import type { Ir } from "../../compiler/ir/mod.ts";
import type {
  ConnectorContext,
  ConnectorRegistry,
  Lookup,
  Position,
  Sink,
  Source,
  Transform,
} from "../connectors/mod.ts";
import type { Lease, ObjectHandle } from "../registry/mod.ts";
import {
  type CompiledQuery,
  compilePrql,
  execute,
  externalGroupOf,
  type ExternalSort,
  externalSortOf,
} from "../prql/mod.ts";
import {
  type EventBody,
  type EventSink,
  MAX_DESCRIBED_ROWS,
  type OutputReport,
  type OutputState,
  type RowFailure,
  type RunEvent,
  type RunStatus,
  type RunSummary,
  type StageStats,
} from "./_events.ts";
import {
  type AttemptResult,
  FatalStageError,
  FaultRunner,
  type Isolated,
  type Operation,
  StepAttemptError,
} from "./_faults.ts";
import { Lineage, type Origin } from "./_lineage.ts";
import { dropAll, Pin, retainAll } from "./_pin.ts";
import type { Plan, PlannedCall, PlannedStage } from "./_plan.ts";
import {
  describeError,
  describeRecord,
  describeRejected,
  type ErrorInfo,
  pluginErrorClass,
} from "./_errors.ts";
import type { BatchRegistry, PluginInvoker, StageInterceptor } from "./_ports.ts";
import { BoundedQueue } from "./_queue.ts";
import { inWindow } from "./_window.ts";
import { distinctKeys, type ErrorDetails, failedRows, untypedFailures } from "./_tables.ts";

/**
 * A batch in flight between two stages: a table handed over inside this process, or a
 * registry object (for a plugin consumer, or a plugin's output). Exactly one of `table` and
 * `handle` is set.
 */
interface Envelope {
  /** The batch as a table of this process; null for a registry object. */
  table: Table | null;
  /** The batch as a registry object, holding one consumer count for this envelope. */
  handle: ObjectHandle | null;
  rows: number;
  origins: Origin[];
  /** Registry objects the table may view: the envelope holds one reference on each. */
  pins: Pin[];
}

/** What a stage works on: one envelope, or (for a blocking query) everything collected. */
interface Work {
  handle: ObjectHandle | null;
  rows: number;
  origins: Origin[];
  /** What the work's table may view; outputs handed on in-process carry these on. */
  pins: Pin[];
}

/** Consumers of one stage, split by how a batch reaches them. */
interface Targets {
  /** In-process consumers: they get the table itself. */
  local: BoundedQueue<Envelope>[];
  /** Plugin consumers: they get a registry object, which crosses the process boundary. */
  plugin: BoundedQueue<Envelope>[];
}

/** PRQL transforms that need every row at once: over bounded input they run at the end. */
/** An external operator of a blocking stage. */
interface Spilling {
  op: ExternalSort;
}

// A window function outside a group (`derive {s = sum x}`) runs over the whole input too; a
// column that happens to share a name only costs streaming, never a wrong answer.
const BLOCKING_PRQL =
  /\b(aggregate|group|sort|take|window|loop|sum|count|average|min|max|row_number|rank|rank_dense|lag|lead)\b/;

export interface RunSettings {
  runId: string;
  registry: BatchRegistry;
  connectors: ConnectorRegistry;
  plugins: PluginInvoker | null;
  onEvent: EventSink;
  queueCapacity: number;
  batchRows: number;
  baseDir: string;
  allowPaths?: readonly string[];
  resume: Record<string, Position>;
  random: () => number;
  intercept: StageInterceptor | null;
}

type StageRuntime =
  | { kind: "source"; source: Source }
  | { kind: "sink"; sink: Sink }
  | { kind: "transform"; transform: Transform }
  | { kind: "lookup"; lookup: Lookup }
  | { kind: "plugin"; chain: PlannedCall[] }
  | { kind: "prql"; lookups: { name: string; keys: [string, string][]; lookup: Lookup }[] }
  | { kind: "forward" };

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The step of a fused chain that an attempt's error names, if any. */
function stepOf(error: unknown): string | undefined {
  return error instanceof StepAttemptError ? error.step : undefined;
}

/** Schema texts by schema object: batches of one stream usually share their schema. */
const schemaTexts = new WeakMap<Schema, string>();

function schemaText(s: Schema): string {
  let text = schemaTexts.get(s);
  if (text === undefined) {
    text = s.fields.map((f) => `${f.name}:${f.type}${f.nullable ? "?" : ""}`).join(",");
    schemaTexts.set(s, text);
  }
  return text;
}

function schemaKey(schemas: Record<string, Schema>): string {
  return Object.entries(schemas).map(([name, s]) => `${name}(${schemaText(s)})`).join(";");
}

/**
 * Compiled PRQL by block text and input schemas, shared by every stage and run of this
 * process: compiling costs milliseconds (prql-js), running a block over a small batch
 * microseconds, and a worker runs the same blocks over the same schemas again and again.
 * A compiled query is immutable, so sharing it is safe. Oldest entries go first.
 */
const compiledQueries = new Map<string, CompiledQuery>();
const COMPILED_QUERIES_KEPT = 512;

export class Run {
  #lineage: Lineage;
  #queues = new Map<string, BoundedQueue<Envelope>>();
  #runtimes = new Map<string, StageRuntime>();
  #targets = new Map<string, Targets>();
  #stats = new Map<string, StageStats & { started: number; bytesOut: number }>();
  #held = new Map<string, Origin[][]>();
  /** Per stage, how many batches it started processing (attempt events number them). */
  #begun = new Map<string, number>();
  #blocking = new Set<string>();
  #fatal: { message: string; stage: string | null } | null = null;
  /** Failed rows described in events so far (`MAX_DESCRIBED_ROWS`). */
  #described = 0;
  /** A bounded source was stopped before its end: on-flush sinks must not publish. */
  #cutShort = false;
  /** Set when every source of the workflow has ended (by itself or because of a stop). */
  #sourcesEnded = false;
  /** Set when a stop was asked for before the sources ended: the run is `stopped`. */
  #stopped = false;
  #outputs = new Map<string, OutputState>();
  #stop = new AbortController();
  #hard = new AbortController();
  #started = Date.now();

  constructor(private ir: Ir, private plan: Plan, private settings: RunSettings) {
    this.#lineage = new Lineage(async (source, position) => {
      const rt = this.#runtimes.get(source);
      if (rt?.kind === "source") await rt.source.commit(position);
      this.#emit({ type: "position-committed", stage: source, position });
    });
    for (const s of plan.stages.values()) {
      this.#stats.set(s.id, {
        label: s.label,
        batches: 0,
        rowsIn: 0,
        rowsOut: 0,
        rowsQuarantined: 0,
        started: 0,
        bytesOut: 0,
      });
    }
  }

  /**
   * Asks the run to drain: sources stop pulling, everything in flight completes. A stop that
   * comes after every source ended by itself changes nothing: the run completes.
   */
  stop(): void {
    if (!this.#sourcesEnded) this.#stopped = true;
    this.#stop.abort();
  }

  #emit(event: EventBody): void {
    try {
      this.settings.onEvent({ ...event, runId: this.settings.runId, at: Date.now() } as RunEvent);
    } catch {
      // A failing observer must not fail the run.
    }
  }

  /**
   * Fails the run with `error`. Its message reaches the control plane, so it is told by
   * `describeError` (never quoting rows) unless the stage failed to open, before any row.
   */
  #fail(error: unknown, stage: PlannedStage | null, opening = false): void {
    if (!this.#fatal) {
      const where = stage ? `stage \`${stage.label}\` (${stage.id}): ` : "";
      const text = opening
        ? messageOf(error)
        : describeError(error, { stage: stage?.id ?? "", step: stage?.label ?? null, row: null })
          .message;
      this.#fatal = { message: where + text, stage: stage?.id ?? null };
    }
    this.#stop.abort();
    this.#hard.abort();
  }

  async #openStage(s: PlannedStage): Promise<StageRuntime> {
    const ir = s.ir;
    const ctx = (schema: ConnectorContext["schema"]): ConnectorContext => ({
      config: s.config,
      resources: s.resources,
      schema,
      batchRows: this.settings.batchRows,
      resumeAfter: this.settings.resume[s.id] ?? null,
      baseDir: this.settings.baseDir,
      allowPaths: this.settings.allowPaths,
      workflow: this.plan.workflow,
      reportLag: (topic, partitions) =>
        this.#emit({ type: "source-lag", stage: s.id, topic, partitions }),
      stopped: this.#stop.signal,
    });
    const factoryFor = (name: string) => {
      const f = this.settings.connectors.get(name);
      if (!f) throw new FatalStageError(`no connector implements \`${name}\` in this runtime`);
      return f;
    };
    const qualified = `${ir.module}.${ir.op}`;
    switch (ir.kind) {
      case "handler-input":
        return { kind: "forward" };
      case "prql":
        return { kind: "prql", lookups: [] };
      case "lookup-join": {
        const lookups = [];
        for (const lj of ir.lookup ?? []) {
          const resource = this.ir.resources.find((r) => r.id === lj.resource);
          const f = factoryFor(`${resource?.module}.query`);
          if (f.role !== "lookup") throw new FatalStageError(`\`${lj.step}\` is not a lookup`);
          const lookup = await f.open({
            ...ctx(null),
            config: { query: lj.query, param: lj.param, keys: lj.keys, columns: lj.columns },
            resources: { connection: resource ? this.#resolvedResource(s, lj.resource) : {} },
          });
          lookups.push({ name: lj.step, keys: lj.keys, lookup });
        }
        return { kind: "prql", lookups };
      }
      case "source": {
        const f = factoryFor(qualified);
        if (f.role === "source") {
          return { kind: "source", source: await f.open(ctx(s.outputSchema)) };
        }
        if (f.role === "lookup" && f.openSource) {
          return { kind: "source", source: await f.openSource(ctx(s.outputSchema)) };
        }
        throw new FatalStageError(`\`${qualified}\` is not a source`);
      }
      case "sink": {
        const f = factoryFor(qualified);
        if (f.role !== "sink") throw new FatalStageError(`\`${qualified}\` is not a sink`);
        return { kind: "sink", sink: await f.open(ctx(s.inputSchema)) };
      }
      case "call": {
        if (ir.runtime !== "builtin") {
          if (!this.settings.plugins) {
            throw new FatalStageError(`plugin step \`${s.label}\` needs a plugin host`);
          }
          return { kind: "plugin", chain: s.chain };
        }
        const f = factoryFor(qualified);
        if (f.role === "transform") {
          return { kind: "transform", transform: await f.open(ctx(s.inputSchema)) };
        }
        if (f.role === "lookup") {
          return { kind: "lookup", lookup: await f.open(ctx(s.inputSchema)) };
        }
        throw new FatalStageError(`\`${qualified}\` cannot be used in the middle of a pipeline`);
      }
    }
  }

  /** A lookup-join's resource config: the planner resolved it for slots only. */
  #resolvedResource(s: PlannedStage, id: string): Record<string, unknown> {
    const bySlot = Object.entries(s.ir.resources).find(([, rid]) => rid === id);
    if (bySlot) return s.resources[bySlot[0]];
    const raw = this.ir.resources.find((r) => r.id === id)?.config ?? {};
    return raw as Record<string, unknown>;
  }

  async #closeAll(): Promise<void> {
    for (const rt of this.#runtimes.values()) {
      try {
        if (rt.kind === "source") await rt.source.close();
        else if (rt.kind === "transform") await rt.transform.close();
        else if (rt.kind === "lookup") await rt.lookup.close();
        else if (rt.kind === "prql") { for (const l of rt.lookups) await l.lookup.close(); }
      } catch {
        // Closing is best effort; the run's outcome is already decided.
      }
    }
  }

  async execute(signal: AbortSignal | undefined): Promise<RunSummary> {
    const stages = [...this.plan.stages.values()];
    for (const s of stages) {
      try {
        this.#runtimes.set(s.id, await this.#openStage(s));
      } catch (error) {
        this.#fail(error, s, true);
        for (const rt of this.#runtimes.values()) if (rt.kind === "sink") await rt.sink.abort();
        await this.#closeAll();
        return this.#finish();
      }
    }
    this.#markBlocking(stages);
    const onAbort = () => this.stop();
    if (signal?.aborted) this.stop();
    signal?.addEventListener("abort", onAbort, { once: true });
    for (const s of stages) {
      if (s.ir.kind === "source") continue;
      const producers = s.ir.kind === "handler-input" ? 1 : s.ir.inputs.length;
      this.#queues.set(s.id, new BoundedQueue(this.settings.queueCapacity, producers));
    }
    this.#emit({
      type: "run-started",
      workflow: this.plan.workflow,
      stages: stages.map((s) => s.id),
    });
    const tasks = new Map(stages.map((s) => [s.id, this.#task(s)]));
    Promise.all(stages.filter((s) => s.ir.kind === "source").map((s) => tasks.get(s.id)))
      .then(() => this.#sourcesEnded = true);
    const upTo = (tier: number) =>
      Promise.all(stages.filter((s) => s.tier < tier).map((s) => tasks.get(s.id)));
    for (const s of stages) {
      if (s.ir.kind === "handler-input") {
        upTo(s.tier).then(() => this.#queues.get(s.id)!.producerDone());
      }
    }
    await Promise.all(tasks.values());
    signal?.removeEventListener("abort", onAbort);
    await this.#finishSinks(stages);
    try {
      await this.#lineage.settled();
    } catch (error) {
      this.#fail(error, null);
    }
    await this.#closeAll();
    return this.#finish();
  }

  /** Main-graph PRQL stages with blocking operators whose every source is bounded. */
  #markBlocking(stages: PlannedStage[]): void {
    const bounded = (id: string): boolean => {
      const st = this.plan.stages.get(id)!;
      const rt = this.#runtimes.get(id);
      if (rt?.kind === "source") return rt.source.bounded;
      return st.ir.inputs.length > 0 && st.ir.inputs.every((i) => bounded(i.from));
    };
    for (const s of stages) {
      const query = s.ir.prql ?? "";
      const prql = s.ir.kind === "prql" || s.ir.kind === "lookup-join";
      if (s.tier === 0 && prql && BLOCKING_PRQL.test(query) && bounded(s.id)) {
        this.#blocking.add(s.id);
      }
    }
  }

  #finish(): RunSummary {
    const status: RunStatus = this.#fatal ? "failed" : this.#stopped ? "stopped" : "completed";
    const stages: Record<string, StageStats> = {};
    let quarantined = 0;
    for (const [id, { started: _, bytesOut: _bytes, ...st }] of this.#stats) {
      stages[id] = st;
      quarantined += st.rowsQuarantined;
    }
    const committed: Record<string, Position | null> = {};
    for (const s of this.plan.stages.values()) {
      if (s.ir.kind === "source") committed[s.id] = this.#lineage.committed(s.id);
    }
    const outputs: OutputReport[] = [...this.plan.stages.values()]
      .filter((s) => s.ir.kind === "sink")
      .map((s) => ({
        stage: s.id,
        label: s.label,
        target: this.#targetOf(s),
        rows: stages[s.id].rowsOut,
        state: this.#outputs.get(s.id) ?? "discarded",
      }));
    const summary: RunSummary = {
      runId: this.settings.runId,
      workflow: this.plan.workflow,
      status,
      durationMs: Date.now() - this.#started,
      stages,
      rowsQuarantined: quarantined,
      committed,
      outputs,
      error: this.#fatal,
    };
    this.#emit({ type: "run-finished", summary });
    return summary;
  }

  async #task(s: PlannedStage): Promise<void> {
    const queue = this.#queues.get(s.id);
    try {
      if (s.ir.kind === "source") await this.#runSource(s);
      else if (this.#blocking.has(s.id)) await this.#collectThenProcess(s, queue!);
      else {
        const rt = this.#runtimes.get(s.id);
        // A sink that acknowledges asynchronously gets several batches at once (_window.ts);
        // a failure fails the run at once, not when the window next looks.
        const limit = rt?.kind === "sink" ? rt.sink.inFlight ?? 1 : 1;
        await inWindow(limit, () => queue!.next(), (env) =>
          this.#consume(s, env).catch((error) => {
            this.#fail(error, s);
            throw error;
          }));
        if (rt?.kind === "sink" && !this.#fatal) await rt.sink.end?.();
      }
    } catch (error) {
      this.#fail(error, s);
      if (queue) {
        for (let env = await queue.next(); env; env = await queue.next()) this.#discard(env);
      }
    } finally {
      for (const c of s.consumers) this.#queues.get(c)?.producerDone();
    }
  }

  /**
   * Ends every sink once every stage is done, so that no output is published before the
   * run's outcome is known. A failed run aborts them all. A stopped run flushes the sinks
   * that deliver rows as they are written (a topic: what was fully processed stays, and its
   * positions commit); the ones that publish at the end (a file) are aborted if a bounded
   * source was cut short, since their output would be partial (their rows were never
   * acknowledged, so no position commits for them), and flushed otherwise: a run over
   * unbounded sources ends only by a stop, and what it drained is its whole output. A
   * completed run flushes everything.
   */
  async #finishSinks(stages: PlannedStage[]): Promise<void> {
    for (const s of stages) {
      const rt = this.#runtimes.get(s.id);
      if (rt?.kind !== "sink") continue;
      const atEnd = rt.sink.acknowledges === "on-flush";
      if (this.#fatal || (this.#cutShort && atEnd)) {
        await rt.sink.abort();
        this.#outputs.set(s.id, atEnd ? "discarded" : "delivered");
        continue;
      }
      try {
        await rt.sink.flush();
        this.#outputs.set(s.id, atEnd ? "published" : "delivered");
        // One adjustment for everything held, so each source commits once, at its last position.
        this.#lineage.adjust((this.#held.get(s.id) ?? []).flat(), -1);
      } catch (error) {
        this.#fail(error, s);
        await rt.sink.abort();
        this.#outputs.set(s.id, atEnd ? "discarded" : "delivered");
      }
    }
  }

  /** Where a sink writes, for telling the user: its file's path or its topic, else its name. */
  #targetOf(s: PlannedStage): string {
    const { path, topic } = s.config;
    if (typeof path === "string" && path !== "") {
      return path.startsWith("/") ? path : `${this.settings.baseDir}/${path}`;
    }
    if (typeof topic === "string" && topic !== "") return `topic \`${topic}\``;
    return `\`${s.label}\``;
  }

  /**
   * A blocking query over bounded input: keeps every batch as a registry object as it
   * arrives (so it counts against the memory budget and spills to a file over it, instead
   * of growing the heap), then maps them all back, zero-copy, and runs once at the end.
   */
  async #collectThenProcess(s: PlannedStage, queue: BoundedQueue<Envelope>): Promise<void> {
    const registry = this.settings.registry;
    const collected: { handle: ObjectHandle; origins: Origin[] }[] = [];
    const leases: Lease[] = [];
    // A block that only sorts is sorted externally, in runs that spill (runtime/prql/_spill.ts);
    // one that groups or distincts by input columns is partitioned (runtime/prql/_partition.ts).
    let sorter: Spilling | null | undefined;
    const sorted: Origin[][] = [];
    const free = () => {
      sorter?.op.dispose();
      for (const l of leases) l.release();
      for (const c of collected) registry.release(c.handle.id);
    };
    try {
      for (let env = await queue.next(); env; env = await queue.next()) {
        if (this.#fatal) {
          this.#discard(env);
          continue;
        }
        let lookups: Record<string, Table> | undefined;
        if (sorter === undefined) {
          try {
            lookups = await this.#withTable(env, (t) => this.#lookupsOf(s, t));
          } catch (error) {
            this.#discard(env);
            throw error;
          }
          sorter = this.#spilling(s, env, lookups);
        }
        if (sorter) {
          sorted.push(env.origins);
          await this.#feed(s, sorter.op, env, lookups);
          continue;
        }
        if (env.handle) collected.push({ handle: env.handle, origins: env.origins });
        else {
          try {
            collected.push({ handle: registry.put(env.table!, 1), origins: env.origins });
          } finally {
            dropAll(env.pins);
          }
        }
      }
      if (sorter && !this.#fatal) return await this.#runExternally(s, sorter, sorted);
      if (this.#fatal || collected.length === 0) return free();
      for (const c of collected) leases.push(registry.open(c.handle));
    } catch (error) {
      free();
      throw error;
    }
    const origins = [this.#lineage.merge(collected.flatMap((c) => c.origins))];
    for (const c of collected) this.#lineage.adjust(c.origins, -1);
    const table = new ArrowTable(leases.flatMap((l) => l.table.batches));
    // The result may view the collected objects (a `take` slices), so they live as long as it.
    const pin = new Pin(free);
    try {
      await this.#process(s, { handle: null, rows: table.numRows, origins, pins: [pin] }, table);
    } finally {
      pin.drop();
    }
  }

  /**
   * A spilling operator for a blocking stage whose block only sorts its input, or groups it
   * (or takes distinct rows) by input columns, else null.
   */
  #spilling(s: PlannedStage, first: Envelope, lookups: Record<string, Table>): Spilling | null {
    const rt = this.#runtimes.get(s.id)!;
    const { memoryBudget, spillDir } = this.settings.registry;
    if (rt.kind !== "prql" || !memoryBudget || !spillDir) return null;
    let schema = first.table?.schema;
    if (!schema) {
      const lease = this.settings.registry.open(first.handle!);
      schema = lease.table.schema;
      lease.release();
    }
    // A run is sorted in memory with about three times its size in working space; an eighth
    // of the budget leaves room for the garbage the collector has not reclaimed yet (a quarter
    // peaked at 804 MiB on the 10M-row benchmark under a 256 MiB budget).
    const relations: Record<string, Table> = { input: new ArrowTable(schema) };
    for (const [name, t] of Object.entries(lookups)) relations[name] = new ArrowTable(t.schema);
    const query = this.#compile(s, relations);
    const options = {
      runBytes: Math.max(1 << 20, Math.floor(memoryBudget / 8)),
      dir: spillDir,
      batchRows: this.settings.batchRows,
    };
    const sort = rt.lookups.length > 0 ? null : externalSortOf(query, options);
    if (sort) return { op: sort };
    const group = externalGroupOf(query, options);
    return group ? { op: group } : null;
  }

  /**
   * Hands one envelope's rows, with what its lookups return for them (`lookups` when already
   * fetched), to an external operator, which releases them once spilled.
   */
  async #feed(
    s: PlannedStage,
    op: ExternalSort,
    env: Envelope,
    lookups?: Record<string, Table>,
  ): Promise<void> {
    const registry = this.settings.registry;
    const lease = env.handle ? registry.open(env.handle) : null;
    const release = lease
      ? () => (lease.release(), registry.release(env.handle!.id))
      : () => dropAll(env.pins);
    const table = lease?.table ?? env.table!;
    try {
      lookups ??= await this.#lookupsOf(s, table);
    } catch (error) {
      release();
      throw error;
    }
    op.push(table, release, lookups);
  }

  /** What a PRQL stage's lookups return for the distinct keys of `table`. */
  async #lookupsOf(s: PlannedStage, table: Table): Promise<Record<string, Table>> {
    const rt = this.#runtimes.get(s.id)!;
    const out: Record<string, Table> = {};
    if (rt.kind !== "prql") return out;
    for (const l of rt.lookups) {
      out[l.name] = await l.lookup.lookup(distinctKeys(table, l.keys), this.#hard.signal);
    }
    return out;
  }

  /** Runs `f` over an envelope's table (mapped for as long as `f` runs, if a registry object). */
  async #withTable<T>(env: Envelope, f: (table: Table) => Promise<T>): Promise<T> {
    if (env.table) return await f(env.table);
    const lease = this.settings.registry.open(env.handle!);
    try {
      return await f(lease.table);
    } finally {
      lease.release();
    }
  }

  /** Sends a spilling operator's output on, batch by batch, with the lineage of all its input. */
  async #runExternally(s: PlannedStage, spilling: Spilling, parts: Origin[][]): Promise<void> {
    const { op } = spilling;
    const origins = [this.#lineage.merge(parts.flat())];
    for (const p of parts) this.#lineage.adjust(p, -1);
    try {
      // The output is read batch by batch as the operator makes it (a sort's as it is merged,
      // a window's as its parts are): never held whole. Each batch holds the merged origin
      // once per consumer; the merge's own hold is dropped once every batch is sent.
      let rowsOut = 0;
      for (const table of op.finish()) {
        this.#lineage.adjust(origins, s.consumers.length);
        rowsOut += table.numRows;
        await this.#send(s, table, origins, []);
      }
      this.#lineage.adjust(origins, -1);
      this.#progress(s, op.rows, rowsOut, 0);
    } finally {
      op.dispose();
    }
  }

  /**
   * A blocking stage's result, cut (zero-copy) into micro-batches again, so that the stages
   * after it keep working on batches of `batchRows` rows instead of the whole input at once.
   */
  #microBatches(table: Table): { table: Table; handle?: ObjectHandle }[] {
    const n = this.settings.batchRows;
    if (table.numRows <= n) return [{ table }];
    return Array.from({ length: Math.ceil(table.numRows / n) }, (_, i) => ({
      table: table.slice(i * n, (i + 1) * n),
    }));
  }

  #discard(env: Envelope): void {
    dropAll(env.pins);
    if (env.handle) this.settings.registry.release(env.handle.id);
  }

  #progress(s: PlannedStage, rowsIn: number, rowsOut: number, quarantined: number): void {
    const st = this.#stats.get(s.id)!;
    if (st.batches === 0) st.started = performance.now();
    st.batches++;
    st.rowsIn += rowsIn;
    st.rowsOut += rowsOut;
    st.rowsQuarantined += quarantined;
    const seconds = Math.max((performance.now() - st.started) / 1000, 1e-3);
    this.#emit({
      type: "stage-progress",
      stage: s.id,
      label: s.label,
      batches: st.batches,
      rowsIn: st.rowsIn,
      rowsOut: st.rowsOut,
      rowsPerSecond: Math.round(st.rowsOut / seconds),
      bytesOut: st.bytesOut,
    });
  }

  #targetsOf(s: PlannedStage): Targets {
    let targets = this.#targets.get(s.id);
    if (targets === undefined) {
      targets = { local: [], plugin: [] };
      for (const c of s.consumers) {
        const side = this.#runtimes.get(c)?.kind === "plugin" ? targets.plugin : targets.local;
        side.push(this.#queues.get(c)!);
      }
      this.#targets.set(s.id, targets);
    }
    return targets;
  }

  /**
   * Sends one table to every consumer of `s`. In-process consumers get the table itself
   * (with `pins` on whatever it views); plugin consumers share one registry object, put
   * once with a consumer count each. `ready` is a table already registered with one count
   * per consumer (a plugin's output): everyone gets its handle and nothing is copied.
   */
  async #send(
    s: PlannedStage,
    table: Table,
    origins: Origin[],
    pins: Pin[],
    ready?: ObjectHandle,
  ): Promise<void> {
    const { local, plugin } = this.#targetsOf(s);
    const rows = table.numRows;
    this.#stats.get(s.id)!.bytesOut += table.data.reduce((n, d) => n + d.byteLength, 0);
    const byHandle = ready ? [...local, ...plugin] : plugin;
    const handle = ready ??
      (plugin.length > 0 ? this.settings.registry.put(table, plugin.length) : null);
    for (const q of byHandle) {
      const env = { table: null, handle, rows, origins, pins: [] };
      if (!(await q.push(env))) this.#discard(env);
    }
    if (ready) return;
    for (const q of local) {
      const env = { table, handle: null, rows, origins, pins: retainAll(pins) };
      if (!(await q.push(env))) this.#discard(env);
    }
  }

  /**
   * Routes failed rows to the stage's handler; with none, the run fails. The rows carry the
   * full messages; the event and the run's error only `error`, the first row's description.
   */
  async #quarantine(
    s: PlannedStage,
    rows: Table,
    origins: Origin[],
    failures: RowFailure[],
    batch: number | null,
  ) {
    const target = s.handler ? this.plan.handlerInputs.get(s.handler) : undefined;
    const described = failures.slice(0, Math.max(0, MAX_DESCRIBED_ROWS - this.#described));
    this.#described += described.length;
    const { attempt: _, ...error } = failures[0];
    this.#emit({
      type: "rows-quarantined",
      stage: s.id,
      rows: rows.numRows,
      handler: target ? s.handler : null,
      error,
      batch,
      errors: described,
    });
    const message = error.message;
    if (!target) {
      throw new FatalStageError(
        `${rows.numRows} row(s) failed and no handler catches them: ${message}`,
      );
    }
    // A handler's `*` runs in this process: the rows (copies) are handed over as they are.
    const queue = this.#queues.get(target)!;
    const env = { table: rows, handle: null, rows: rows.numRows, origins, pins: [] };
    if (!(await queue.push(env))) {
      throw new FatalStageError(`handler \`${s.handler}\` had already finished: ${message}`);
    }
  }

  async #runSource(s: PlannedStage): Promise<void> {
    const rt = this.#runtimes.get(s.id) as { kind: "source"; source: Source };
    for await (const batch of rt.source.batches(this.#stop.signal)) {
      if (this.#fatal) break;
      const origin = this.#lineage.open(s.id, batch.position);
      const rows = batch.table.numRows;
      const sends = rows > 0 ? s.consumers.length : 0;
      const failed = batch.errors.length > 0 ? 1 : 0;
      this.#lineage.adjust([origin], sends + failed - 1);
      if (this.settings.intercept) await this.#intercept(s, batch.table);
      if (sends > 0) await this.#send(s, batch.table, [origin], []);
      if (failed) {
        const details: ErrorDetails[] = batch.errors.map((e) => ({
          step: s.label,
          message: e.message,
          attempt: 1,
        }));
        const table = untypedFailures(rt.source.schema, details);
        const failures = batch.errors.map((e) => ({
          ...describeRecord(e, s.id, s.label),
          attempt: 1,
        }));
        await this.#quarantine(s, table, [origin], failures, null);
      }
      this.#progress(s, rows + batch.errors.length, rows, batch.errors.length);
    }
    if (rt.source.bounded && this.#stop.signal.aborted) this.#cutShort = true;
  }

  async #consume(s: PlannedStage, env: Envelope): Promise<void> {
    if (this.#fatal) return this.#discard(env);
    let { table, pins, handle: current } = env;
    if (env.handle) {
      const registry = this.settings.registry;
      const handle = env.handle;
      let lease: Lease;
      try {
        lease = registry.open(handle);
      } catch (error) {
        this.#discard(env);
        throw error;
      }
      pins = [...pins, new Pin(() => (lease.release(), registry.release(handle.id)))];
      table = lease.table;
      // The object may have spilled while queued: pass on where it is now (the lease keeps
      // it there), never the name it had when it was sent.
      current = lease.handle;
    }
    try {
      await this.#process(s, { ...env, handle: current, pins }, table!);
    } finally {
      dropAll(pins);
    }
  }

  #operation(s: PlannedStage, env: Work): Operation<Table | null> {
    const rt = this.#runtimes.get(s.id)!;
    const registry = this.settings.registry;
    const plain = (value: Table | null): AttemptResult<Table | null> => ({
      value,
      rowErrors: [],
      dispose: () => {},
    });
    switch (rt.kind) {
      case "forward":
        return (piece) => Promise.resolve(plain(piece.table));
      case "transform":
        return async (piece, signal) => plain(await rt.transform.apply(piece.table, signal));
      case "lookup":
        return async (piece, signal) => plain(await rt.lookup.lookup(piece.table, signal));
      case "sink":
        return async (piece, signal) => {
          await rt.sink.write(piece.table, signal);
          return plain(null);
        };
      case "prql":
        return async (piece, signal) => {
          const relations: Record<string, Table> = { input: piece.table };
          for (const l of rt.lookups) {
            relations[l.name] = await l.lookup.lookup(distinctKeys(piece.table, l.keys), signal);
          }
          return plain(execute(this.#compile(s, relations), relations));
        };
      case "plugin":
        return async (piece, signal, timeoutMs) => {
          const input = piece.whole && env.handle ? env.handle : registry.put(piece.table, 1);
          // A lease pins the object where `input` says until the plugin has read it.
          const pinned = input !== env.handle ? registry.open(input) : undefined;
          const consumers = Math.max(1, s.consumers.length);
          // An abandoned attempt frees its input at once rather than when the killed plugin's
          // invocation returns, which may be after the run ended. Unlinking is safe while the
          // plugin still maps the segment: its mapping stays valid until it exits.
          let held = true;
          const free = () => {
            if (!held) return;
            held = false;
            pinned?.release();
            if (input !== env.handle) registry.release(input.id);
          };
          signal.addEventListener("abort", free, { once: true });
          let outcome;
          try {
            // A fused chain is one invocation: the plugin runs every step in-process.
            outcome = await this.settings.plugins!.invokeChain(
              rt.chain.map((c) => ({ step: c.wire, config: c.config })),
              input,
              { consumers, timeoutMs, signal },
            );
          } finally {
            signal.removeEventListener("abort", free);
            free();
          }
          if (!outcome.ok) {
            const e = outcome.error;
            if (pluginErrorClass(e) === "fatal") throw new FatalStageError(e.message, { cause: e });
            const step = rt.chain[e.details.stepIndex ?? 0]?.label;
            throw new StepAttemptError(e.message, step, e.code === "timeout", { cause: e });
          }
          const output = outcome.output;
          const lease = registry.open(output);
          return {
            value: lease.table,
            handle: s.consumers.length > 0 ? output : undefined,
            rowErrors: outcome.rowErrors.map((e) => ({
              row: e.row,
              message: e.message,
              step: rt.chain[e.stepIndex]?.label,
            })),
            dispose: (forwarded) => {
              lease.release();
              if (!forwarded) { for (let i = 0; i < consumers; i++) registry.release(output.id); }
            },
          };
        };
      case "source":
        throw new FatalStageError("a source cannot consume batches");
    }
  }

  #compile(s: PlannedStage, relations: Record<string, Table>): CompiledQuery {
    const schemas = Object.fromEntries(Object.entries(relations).map(([k, t]) => [k, t.schema]));
    const text = s.ir.prql ?? "";
    const key = `${schemaKey(schemas)}\n${text}`;
    const hit = compiledQueries.get(key);
    if (hit) return hit;
    const result = compilePrql(text, schemas);
    if (!result.value) {
      const messages = result.diagnostics.map((d) => d.message).join("; ");
      throw new FatalStageError(`the PRQL block does not compile for this input: ${messages}`);
    }
    if (compiledQueries.size >= COMPILED_QUERIES_KEPT) {
      compiledQueries.delete(compiledQueries.keys().next().value!);
    }
    compiledQueries.set(key, result.value);
    return result.value;
  }

  /** Lets the interceptor see (and hold) a batch; its failures never reach the run. */
  async #intercept(s: PlannedStage, table: Table): Promise<void> {
    const intercept = this.settings.intercept!;
    const { id, label, graph, consumers } = s;
    try {
      await intercept({ id, label, graph, span: s.ir.span, consumers }, table);
    } catch {
      // An interceptor observes; a failing one must not fail the run.
    }
  }

  async #process(s: PlannedStage, env: Work, table: Table): Promise<void> {
    if (this.settings.intercept) await this.#intercept(s, table);
    const runner = new FaultRunner(s.retry, this.settings.random, this.#hard.signal);
    // Numbered as batches start: a sink with several writes outstanding starts the next
    // before the earlier ones are counted as done.
    const batch = this.#begun.get(s.id) ?? 0;
    this.#begun.set(s.id, batch + 1);
    const event = { stage: s.id, batch };
    const isolated: Isolated<Table | null> = await runner.run(table, this.#operation(s, env), {
      started: (attempt, rows) => this.#emit({ type: "attempt-started", ...event, attempt, rows }),
      failed: (attempt, rows, error, retryInMs) =>
        this.#emit({
          type: "attempt-failed",
          ...event,
          attempt,
          rows,
          error: describeError(error, { stage: s.id, step: stepOf(error) ?? s.label, row: null }),
          retryInMs,
        }),
      succeeded: (attempt, rows, durationMs) =>
        this.#emit({ type: "attempt-succeeded", ...event, attempt, rows, durationMs }),
    });
    const forwarded = new Set<string>();
    try {
      const indexes: number[] = [];
      const details: ErrorDetails[] = [];
      const infos: ErrorInfo[] = [];
      for (const f of isolated.failures) {
        const step = f.step ?? s.label;
        const info = describeError(f.error, { stage: s.id, step, row: f.rows[0] });
        for (const row of f.rows) {
          indexes.push(row);
          details.push({ step, message: f.message, attempt: f.attempt });
          infos.push(info);
        }
      }
      for (const { piece, result } of isolated.results) {
        for (const e of result.rowErrors) {
          const row = piece.offset + e.row;
          const step = e.step ?? s.label;
          indexes.push(row);
          details.push({ step, message: e.message, attempt: 1 });
          infos.push(describeRejected({ stage: s.id, step, row }));
        }
      }
      const outputs = isolated.results.filter((r) =>
        r.result.value !== null && r.result.value.numRows > 0
      ).flatMap((r) =>
        this.#blocking.has(s.id) ? this.#microBatches(r.result.value!) : [{
          table: r.result.value!,
          handle: r.result.handle,
        }]
      );
      const rt = this.#runtimes.get(s.id)!;
      const failed = indexes.length > 0 ? 1 : 0;
      if (rt.kind === "sink") {
        if (rt.sink.acknowledges === "on-flush") {
          if (!this.#held.has(s.id)) this.#held.set(s.id, []);
          this.#held.get(s.id)!.push(env.origins);
          this.#lineage.adjust(env.origins, failed);
        } else this.#lineage.adjust(env.origins, failed - 1);
      } else {
        this.#lineage.adjust(env.origins, outputs.length * s.consumers.length + failed - 1);
      }
      for (const out of outputs) {
        if (out.handle) forwarded.add(out.handle.id);
        await this.#send(s, out.table, env.origins, env.pins, out.handle);
      }
      if (failed) {
        const order = indexes.map((_, k) => k).sort((a, b) => indexes[a] - indexes[b]);
        const rows = failedRows(table, order.map((k) => indexes[k]), order.map((k) => details[k]));
        const failures = order.map((k) => ({
          ...infos[k],
          row: indexes[k],
          attempt: details[k].attempt,
        }));
        await this.#quarantine(s, rows, env.origins, failures, batch);
      }
      const rowsOut = outputs.reduce((n, o) => n + o.table.numRows, 0);
      this.#progress(
        s,
        env.rows,
        rt.kind === "sink" ? env.rows - indexes.length : rowsOut,
        indexes.length,
      );
    } finally {
      for (const r of isolated.results) {
        r.result.dispose(r.result.handle !== undefined && forwarded.has(r.result.handle.id));
      }
    }
  }
}
