/**
 * Aggregates over the whole input folded batch by batch: each input batch goes through the
 * query's row-by-row first steps and into running states (a count, a sum in row order, the
 * best value so far). A group without keys (`aggregate {..}` alone) releases each batch at
 * once and runs the rest of the query over the one row the states give at the end: nothing
 * is spilled and memory holds one batch. Windowed aggregates over the whole input (`derive {s
 * = sum x}` outside any group) give that value to every row, so the rows wait: they gather up
 * to the run size and are spilled in order, then read back run by run with the values added.
 * The states are folded in exactly the order the in-memory operators add rows, so results are
 * the same to the bit (a float sum depends on the order of its additions). `count_distinct`
 * needs every distinct value at once and is not folded (the planner does not offer it here).
 */
import type * as arrow from "apache-arrow";
import type { AggPlan } from "./_aggregate.ts";
import { runAggregate } from "./_aggregate.ts";
import { type Column, concatAll } from "./_column.ts";
import type { Frame } from "./_expr.ts";
import type { Partitioned, Rows } from "./_plan.ts";
import type { CId } from "./_rq.ts";
import { rowComparator } from "./_sort.ts";
import {
  arrowBytes,
  type ExternalSort,
  type ExternalSortOptions,
  removeAll,
  slices,
} from "./_spill.ts";
import {
  buffersOf,
  concatFrames,
  frameBytes,
  type FrameLayout,
  frameToIpc,
  layoutOf,
  SpillFiles,
} from "./_spill_frame.ts";

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

/** The aggregate's value; a window's sum of no value is NULL (no COALESCE in a window). */
function result(s: State, window: boolean): Column {
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
      // COALESCE(SUM(x), 0), as prql-js writes it for `aggregate`.
      return one(window && s.count === 0 ? null : s.sum);
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
      const cols = new Map<CId, Column>(states.map((s) => [s.a.id, result(s, false)]));
      yield* slices(output(p.rest({ n: 1, cols })), o.batchRows);
    },
    dispose() {},
  };
}

/** Whole-input windowed aggregates of `p` (kind "broadcast"), folded as batches are pushed. */
export function streamWindow(
  p: Partitioned,
  output: (rows: Rows) => arrow.Table,
  o: ExternalSortOptions,
): ExternalSort {
  const states: State[] = p.aggregates.map((a) => ({ a, count: 0, sum: 0, best: null }));
  const spills = new SpillFiles(o.dir);
  const runs: string[] = [];
  let pending: { frame: Frame; release?: () => void }[] = [];
  let pendingBytes = 0, rows = 0;
  let layout: FrameLayout | null = null;
  const releasePending = () => {
    for (const x of pending) x.release?.();
    pending = [];
    pendingBytes = 0;
  };
  const spill = () => {
    const frame = concatFrames(pending.map((x) => x.frame));
    layout ??= layoutOf(frame);
    runs.push(spills.write("rows", frameToIpc(frame, layout, null)));
    releasePending();
  };
  return {
    get runs() {
      return runs.length;
    },
    get rows() {
      return rows;
    },
    push(table, release, lookups) {
      rows += table.numRows;
      let frame: Frame;
      try {
        frame = p.pre({ ...lookups, [p.relation]: table });
        for (const s of states) fold(s, frame);
      } catch (err) {
        release?.();
        throw err;
      }
      if (frame.n === 0) return release?.();
      pending.push({ frame, release });
      pendingBytes += arrowBytes(table) + frameBytes(frame, buffersOf(table));
      if (pendingBytes >= o.runBytes) spill();
    },
    *finish() {
      try {
        const values = states.map((s) => ({ ...result(s, true), scalar: true }));
        const frames = runs.length === 0 ? pending.map((x) => x.frame) : [];
        if (runs.length > 0 && pending.length > 0) spill();
        const all = frames.length > 0 ? [concatFrames(frames)] : [];
        const each = function* () {
          yield* all;
          for (const file of runs) yield spills.read([file], layout!);
        };
        for (const f of each()) {
          states.forEach((s, i) => f.cols.set(s.a.id, values[i]));
          yield* slices(output(p.rest(f)), o.batchRows);
        }
      } finally {
        this.dispose();
      }
    },
    dispose() {
      releasePending();
      removeAll(spills.live);
    },
  };
}
