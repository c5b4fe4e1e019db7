/**
 * The streaming executor: runs one workflow of a compiled program (the optimised IR) over
 * micro-batches, with bounded queues for backpressure, batches in the data locality
 * registry, retries and row isolation for faults, handlers for failed rows, and source
 * positions committed only after every derived row was acknowledged (docs/executor.md).
 * The worker daemon and `heddle run` call it; it never exits, prints or installs signal
 * handlers by itself, and user errors come back in the summary, never as exceptions.
 */
import type { Ir } from "../../compiler/ir/mod.ts";
import { builtinConnectors, type ConnectorRegistry, type Position } from "../connectors/mod.ts";
import type { EventSink, RunSummary } from "./_events.ts";
import { plan } from "./_plan.ts";
import type { BatchRegistry, PluginInvoker, StageInterceptor } from "./_ports.ts";
import { Run } from "./_run.ts";

export type {
  EventSink,
  OutputReport,
  OutputState,
  RunEvent,
  RunStatus,
  RunSummary,
  StageStats,
} from "./_events.ts";
export type { BatchRegistry, InterceptedStage, PluginInvoker, StageInterceptor } from "./_ports.ts";
export { DEFAULT_RETRY, type RetryPolicy } from "./_plan.ts";

export interface RunOptions {
  /** Where batches live between stages. */
  registry: BatchRegistry;
  /** The `fhub/*` implementations; default: every built-in connector. */
  connectors?: ConnectorRegistry;
  /** Runs plugin steps (a `PluginHost`); a program with plugin steps needs one. */
  plugins?: PluginInvoker;
  /** Receives every event; it must not throw (if it does, the event is dropped). */
  onEvent?: EventSink;
  /** Aborting it drains the run, like `stop()`. */
  signal?: AbortSignal;
  /** The workflow to run; may be omitted when the program has exactly one. */
  workflow?: string;
  /** Batches a queue between two stages holds before its producer waits (default 4). */
  queueCapacity?: number;
  /** Rows per source micro-batch (default 1024). */
  batchRows?: number;
  /** Directory relative paths in configs are resolved against (default: the IR's file's). */
  baseDir?: string;
  /** Directories file paths must stay in (real paths); undefined allows any path. */
  allowPaths?: readonly string[];
  /** Positions committed by an earlier run, by source stage id: sources resume after them. */
  resume?: Record<string, Position>;
  /** Reads `env(...)`/`secret(...)` values (default: the process environment). */
  env?: (name: string) => string | undefined;
  /** The run's id in events and the summary (default: a random UUID). */
  runId?: string;
  /** Uniform random numbers in [0, 1) for backoff jitter (default: Math.random). */
  random?: () => number;
  /** Sees every batch before a stage handles it, and may hold it (the debugger does). */
  intercept?: StageInterceptor;
}

/** A run in progress: `stop()` drains it; `done` resolves with its summary. */
export interface RunHandle {
  readonly runId: string;
  stop(): void;
  readonly done: Promise<RunSummary>;
}

function dirOf(file: string): string {
  const slash = file.lastIndexOf("/");
  return slash > 0 ? file.slice(0, slash) : slash === 0 ? "/" : ".";
}

/** Starts running a workflow of `ir` and returns at once. */
export function startWorkflow(ir: Ir, options: RunOptions): RunHandle {
  const runId = options.runId ?? crypto.randomUUID();
  const onEvent = options.onEvent ?? (() => {});
  const planned = plan(ir, options.workflow ?? null, options.env ?? ((n) => Deno.env.get(n)));
  if (!planned.ok) {
    const summary: RunSummary = {
      runId,
      workflow: options.workflow ?? "",
      status: "failed",
      durationMs: 0,
      stages: {},
      rowsQuarantined: 0,
      committed: {},
      outputs: [],
      error: { message: planned.message, stage: null },
    };
    try {
      onEvent({ type: "run-finished", runId, at: Date.now(), summary });
    } catch {
      // A failing observer must not fail the run.
    }
    return { runId, stop: () => {}, done: Promise.resolve(summary) };
  }
  const run = new Run(ir, planned.plan, {
    runId,
    registry: options.registry,
    connectors: options.connectors ?? builtinConnectors(),
    plugins: options.plugins ?? null,
    onEvent,
    queueCapacity: Math.max(1, options.queueCapacity ?? 4),
    batchRows: Math.max(1, options.batchRows ?? 1024),
    baseDir: options.baseDir ?? dirOf(ir.file),
    allowPaths: options.allowPaths,
    resume: options.resume ?? {},
    random: options.random ?? Math.random,
    intercept: options.intercept ?? null,
  });
  return { runId, stop: () => run.stop(), done: run.execute(options.signal) };
}

/** Runs a workflow of `ir` to its end (bounded sources) or until `signal` aborts. */
export function runWorkflow(ir: Ir, options: RunOptions): Promise<RunSummary> {
  return startWorkflow(ir, options).done;
}

/**
 * Wires SIGINT and SIGTERM to `stop` (drain) for the process that hosts runs; returns a
 * function that removes the listeners. The executor itself never installs them.
 */
export function drainOnSignals(stop: () => void): () => void {
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);
  return () => {
    for (const s of signals) Deno.removeSignalListener(s, stop);
  };
}
