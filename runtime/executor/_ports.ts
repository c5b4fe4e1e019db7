/**
 * What the executor uses of parts built elsewhere, narrowed to the calls it makes, so that
 * tests and other hosts can pass anything with the same shape: the data locality registry
 * (runtime/registry) and the plugin host (runtime/plugins). It must stay structural; the
 * behaviour behind these calls is specified by those folders.
 */
import type { Table } from "apache-arrow";
import type { PluginHost } from "../plugins/mod.ts";
import type { Registry } from "../registry/mod.ts";

/** What the executor uses of the registry: put, open (leased), release. */
export type BatchRegistry =
  & Pick<Registry, "put" | "open" | "release">
  // Where a blocking sort spills and how much it may hold (absent: it never spills).
  & Partial<Pick<Registry, "memoryBudget" | "spillDir">>;

/** What the executor uses of the plugin host: `invokeChain` (one step is a chain of one). */
export type PluginInvoker = Pick<PluginHost, "invokeChain">;

/** A stage as an interceptor sees it. */
export interface InterceptedStage {
  id: string;
  /** As in events: the step name, the qualified operation, `prql` or `*`. */
  label: string;
  /** The workflow or handler the stage belongs to. */
  graph: string;
  /** Where the stage is written in the program (UTF-16 offsets). */
  span: { start: number; end: number };
  /** The stages its output goes to. */
  consumers: string[];
}

/**
 * Called before a stage handles a batch (a source: before the batch it read is sent on); the
 * stage waits for the returned promise. A debugger holds it to pause the stage, and the
 * bounded queues then hold everything upstream. It must not keep `table` after it resolves;
 * if it throws, the batch goes on as if it had returned.
 */
export type StageInterceptor = (stage: InterceptedStage, table: Table) => Promise<void> | void;
