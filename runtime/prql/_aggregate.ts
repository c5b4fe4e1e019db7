/**
 * Aggregates (count, sum, average, min, max, count_distinct) as `aggregate` computes them per
 * group: their checked argument and output type, and their evaluation over group ids. Kept
 * apart from the planner so that windows (_window.ts) check their aggregates the same way.
 */
import type * as arrow from "apache-arrow";
import { broadcast, type Column, defaultType, gather, type Kind } from "./_column.ts";
import {
  type CompiledExpr,
  compileExpr,
  type Frame,
  type TypeEnv,
  UnsupportedError,
} from "./_expr.ts";
import { countDistinct } from "./_keys.ts";
import { type CId, type Expr, type Literal, tagOf } from "./_rq.ts";
import { rowComparator } from "./_sort.ts";

export type AggName = "count" | "sum" | "average" | "min" | "max" | "count_distinct";

export const AGGREGATES = new Set<string>([
  "count",
  "sum",
  "average",
  "min",
  "max",
  "count_distinct",
]);

export interface AggPlan {
  id: CId;
  name: AggName;
  arg: CompiledExpr | null;
  out: { kind: Kind; type: arrow.DataType };
}

export function compileAggregate(id: CId, expr: Expr, env: TypeEnv): AggPlan {
  const op = (expr.kind as { Operator?: { name: string; args: Expr[] } }).Operator;
  const name = op?.name.replace(/^std\./, "") ?? "";
  if (!op || !AGGREGATES.has(name)) {
    throw new UnsupportedError(
      `the aggregate \`${name || tagOf(expr.kind)}\` is not supported by the PRQL engine`,
      name || undefined,
      [`supported aggregates: ${[...AGGREGATES].join(", ")}`],
    );
  }
  const rawArg = op.args[0];
  const countStar = name === "count" &&
    (rawArg.kind as { Literal?: Literal }).Literal === "Null";
  const arg = countStar ? null : compileExpr(rawArg, env);
  const argKind = arg?.kind === "null" ? "int" : arg?.kind;
  let out: { kind: Kind; type: arrow.DataType };
  if (name === "count" || name === "count_distinct") {
    out = { kind: "int", type: defaultType("int") };
  } else if (name === "average" || name === "sum") {
    if (argKind !== "int" && argKind !== "float") {
      throw new UnsupportedError(`\`${name}\` expects a number, found \`${argKind}\``, name);
    }
    out = name === "average" || argKind === "float"
      ? { kind: "float", type: defaultType("float") }
      : { kind: "int", type: defaultType("int") };
  } else {
    const k = argKind as Kind;
    out = { kind: k, type: arg?.type ?? defaultType(k) };
  }
  return { id, name: name as AggName, arg, out };
}

export function runAggregate(a: AggPlan, frame: Frame, gid: Int32Array, groups: number): Column {
  const col = a.arg ? a.arg.eval(frame) : null;
  const s = col?.scalar ? 0 : 1;
  const n = frame.n;
  const valid = col?.valid ?? null;
  const ok = (i: number) => !valid || valid[i * s] === 1;
  const count = new Float64Array(groups);
  if (a.name === "count") {
    for (let i = 0; i < n; i++) if (!col || ok(i)) count[gid[i]]++;
    return { ...a.out, scalar: false, nums: count, strs: null, valid: null };
  }
  if (a.name === "count_distinct") {
    const nums = countDistinct(col!.scalar ? broadcast(col!, n) : col!, gid, groups, n);
    return { ...a.out, scalar: false, nums, strs: null, valid: null };
  }
  if (a.name === "sum" || a.name === "average") {
    const sum = new Float64Array(groups);
    const x = col!.nums!;
    for (let i = 0; i < n; i++) {
      if (!ok(i)) continue;
      sum[gid[i]] += x[i * s];
      count[gid[i]]++;
    }
    if (a.name === "sum") {
      // prql-js writes COALESCE(SUM(x), 0): an empty or all-NULL group sums to 0.
      return { ...a.out, scalar: false, nums: sum, strs: null, valid: null };
    }
    const valid = new Uint8Array(groups);
    for (let g = 0; g < groups; g++) {
      if (count[g] > 0) (sum[g] /= count[g], valid[g] = 1);
    }
    return { ...a.out, scalar: false, nums: sum, strs: null, valid };
  }
  // min and max: keep the best row per group, then gather it.
  const best = new Int32Array(groups).fill(-1);
  const cmp = rowComparator(col!, a.name === "max");
  for (let i = 0; i < n; i++) {
    if (!ok(i)) continue;
    const g = gid[i], b = best[g];
    if (b < 0 || cmp(i, b) < 0) best[g] = i;
  }
  return gather(col!.scalar ? broadcast(col!, n) : col!, best);
}
