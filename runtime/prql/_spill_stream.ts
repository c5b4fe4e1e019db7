/**
 * A group without keys (`aggregate {..}` alone) folded batch by batch: each input batch goes
 * through the query's row-by-row first steps and into running states (a count, a sum in row
 * order, the best value so far), and is released at once; the rest of the query runs over the
 * one row they give at the end. Nothing is spilled and memory holds one batch. The states are
 * folded in exactly the order the in-memory aggregate adds rows, so the result is the same to
 * the bit (a float sum depends on the order of its additions). `count_distinct` needs every
 * distinct value at once and is not folded (the planner does not offer such a query).
 */
import type * as arrow from "apache-arrow";
import type { AggPlan } from "./_aggregate.ts";
import { runAggregate } from "./_aggregate.ts";
import { type Column, concatAll } from "./_column.ts";
import type { Frame } from "./_expr.ts";
import type { Partitioned, Rows } from "./_plan.ts";
import type { CId } from "./_rq.ts";
import { rowComparator } from "./_sort.ts";
import { type ExternalSort, type ExternalSortOptions, slices } from "./_spill.ts";

interface State {
  a: AggPlan;
  /** Rows counted (count), or non-NULL values added (sum, average). */
  count: number;
  sum: number;
  /** min/max: the best value so far, one row; null before the first non-NULL value. */
  best: Column | null;
}

function fold(s: State, f: Frame): void {
  const { a } = s;
  if (a.name === "min" || a.name === "max") {
    // The batch's best row, then the earlier best unless the batch's is strictly better
    // (ties keep the first, as the in-memory aggregate does).
    const b = runAggregate(a, f, new Int32Array(f.n), 1);
    if (b.valid && b.valid[0] === 0) return;
    if (!s.best) return void (s.best = b);
    const two = concatAll([{ col: s.best, n: 1 }, { col: b, n: 1 }], a.out.type);
    if (rowComparator(two, a.name === "max")(1, 0) < 0) s.best = b;
    return;
  }
  const col = a.arg ? a.arg.eval(f) : null;
  const step = col?.scalar ? 0 : 1;
  const valid = col?.valid ?? null;
  if (a.name === "count") {
    if (!valid) s.count += f.n;
    else for (let i = 0; i < f.n; i++) s.count += valid[i * step] === 1 ? 1 : 0;
    return;
  }
  const x = col!.nums!;
  for (let i = 0; i < f.n; i++) {
    if (valid && valid[i * step] !== 1) continue;
    s.sum += x[i * step];
    s.count++;
  }
}

function result(s: State): Column {
  const one = (v: number | null): Column => ({
    ...s.a.out,
    scalar: false,
    nums: Float64Array.of(v ?? 0),
    strs: null,
    valid: v === null ? Uint8Array.of(0) : null,
  });
  switch (s.a.name) {
    case "count":
      return one(s.count);
    case "sum":
      return one(s.sum); // COALESCE(SUM(x), 0), as prql-js writes it
    case "average":
      return one(s.count > 0 ? s.sum / s.count : null);
    default:
      return s.best ??
        (s.a.out.kind === "text" ? { ...one(null), nums: null, strs: [null] } : one(null));
  }
}

/** A keyless aggregate of `p` (kind "stream"), folded as batches are pushed. */
export function streamAggregate(
  p: Partitioned,
  output: (rows: Rows) => arrow.Table,
  o: ExternalSortOptions,
): ExternalSort {
  const states: State[] = p.aggregates.map((a) => ({ a, count: 0, sum: 0, best: null }));
  let rows = 0;
  return {
    runs: 0,
    get rows() {
      return rows;
    },
    push(table, release, lookups) {
      rows += table.numRows;
      try {
        const f = p.pre({ ...lookups, [p.relation]: table });
        for (const s of states) fold(s, f);
      } finally {
        release?.();
      }
    },
    *finish() {
      const cols = new Map<CId, Column>(states.map((s) => [s.a.id, result(s)]));
      yield* slices(output(p.rest({ n: 1, cols })), o.batchRows);
    },
    dispose() {},
  };
}
