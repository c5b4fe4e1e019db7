/**
 * Window functions: a `derive` inside `window` (or a `group`), computed per row over the rows
 * of its partition in the window's sort order. Ranking (row_number, rank, rank_dense), offsets
 * (lag, lead) and the aggregates of `aggregate` (count, sum, average, min, max) over a ROWS
 * frame (`rows:a..b`, `rolling:n`, `expanding:true`, or the whole partition) are computed;
 * anything else (a RANGE frame, count_distinct, min/max of text) is refused at compile time,
 * never answered differently from the SQL prql-js writes. Rows keep their input order; peers
 * (rows with equal sort keys) keep their input order within a partition.
 */
import type * as arrow from "apache-arrow";
import { type AggPlan, compileAggregate } from "./_aggregate.ts";
import { type Column, defaultType, gather, type Kind } from "./_column.ts";
import {
  type CompiledExpr,
  compileExpr,
  type Frame,
  type TypeEnv,
  UnsupportedError,
} from "./_expr.ts";
import { groupIds } from "./_keys.ts";
import type { CId, ColumnSort, Expr, Literal } from "./_rq.ts";
import { compareNumbers, rowComparator, sortIndex } from "./_sort.ts";

/** A window as RQ writes it on a `Compute`. */
interface RqWindow {
  frame: { kind: "Rows" | "Range"; range: { start: Expr | null; end: Expr | null } };
  partition: CId[];
  sort: ColumnSort[];
}

const RANKING = new Set(["row_number", "rank", "rank_dense"]);
const OFFSETS = new Set(["lag", "lead"]);
const AGGREGATES = new Set(["count", "sum", "average", "min", "max"]);
const ORDERED_KINDS = new Set<Kind>(["int", "float", "date", "timestamp"]);

export interface WindowPlan {
  name: string;
  /** The aggregate's argument and output type (aggregates only). */
  agg: AggPlan | null;
  /** The column lag/lead read. */
  arg: CompiledExpr | null;
  /** How far lag/lead look. */
  offset: number;
  /** The ROWS frame, relative to the current row; null = unbounded. */
  start: number | null;
  end: number | null;
  partition: CId[];
  sort: ColumnSort[];
  out: { kind: Kind; type: arrow.DataType };
}

function literalInt(e: Expr | null): number | null | undefined {
  if (!e) return null;
  const lit = (e.kind as { Literal?: Literal }).Literal as { Integer?: number } | "Null";
  if (lit === "Null") return null;
  return lit?.Integer;
}

function unsupported(message: string, needle = "window"): UnsupportedError {
  return new UnsupportedError(message, needle, [
    "supported in windows: row_number, rank, rank_dense, lag, lead, count, sum, average, " +
    "min and max (of numbers, dates and timestamps) over `rows:` frames or whole partitions",
  ]);
}

/** Checks a windowed `derive` column and works out its type. */
export function compileWindow(id: CId, expr: Expr, window: unknown, env: TypeEnv): WindowPlan {
  const w = window as RqWindow;
  const op = (expr.kind as { Operator?: { name: string; args: Expr[] } }).Operator;
  const name = op?.name.replace(/^std\./, "") ?? "";
  let start = literalInt(w.frame.range.start), end = literalInt(w.frame.range.end);
  if (start === undefined || end === undefined) {
    throw unsupported("a window frame needs integer bounds");
  }
  if (w.frame.kind !== "Rows" && (start !== null || end !== null)) {
    throw unsupported(
      "RANGE window frames (`range:`) are not supported by the PRQL engine",
      "range",
    );
  }
  for (const c of w.partition) {
    if (!env.has(c)) throw unsupported(`internal: column ${c} is not in scope`);
  }
  for (const s of w.sort) {
    if (!env.has(s.column)) throw unsupported(`internal: column ${s.column} is not in scope`);
  }
  const base = {
    name,
    agg: null,
    arg: null,
    offset: 0,
    start,
    end,
    partition: w.partition,
    sort: w.sort,
  };
  if (RANKING.has(name)) {
    return { ...base, out: { kind: "int", type: defaultType("int") } };
  }
  if (OFFSETS.has(name)) {
    const offset = literalInt(op!.args[0]);
    if (typeof offset !== "number" || offset < 0) {
      throw unsupported(`\`${name}\` needs a non-negative integer offset`, name);
    }
    const arg = compileExpr(op!.args[1], env);
    if (arg.kind === "null") throw unsupported(`\`${name}\` of a bare null is not supported`, name);
    const kind = arg.kind as Kind;
    return { ...base, arg, offset, out: { kind, type: arg.type ?? defaultType(kind) } };
  }
  if (!AGGREGATES.has(name)) {
    throw unsupported(
      `\`${name || "this expression"}\` is not supported in a window by the PRQL engine`,
      name || "window",
    );
  }
  const agg = compileAggregate(id, expr, env);
  if ((name === "min" || name === "max") && !ORDERED_KINDS.has(agg.out.kind)) {
    throw unsupported(`\`${name}\` of \`${agg.out.kind}\` is not supported in a window`, name);
  }
  // SUM(x) OVER (...) of no value is NULL (prql-js adds no COALESCE in a window).
  if (start !== null && end !== null && start > end) (start = 0, end = -1);
  return { ...base, agg, out: agg.out };
}

/** The column a window computes over `frame`'s rows. */
export function runWindow(w: WindowPlan, f: Frame): Column {
  const n = f.n;
  // Rows by partition, then by the window's sort (stable: peers keep their input order).
  const gid = w.partition.length === 0
    ? new Int32Array(n)
    : groupIds(w.partition.map((c) => f.cols.get(c)!), n).gid;
  const sortCols = w.sort.map((s) => ({
    col: f.cols.get(s.column)!,
    desc: s.direction === "Desc",
  }));
  const gidCol: Column = {
    kind: "int",
    type: defaultType("int"),
    scalar: false,
    nums: gid,
    strs: null,
    valid: null,
  };
  const ord = sortIndex(n, [{ col: gidCol, desc: false }, ...sortCols]);
  const segments: [number, number][] = [];
  for (let s = 0; s < n;) {
    let e = s + 1;
    while (e < n && gid[ord[e]] === gid[ord[s]]) e++;
    segments.push([s, e]);
    s = e;
  }
  if (RANKING.has(w.name)) return ranks(w, ord, segments, sortCols, n);
  if (OFFSETS.has(w.name)) {
    const src = new Int32Array(n);
    const k = w.name === "lag" ? -w.offset : w.offset;
    for (const [s, e] of segments) {
      for (let i = s; i < e; i++) src[ord[i]] = i + k >= s && i + k < e ? ord[i + k] : -1;
    }
    return gather(w.arg!.eval(f), src);
  }
  return framed(w, f, ord, segments);
}

function ranks(
  w: WindowPlan,
  ord: Int32Array,
  segments: [number, number][],
  sortCols: { col: Column; desc: boolean }[],
  n: number,
): Column {
  const out = new Float64Array(n);
  const cmps = sortCols.map((s) => rowComparator(s.col, s.desc));
  const peer = (a: number, b: number) => cmps.every((c) => c(a, b) === 0);
  for (const [s, e] of segments) {
    let rank = 0, dense = 0;
    for (let i = s; i < e; i++) {
      const fresh = i === s || !peer(ord[i - 1], ord[i]);
      if (fresh) (rank = i - s + 1, dense++);
      out[ord[i]] = w.name === "row_number" ? i - s + 1 : w.name === "rank" ? rank : dense;
    }
  }
  return {
    kind: "int",
    type: defaultType("int"),
    scalar: false,
    nums: out,
    strs: null,
    valid: null,
  };
}

/** An aggregate over each row's ROWS frame. */
function framed(w: WindowPlan, f: Frame, ord: Int32Array, segments: [number, number][]): Column {
  const n = f.n;
  const name = w.agg!.name;
  const col = w.agg!.arg ? w.agg!.arg.eval(f) : null;
  const step = col?.scalar ? 0 : 1;
  const x = col?.nums ?? null;
  const valid = col?.valid ?? null;
  const out = new Float64Array(n);
  const outValid = new Uint8Array(n);
  // The running state of one frame: rows, non-NULL values, their sum and best value.
  let rows = 0, count = 0, sum = 0, best = 0;
  const reset = () => (rows = 0, count = 0, sum = 0, best = 0);
  const add = (r: number) => {
    rows++;
    if (!col || (valid && valid[r * step] !== 1)) return;
    const v = x![r * step];
    if (count === 0) best = v;
    else if (name === "min" ? compareNumbers(v, best) < 0 : compareNumbers(v, best) > 0) best = v;
    count++;
    sum += v;
  };
  const emit = (r: number) => {
    let v: number | null;
    if (name === "count") v = col ? count : rows;
    else if (count === 0) v = null;
    else v = name === "sum" ? sum : name === "average" ? sum / count : best;
    if (v !== null) (out[r] = v, outValid[r] = 1);
  };
  const { start, end } = w;
  for (const [s, e] of segments) {
    if (start === null && end === null) {
      // The whole partition: one value for all its rows.
      reset();
      for (let i = s; i < e; i++) add(ord[i]);
      for (let i = s; i < e; i++) emit(ord[i]);
    } else if (start === null) {
      // From the partition's start: the frame only grows.
      reset();
      let hi = s - 1;
      for (let i = s; i < e; i++) {
        const to = Math.min(e - 1, i + end!);
        while (hi < to) add(ord[++hi]);
        emit(ord[i]);
      }
    } else if (end === null) {
      // To the partition's end: walked backwards, the frame only grows.
      reset();
      let lo = e;
      for (let i = e - 1; i >= s; i--) {
        const from = Math.max(s, i + start);
        while (lo > from) add(ord[--lo]);
        emit(ord[i]);
      }
    } else {
      for (let i = s; i < e; i++) {
        reset();
        const from = Math.max(s, i + start), to = Math.min(e - 1, i + end);
        for (let k = from; k <= to; k++) add(ord[k]);
        emit(ord[i]);
      }
    }
  }
  return { ...w.out, scalar: false, nums: out, strs: null, valid: outValid };
}
