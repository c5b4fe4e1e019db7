/**
 * From the optimised IR to what the executor runs: one workflow graph plus the handler
 * graphs it can reach, with consumers, tiers, retry policies and configs (environment
 * references resolved) worked out once. Everything past this file trusts the plan. It must
 * never rewrite the graph: fusion and batching decisions belong to the optimiser.
 */
import {
  DEFAULT_RETRY as LANGUAGE_RETRY,
  type Ir,
  type IrStage,
  type IrValue,
  type RetryPolicy as IrRetry,
} from "../../compiler/ir/mod.ts";
import { type ArrowType, parseType } from "../../compiler/modules/mod.ts";
import type { RowSchema } from "../../compiler/types/mod.ts";
import type { ColumnSpec } from "../connectors/mod.ts";

/** A validated retry policy; defaults are those of docs/language.md. */
export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  timeoutMs: number;
  jitter: boolean;
}

/** The language's default policy, for stages the program gives no `retry` clause. */
export const DEFAULT_RETRY: RetryPolicy = retryOf(LANGUAGE_RETRY);

export interface PlannedStage {
  ir: IrStage;
  id: string;
  /**
   * What events and `_error_step` call the stage: the declared step name, else the qualified
   * operation (`fhub/file.read`), `prql`, or `*`.
   */
  label: string;
  /** The graph (workflow or handler) the stage belongs to. */
  graph: string;
  /**
   * 0 for the workflow's own stages, 1 for step handlers, 2 for the workflow's handler:
   * a handler's input closes only when every stage of a lower tier is done.
   */
  tier: number;
  consumers: string[];
  /** The handler (by name) that receives this stage's failed rows, or null: unhandled. */
  handler: string | null;
  retry: RetryPolicy;
  config: Record<string, unknown>;
  /**
   * For a plugin stage: the steps it runs in one invocation (one, or a fused chain), each
   * with its wire name, its label (what `_error_step` says) and its resolved config.
   */
  chain: PlannedCall[];
  resources: Record<string, Record<string, unknown>>;
  /** Input row type (first input), for sinks and handler inputs. */
  inputSchema: ColumnSpec[] | null;
  outputSchema: ColumnSpec[] | null;
}

export interface PlannedCall {
  /** `<import path>.<op>`, as the plugin protocol names a step. */
  wire: string;
  label: string;
  config: Record<string, unknown>;
}

/** The calls a plugin stage runs; empty for any other stage. */
function chainOf(s: IrStage, env: EnvLookup): PlannedCall[] {
  if (s.kind !== "call" || s.runtime === "builtin") return [];
  const calls = s.calls ??
    [{ module: s.module!, op: s.op!, step: s.step, config: s.config }];
  return calls.map((c) => ({
    wire: `${c.module}.${c.op}`,
    label: c.step ?? `${c.module}.${c.op}`,
    config: resolveConfig(c.config, env),
  }));
}

export interface Plan {
  workflow: string;
  stages: Map<string, PlannedStage>;
  /** Handler name to the id of its `*` stage. */
  handlerInputs: Map<string, string>;
}

export type PlanResult = { ok: true; plan: Plan } | { ok: false; message: string };

export type EnvLookup = (name: string) => string | undefined;

function resolveValue(v: IrValue, env: EnvLookup): unknown {
  if (Array.isArray(v)) return v.map((x) => resolveValue(x, env));
  if (v && typeof v === "object") {
    if ("duration_ms" in v && Object.keys(v).length === 1) return v.duration_ms;
    if ("env" in v && "secret" in v) {
      const found = env(v.env as string);
      if (found === undefined && v.default === null) {
        throw new Error(`environment variable \`${v.env}\` is not set and has no default`);
      }
      return found ?? v.default;
    }
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k, resolveValue(x as IrValue, env)]),
    );
  }
  return v;
}

function resolveConfig(
  config: Record<string, IrValue>,
  env: EnvLookup,
): Record<string, unknown> {
  return resolveValue(config, env) as Record<string, unknown>;
}

function retryOf(r: Readonly<IrRetry> | null): RetryPolicy {
  const policy = r ?? LANGUAGE_RETRY;
  return {
    attempts: Math.max(1, Math.floor(policy.attempts)),
    backoffMs: Math.max(0, policy.backoff_ms),
    maxBackoffMs: Math.max(0, policy.max_backoff_ms),
    timeoutMs: policy.timeout_ms ?? LANGUAGE_RETRY.timeout_ms!,
    jitter: policy.jitter,
  };
}

/** The edge's columns; a type the compiler could not pin (or cannot be parsed) stays open. */
export function columnsOf(schema: RowSchema | null | undefined): ColumnSpec[] | null {
  if (!schema) return null;
  return schema.fields.map((f) => {
    const parsed = f.type ? parseType(f.type) : null;
    const type: ArrowType | null = parsed && typeof parsed !== "string" ? parsed : null;
    return { name: f.name, type, nullable: f.nullable };
  });
}

function labelOf(s: IrStage): string {
  if (s.step) return s.step;
  if (s.kind === "prql" || s.kind === "lookup-join") return "prql";
  if (s.kind === "handler-input") return "*";
  return `${s.module}.${s.op}`;
}

/**
 * Plans workflow `name` (the only workflow when null). Fails with a message when the
 * workflow does not exist, a handler is missing, or an environment reference is unset.
 */
export function plan(ir: Ir, name: string | null, env: EnvLookup): PlanResult {
  const workflows = ir.graphs.filter((g) => g.kind === "workflow");
  const workflow = name === null ? workflows[0] : workflows.find((g) => g.name === name);
  if (!workflow || (name === null && workflows.length !== 1)) {
    const names = workflows.map((g) => `\`${g.name}\``).join(", ") || "none";
    return {
      ok: false,
      message: name === null
        ? `the program must have exactly one workflow to run without a name (found ${names})`
        : `no workflow \`${name}\` in the program (workflows: ${names})`,
    };
  }
  const handlers = new Map(ir.graphs.filter((g) => g.kind === "handler").map((g) => [g.name, g]));
  const resources = new Map(ir.resources.map((r) => [r.id, r]));
  const stages = new Map<string, PlannedStage>();
  const handlerInputs = new Map<string, string>();
  const pending: { graph: typeof workflow; tier: number }[] = [{ graph: workflow, tier: 0 }];
  // A handler with a source of its own gets failed rows from another host (a worker's part
  // of a placed run, runtime/control/_placement.ts): it runs even if no stage here feeds it.
  for (const h of handlers.values()) {
    if (h.stages.some((s) => s.kind === "source")) {
      pending.push({ graph: h, tier: h.name === workflow.handler ? 2 : 1 });
    }
  }
  pending.sort((a, b) => a.tier - b.tier);
  const seen = new Set<string>();
  try {
    while (pending.length > 0) {
      const { graph, tier } = pending.shift()!;
      if (seen.has(graph.name)) continue;
      seen.add(graph.name);
      for (const s of graph.stages) {
        const handler = s.handler ?? (tier < 2 ? workflow.handler : null);
        if (handler && handler !== graph.name) {
          const h = handlers.get(handler);
          if (!h) return { ok: false, message: `handler \`${handler}\` is not declared` };
          const hTier = handler === workflow.handler ? 2 : 1;
          pending.push({ graph: h, tier: hTier });
          if (hTier === 2) pending.sort((a, b) => a.tier - b.tier);
        }
        if (s.kind === "handler-input") handlerInputs.set(graph.name, s.id);
        stages.set(s.id, {
          ir: s,
          id: s.id,
          label: labelOf(s),
          graph: graph.name,
          tier,
          consumers: [],
          handler: handler === graph.name ? null : handler,
          retry: retryOf(s.retry),
          config: resolveConfig(s.config, env),
          chain: chainOf(s, env),
          resources: Object.fromEntries(
            Object.entries(s.resources).map(([slot, id]) => [
              slot,
              resolveConfig(resources.get(id)?.config ?? {}, env),
            ]),
          ),
          inputSchema: columnsOf(s.inputs[0]?.schema),
          outputSchema: columnsOf(s.output),
        });
      }
    }
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
  for (const s of stages.values()) {
    for (const input of s.ir.inputs) stages.get(input.from)?.consumers.push(s.id);
  }
  return { ok: true, plan: { workflow: workflow.name, stages, handlerInputs } };
}
