/**
 * The optimiser: rewrites the IR without changing what a program computes, and records
 * every decision with an explanation for `heddle inspect --ir`. Passes: operator fusion
 * (adjacent PRQL blocks become one query; adjacent steps of one plugin runtime become one
 * invocation), lookup-join batching (a PRQL join against a parameterised query step becomes
 * one array-parameter query per micro-batch plus a hash join), projection pushdown (a
 * lookup fetches only the columns used downstream). It must never read the AST.
 */
import type { Result } from "../diagnostics/_types.ts";
import type { Ir, IrCall, IrGraph, IrStage, LookupJoin } from "../ir/mod.ts";
import type { PrqlBlock, Typed } from "../types/mod.ts";

/** What the optimiser needs besides the IR: the PRQL joins and SQL steps found by typing. */
export interface OptimiseContext {
  typed: Typed;
}

export function optimise(input: Ir, ctx: OptimiseContext): Result<Ir> {
  const ir: Ir = structuredClone(input);
  // Typed PRQL blocks by where they start, built once: a lookup per stage, not a scan.
  const blocks = new Map<number, PrqlBlock>();
  for (const [node, info] of ctx.typed.prql) blocks.set(node.span.start, info);
  for (const g of ir.graphs) {
    batchLookups(ir, g, ctx, blocks);
    fusePrql(ir, g);
    fuseRuntime(ir, g);
  }
  return { value: ir, diagnostics: [] };
}

/** Consumers of each stage in a graph. */
function consumers(g: IrGraph): Map<string, IrStage[]> {
  const m = new Map<string, IrStage[]>();
  for (const s of g.stages) {
    for (const i of s.inputs) m.set(i.from, [...(m.get(i.from) ?? []), s]);
  }
  return m;
}

/** Merges `b` into `a` when b is a's only consumer and a is b's only input. */
function fuse(
  ir: Ir,
  g: IrGraph,
  canFuse: (a: IrStage, b: IrStage) => boolean,
  merge: (a: IrStage, b: IrStage) => void,
  explain: (a: IrStage, b: IrStage) => string,
): void {
  let changed = true;
  while (changed) {
    changed = false;
    const uses = consumers(g);
    for (const b of g.stages) {
      if (b.inputs.length !== 1) continue;
      const a = g.stages.find((s) => s.id === b.inputs[0].from);
      if (!a || uses.get(a.id)?.length !== 1 || !canFuse(a, b)) continue;
      ir.decisions.push({ kind: "fusion", stages: [a.id, b.id], explanation: explain(a, b) });
      merge(a, b);
      a.fusedFrom = [...(a.fusedFrom.length ? a.fusedFrom : [a.id]), b.id];
      a.output = b.output;
      a.handler = a.handler ?? b.handler;
      for (const s of g.stages) {
        for (const i of s.inputs) if (i.from === b.id) i.from = a.id;
      }
      g.stages = g.stages.filter((s) => s !== b);
      changed = true;
      break;
    }
  }
}

/** `from input` opening a block, and any other mention of `input` in it. */
const FROM_INPUT = /^\s*from\s+input\b/;
const INPUT = /\binput\b/g;

/**
 * A block that starts `from input` and names `input` nowhere else is a pure continuation of
 * whatever feeds it, so its transforms can follow the previous block's in one pipeline.
 */
function continuesInput(prql: string): boolean {
  return FROM_INPUT.test(prql) && (prql.match(INPUT)?.length ?? 0) === 1;
}

function fusePrql(ir: Ir, g: IrGraph): void {
  fuse(
    ir,
    g,
    (a, b) =>
      a.kind === "prql" && b.kind === "prql" && !a.handler && !b.handler &&
      continuesInput(b.prql!),
    (a, b) => {
      // PRQL pipelines compose by concatenation: b's transforms run on a's result.
      // `from input | filter x` leaves `| filter x`, and a line may not start with a pipe.
      const rest = b.prql!.replace(FROM_INPUT, "").replace(/^\s*\|?\s*/, "");
      a.prql = `${a.prql!.trimEnd()}\n${rest}`;
    },
    (a, b) =>
      `adjacent PRQL blocks ${a.id} and ${b.id} run as one query: no batch is materialised between them`,
  );
}

/** The calls a plugin stage runs: its chain when fused, else itself alone. */
function callsOf(s: IrStage): IrCall[] {
  return s.calls ?? [{
    module: s.module!,
    op: s.op!,
    step: s.step,
    config: s.config,
    input: s.inputs[0]?.schema ?? null,
    output: s.output,
  }];
}

const nameOf = (s: IrStage) => callsOf(s).map((c) => c.step ?? `${c.module}.${c.op}`).join(", ");

/** The plugin package directory of a module (null for built-ins and unknown modules). */
function packageOf(ir: Ir, module: string | null): string | null {
  return ir.modules.find((m) => m.path === module)?.dir ?? null;
}

/** Why two adjacent plugin calls cannot share an invocation, or null when they can. */
function runtimeObstacle(ir: Ir, a: IrStage, b: IrStage): string | null {
  if (a.kind !== "call" || b.kind !== "call" || a.runtime !== b.runtime) return "";
  if (["builtin", "prql"].includes(a.runtime)) return "";
  const dir = packageOf(ir, a.module);
  if (a.module !== b.module && (dir === null || dir !== packageOf(ir, b.module))) return "";
  if (a.handler !== b.handler) return "their failed rows go to different handlers";
  if (JSON.stringify(a.retry) !== JSON.stringify(b.retry)) {
    return "their retry policies differ, and one invocation has one policy";
  }
  return null;
}

function fuseRuntime(ir: Ir, g: IrGraph): void {
  fuse(
    ir,
    g,
    (a, b) => runtimeObstacle(ir, a, b) === null,
    (a, b) => {
      a.calls = [...callsOf(a), ...callsOf(b)];
    },
    (a, b) =>
      `${nameOf(a)} and ${
        nameOf(b)
      } run in the same ${a.runtime} plugin: one invocation passes each batch through ${
        callsOf(a).length + callsOf(b).length
      } steps in the plugin process and writes only the last output to shared memory`,
  );
  // Explained after fusing, so that the stage ids named are the ones the IR keeps.
  const uses = consumers(g);
  for (const b of g.stages) {
    const a = b.inputs.length === 1 ? g.stages.find((s) => s.id === b.inputs[0].from) : undefined;
    const why = a && uses.get(a.id)?.length === 1 ? runtimeObstacle(ir, a, b) : "";
    if (a && why) {
      ir.decisions.push({
        kind: "fusion",
        stages: [a.id, b.id],
        explanation: `${nameOf(a)} and ${nameOf(b)} stay separate ${a.runtime} invocations: ${why}`,
      });
    }
  }
}

/**
 * Rewrites `col = @p` into an array-parameter form per dialect; null when the query has no
 * single such predicate (then the lookup stays per row).
 */
export function batchQuery(
  query: string,
  dialect: "postgres" | "clickhouse",
  param: string,
  type = "Int64",
): string | null {
  const re = new RegExp(`([A-Za-z_][\\w.]*)\\s*=\\s*@${param}\\b`);
  if (!re.test(query)) return null;
  return query.replace(
    re,
    (_m, col) =>
      dialect === "postgres" ? `${col} = ANY(@${param})` : `${col} IN {${param}:Array(${type})}`,
  );
}

const CH_TYPES: Record<string, string> = {
  int64: "Int64",
  int32: "Int32",
  utf8: "String",
  float64: "Float64",
};

function batchLookups(
  ir: Ir,
  g: IrGraph,
  ctx: OptimiseContext,
  blocks: Map<number, PrqlBlock>,
): void {
  for (const s of g.stages) {
    if (s.kind !== "prql") continue;
    const info = blocks.get(s.span.start);
    if (!info || !info.joins.length) continue;
    const lookups: LookupJoin[] = [];
    for (const j of info.joins) {
      const sql = ctx.typed.sql.get(j.step);
      if (!sql || sql.params.length !== 1) continue;
      const param = sql.params[0];
      const ptype = sql.snapshot?.params.find((p) => p.name === param)?.type ?? "int64";
      const query = batchQuery(sql.query, sql.dialect, param, CH_TYPES[ptype] ?? "Int64");
      if (!query) {
        ir.decisions.push({
          kind: "lookup-batching",
          stages: [s.id],
          explanation: `join with ${j.step} stays per row: its query has no \`col = @${param}\``,
        });
        continue;
      }
      const used = usedDownstream(g, s);
      const columns = sql.columns && used ? sql.columns.filter((c) => used.has(c)) : sql.columns;
      lookups.push({
        step: j.step,
        resource: sql.resource,
        dialect: sql.dialect,
        query,
        param,
        keys: j.keys,
        side: j.side,
        columns,
      });
      ir.decisions.push({
        kind: "lookup-batching",
        stages: [s.id],
        explanation:
          `join with ${j.step} runs as one ${sql.dialect} query per micro-batch (${query}), then a hash join on ${
            j.keys.map(([l, r]) => `${l} = ${r}`).join(", ")
          }`,
      });
      if (used && sql.columns && columns!.length < sql.columns.length) {
        ir.decisions.push({
          kind: "projection-pushdown",
          stages: [s.id],
          explanation: `${j.step} fetches only ${
            columns!.join(", ")
          }: nothing downstream reads the rest`,
        });
      }
    }
    if (lookups.length) {
      s.kind = "lookup-join";
      s.lookup = lookups;
    }
  }
}

/** Column names read downstream of `s`, or null when some consumer keeps every column. */
function usedDownstream(g: IrGraph, s: IrStage): Set<string> | null {
  const uses = consumers(g).get(s.id) ?? [];
  const out = new Set<string>();
  for (const u of uses) {
    if (u.kind !== "call" || !u.inputs[0]?.schema || u.inputs[0].schema.open) return null;
    if (u.runtime === "builtin") return null;
    for (const f of u.inputs[0].schema.fields) out.add(f.name);
  }
  return uses.length ? out : null;
}
