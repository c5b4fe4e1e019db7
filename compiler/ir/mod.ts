/**
 * The IR: a checked program lowered into a DAG of stages per workflow and handler, each with
 * its module operation, config (environment references left unresolved), resource
 * bindings, input edges with row schemas, retry policy and handler. It is plain JSON-able
 * data that the optimiser rewrites and the runtime plans from; see docs/ir.md. Lowering
 * never fails on a checked program and never evaluates the environment.
 */
import type { Result } from "../diagnostics/_types.ts";
import type * as Ast from "../syntax/mod.ts";
import type { RowSchema, Typed } from "../types/mod.ts";

export { IR_CODES } from "./_codes.ts";
export { irToDot, irToJson, irToMermaid, irToText } from "./_render.ts";

export type StageKind =
  /** Produces rows (`kafka.consume`, `file.read`). */
  | "source"
  /** An inline PRQL query over `input` (possibly fused from several blocks). */
  | "prql"
  /** A module operation invoked per micro-batch (a plugin step, `llm.prompt`, a query). */
  | "call"
  /** A PRQL join against a query step, run as one batched lookup per micro-batch. */
  | "lookup-join"
  /** Consumes rows (`kafka.produce`). */
  | "sink"
  /** The failed rows entering a handler (`*`). */
  | "handler-input";

/** A config value with environment references kept symbolic. */
export type IrValue =
  | string
  | number
  | boolean
  | null
  | { duration_ms: number }
  | { env: string; secret: boolean; default: string | null }
  | IrValue[]
  | { [key: string]: IrValue };

export interface RetryPolicy {
  attempts: number;
  backoff_ms: number;
  max_backoff_ms: number;
  timeout_ms: number | null;
  jitter: boolean;
}

export interface IrStage {
  id: string;
  kind: StageKind;
  /** `fhub/kafka`, `fraud-score/detect`; null for PRQL. */
  module: string | null;
  op: string | null;
  /** The plugin runtime that runs it (`builtin`, `python`, ...); `prql` for PRQL. */
  runtime: string;
  /** The declared step name, when the stage calls a step. */
  step: string | null;
  config: Record<string, IrValue>;
  /** Slot to resource id. */
  resources: Record<string, string>;
  inputs: Array<{ from: string; schema: RowSchema | null }>;
  output: RowSchema | null;
  /** For `prql`: the query; for `lookup-join`: details of the lookup. */
  prql: string | null;
  lookup: LookupJoin[] | null;
  retry: RetryPolicy | null;
  handler: string | null;
  /** Source offset range, for `heddle inspect` and the debugger. */
  span: { start: number; end: number };
  /** Stage ids this stage was made from by the optimiser. */
  fusedFrom: string[];
  /**
   * For a fused plugin stage: the chain of calls it runs in one invocation, in order; the
   * first is the stage's own (`module`, `op`, `step`, `config`). Null for any other stage.
   */
  calls: IrCall[] | null;
}

/** One call of a fused plugin chain: each reads what the call before it produced. */
export interface IrCall {
  module: string;
  op: string;
  step: string | null;
  config: Record<string, IrValue>;
  /** The row schema the call reads (the previous call's output) and the one it produces. */
  input: RowSchema | null;
  output: RowSchema | null;
}

/** One batched lookup of a PRQL join against a query step. */
export interface LookupJoin {
  step: string;
  resource: string;
  dialect: "postgres" | "clickhouse";
  /** The query rewritten to take an array parameter. */
  query: string;
  param: string;
  keys: Array<[string, string]>;
  side: string;
  /** Only these columns of the lookup are fetched (projection pushdown). */
  columns: string[] | null;
}

export interface IrResource {
  id: string;
  module: string;
  kind: string;
  config: Record<string, IrValue>;
}

export interface IrGraph {
  name: string;
  kind: "workflow" | "handler";
  handler: string | null;
  stages: IrStage[];
}

export interface IrDecision {
  kind: "fusion" | "lookup-batching" | "projection-pushdown";
  stages: string[];
  explanation: string;
}

/** A plugin module the program imports, and where its package is. */
export interface IrModule {
  path: string;
  runtime: string;
  entry: string[];
  dir: string | null;
  /**
   * Set by a daemon's deploy: the package the control plane keeps for this module, by
   * content hash, directory name under a module root, and the directory's place in the
   * package's tree when it carries directories outside it (runtime/plugins `PackageRef`).
   */
  package?: { hash: string; name: string; dir?: string };
}

export interface Ir {
  version: 1;
  file: string;
  resources: IrResource[];
  modules: IrModule[];
  graphs: IrGraph[];
  decisions: IrDecision[];
}

export function lower(typed: Typed): Result<Ir> {
  const r = typed.resolved;
  const ir: Ir = {
    version: 1,
    file: r.file,
    resources: [...r.resources.entries()].map(([id, res]) => ({
      id,
      module: res.module.path,
      kind: res.kind.name,
      config: configOf(res.decl.config),
    })),
    modules: [...new Set(r.modules.values())].map((m) => ({
      path: m.path,
      runtime: m.runtime,
      entry: m.entry,
      dir: m.dir,
    })),
    graphs: [],
    decisions: [],
  };
  for (const item of r.program.items) {
    if (item.kind === "Workflow") {
      ir.graphs.push(
        graph(typed, item.name.name, "workflow", item.handler?.name ?? null, item.body),
      );
    } else if (item.kind === "Handler") {
      ir.graphs.push(graph(typed, item.name.name, "handler", null, item.body));
    }
  }
  return { value: ir, diagnostics: [] };
}

function graph(
  typed: Typed,
  name: string,
  kind: "workflow" | "handler",
  handler: string | null,
  body: Ast.Statement[],
): IrGraph {
  const stages: IrStage[] = [];
  const streams = new Map<string, string>();
  let n = 0;
  for (const st of body) {
    let prev: string | null = null;
    for (const stage of st.pipeline.stages) {
      if (stage.kind === "Ref") {
        const target = typed.resolved.refs.get(stage);
        if (target?.kind === "stream") {
          prev = streams.get(target.name) ?? null;
          continue;
        }
      }
      const s = lowerStage(typed, stage, `${name}.${n++}`, stage === st.pipeline.stages[0]);
      if (!s) continue;
      const types = typed.stages.get(stage);
      if (prev) s.inputs.push({ from: prev, schema: types?.input ?? null });
      s.output = types?.output ?? null;
      stages.push(s);
      prev = s.id;
    }
    if (st.binding && prev) streams.set(st.binding.name, prev);
  }
  return { name, kind, handler, stages };
}

function lowerStage(
  typed: Typed,
  stage: Ast.Stage,
  id: string,
  first: boolean,
): IrStage | null {
  const base: IrStage = {
    id,
    kind: "call",
    module: null,
    op: null,
    runtime: "builtin",
    step: null,
    config: {},
    resources: {},
    inputs: [],
    output: null,
    prql: null,
    lookup: null,
    retry: stage.retry ? retryOf(stage.retry) : null,
    handler: stage.handler?.name ?? null,
    span: { start: stage.span.start, end: stage.span.end },
    fusedFrom: [],
    calls: null,
  };
  if (stage.kind === "Wildcard") return { ...base, kind: "handler-input", runtime: "builtin" };
  if (stage.kind === "Prql") {
    return { ...base, kind: "prql", runtime: "prql", prql: stage.text.trim() };
  }
  let call = stage.kind === "Call" ? typed.resolved.calls.get(stage) : undefined;
  let step: string | null = null;
  if (stage.kind === "Ref") {
    const t = typed.resolved.refs.get(stage);
    if (t?.kind === "step" && t.step.call) {
      call = t.step.call;
      step = t.step.decl.name.name;
    }
  }
  if (!call) return null;
  return {
    ...base,
    // A query without `@params` that starts a pipeline is its source (the resolver allowed it).
    kind: call.op.role === "source" || (call.op.role === "lookup" && first)
      ? "source"
      : call.op.role === "sink"
      ? "sink"
      : "call",
    module: call.module.path,
    op: call.op.name,
    runtime: call.module.runtime,
    step,
    config: configOf(call.node.config),
    resources: Object.fromEntries(call.injections),
    retry: base.retry ?? (call.node.retry ? retryOf(call.node.retry) : null),
    handler: base.handler ?? call.node.handler?.name ?? null,
  };
}

export function valueOf(v: Ast.Value): IrValue {
  switch (v.kind) {
    case "String":
    case "Number":
    case "Bool":
      return v.value;
    case "Null":
    case "ErrorValue":
      return null;
    case "Duration":
      return { duration_ms: v.milliseconds };
    case "List":
      return v.items.map(valueOf);
    case "Object":
      return configOf(v);
    case "Env":
      return { env: v.name.value, secret: v.secret, default: v.default?.value ?? null };
  }
}

function configOf(obj: Ast.ObjectLit | null): Record<string, IrValue> {
  return Object.fromEntries((obj?.fields ?? []).map((f) => [f.key.name, valueOf(f.value)]));
}

/**
 * The retry policy of a stage without a `retry` clause, and of every key a clause leaves
 * out: the language's defaults (docs/language.md, "Retry policy").
 */
export const DEFAULT_RETRY: Readonly<RetryPolicy> = {
  attempts: 3,
  backoff_ms: 200,
  max_backoff_ms: 30_000,
  timeout_ms: 30_000,
  jitter: true,
};

function retryOf(obj: Ast.ObjectLit): RetryPolicy {
  const c = configOf(obj);
  const ms = (v: IrValue | undefined, d: number | null) =>
    v && typeof v === "object" && "duration_ms" in v ? v.duration_ms as number : d;
  return {
    attempts: typeof c.attempts === "number" ? c.attempts : DEFAULT_RETRY.attempts,
    backoff_ms: ms(c.backoff, DEFAULT_RETRY.backoff_ms)!,
    max_backoff_ms: ms(c.max_backoff, DEFAULT_RETRY.max_backoff_ms)!,
    timeout_ms: ms(c.timeout, DEFAULT_RETRY.timeout_ms),
    jitter: c.jitter !== false,
  };
}
