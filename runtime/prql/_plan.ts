/**
 * Turns an RQ query into an executable plan and runs it over Arrow tables. Planning checks
 * every transform and expression (anything unsupported is an UnsupportedError naming it),
 * infers the output schema, and works out which input columns are live so that execution
 * reads and carries nothing else. Execution keeps rows in typed-array columns and moves them
 * with index vectors (filter, sort, join) or shared slices (take); it must never reorder rows
 * where the SQL that prql-js generates would keep them in order.
 */
import type * as arrow from "apache-arrow";
import {
  type Column,
  concat,
  defaultType,
  fromArrow,
  gather,
  type Kind,
  kindOf,
  slice,
} from "./_column.ts";
import {
  type ColType,
  compileExpr,
  type Frame,
  type TypeEnv,
  unify,
  UnsupportedError,
} from "./_expr.ts";
import {
  type CId,
  type ColumnSort,
  type Expr,
  type Join,
  type Literal,
  type RelationalQuery,
  type RelationColumn,
  type TableRef,
  tagOf,
  type Take,
  type Transform,
} from "./_rq.ts";
import { groupIds } from "./_keys.ts";
import { equiJoin, leftIndex } from "./_join.ts";
import { selectColumns } from "./_select.ts";
import { type AggPlan, compileAggregate, runAggregate } from "./_aggregate.ts";
import { compileWindow, runWindow, type WindowPlan } from "./_window.ts";
import { sortIndex, type SortKey, topK } from "./_sort.ts";

/** One column of a relation's output, by position. */
export interface OutColumn {
  name: string | null;
  kind: Kind;
  type: arrow.DataType;
}

/** A relation's rows: a count and its columns by position (unread positions are absent). */
export interface Rows {
  n: number;
  cols: (Column | undefined)[];
}

interface RunContext {
  relations: Record<string, arrow.Table>;
  cache: Map<number, Rows>;
}

interface RelPlan {
  columns: OutColumn[];
  run(ctx: RunContext): Rows;
}

/** Where each output column of a pure projection comes from in the extern relation. */
export interface Projection {
  relation: string;
  fields: number[];
}

/**
 * A query that can run over its input batch by batch up to a split step, the rest running
 * over what those batches become: what lets group, distinct, windows and keyless aggregates
 * spill (runtime/prql/_spill_partition.ts). The steps before the split work row by row
 * (filter, derive, select, an inner or left join with another relation), so their output
 * over the batches one after the other is their output over the whole input. From the split
 * on, rows with equal `keys` must be together: the split step and the `local` steps after it
 * run one hash part at a time (`kind` "aggregate", "take", "window"), or fold the batches as
 * they come (`kind` "stream": a group without keys, `aggregates` being its aggregates;
 * "broadcast": windowed aggregates over the whole input, each row getting the one value).
 */
export interface Partitioned {
  /** The relation read in batches; any other is a lookup given with each batch. */
  relation: string;
  kind: "aggregate" | "take" | "window" | "stream" | "broadcast";
  /** Column ids of `pre`'s output whose values decide the part. */
  keys: CId[];
  /** The aggregates of a group without keys, or of whole-input windows (kind "broadcast"). */
  aggregates: AggPlan[];
  /** The steps before the split over one batch (and its lookups). */
  pre(relations: Record<string, arrow.Table>): Frame;
  /**
   * The split step and the steps that stay within a part, over one part's rows (carrying
   * `ROW_ID`, their position in `pre`'s output over the whole input, ascending).
   */
  local(part: Frame): Frame;
  /**
   * How the parts' results go back into the in-memory order: by `ROW_ID` (a group's first
   * row, a window's rows) or by these columns (a partitioned take, which orders by them).
   */
  order: CId[];
  /** Whether `rest` works row by row, so that it may run over the output piece by piece. */
  rowWise: boolean;
  /** The steps after the local ones, over the rows in order (without `ROW_ID`). */
  rest(frame: Frame): Rows;
}

export interface Plan {
  columns: OutColumn[];
  run(relations: Record<string, arrow.Table>): Rows;
  /** Set when the input may be hash-partitioned (see `Partitioned`). */
  partitioned: Partitioned | null;
  /** Per relation, the names of the columns the query reads. */
  reads: Map<string, Set<string>>;
  projection: Projection | null;
  /** Set when the query can be sorted externally (see `SortedRun`). */
  sortedRun: SortedRun | null;
  /**
   * The relation a query reads row by row, when it only derives, filters and selects from
   * one input table: its output over the table is its outputs over slices of it, in order.
   */
  rowLocal: string | null;
}

/**
 * A query that only filters, derives and selects before one sort, and selects after it, by
 * columns it outputs: run over each run of its input, it gives sorted runs that merge into
 * its output over the whole input (`keys` by output position, in sort order).
 */
export interface SortedRun {
  relation: string;
  keys: { position: number; desc: boolean }[];
}

type Step = (frame: Frame, ctx: RunContext) => Frame;

/** A pipeline's plan with its steps, for running it in two halves. */
interface PipelinePlan extends RelPlan {
  execs: Step[];
  /** Per transform, the index in `execs` of its first step. */
  execAt: number[];
  outIds: CId[];
  /** Per transform, the aggregates of an `aggregate` step, the window of a windowed derive. */
  aggPlans: AggPlan[][];
  windowPlans: WindowPlan[];
}

/** A hidden column of partitioned runs: each row's position in the input of the split. */
export const ROW_ID: CId = -1;

/** Where a partitioned run splits a pipeline (see `Partitioned`). */
interface SplitPoint {
  relation: string;
  /** The split transform, and the first transform after those that stay within a part. */
  step: number;
  end: number;
  kind: Partitioned["kind"];
  keys: CId[];
  order: CId[];
}

/** Whether a window is over the whole input: no partition, no sort, no frame. */
function wholeInput(w: RqWindowLike | undefined): boolean {
  return !!w && w.partition.length === 0 && w.sort.length === 0 && !w.frame.range.start &&
    !w.frame.range.end;
}

interface RqWindowLike {
  partition: CId[];
  sort: ColumnSort[];
  frame: { range: { start: Expr | null; end: Expr | null } };
}

/** Transforms that work row by row and keep the rows' order. */
function rowWise(t: Transform): boolean {
  const tag = tagOf(t);
  // deno-lint-ignore no-explicit-any
  const b = (t as any)[tag];
  return tag === "Select" || tag === "Filter" ||
    (tag === "Compute" && !b.window && !b.is_aggregation);
}

function colName(c: RelationColumn): string | null {
  return c === "Wildcard" ? null : c.Single;
}

/** Positions in `columns` that the entries of `ref` stand for (duplicates matched in order). */
function refPositions(ref: TableRef, columns: (string | null)[]): number[] {
  const seen = new Map<string, number>();
  return ref.columns.map(([rc]) => {
    const name = colName(rc);
    if (name === null) return -1;
    const k = seen.get(name) ?? 0;
    seen.set(name, k + 1);
    let hit = -1;
    for (let i = 0, c = 0; i < columns.length; i++) {
      if (columns[i] === name && c++ === k) {
        hit = i;
        break;
      }
    }
    return hit;
  });
}

function exprRefs(e: unknown, out: Set<CId>): Set<CId> {
  if (Array.isArray(e)) { for (const x of e) exprRefs(x, out); }
  else if (e && typeof e === "object") {
    for (const [k, v] of Object.entries(e)) {
      if (k === "ColumnRef") out.add(v as CId);
      else exprRefs(v, out);
    }
  }
  return out;
}

function intLiteral(e: Expr | null, what: string): number | null {
  if (!e) return null;
  const lit = (e.kind as { Literal?: Literal }).Literal as { Integer?: number } | undefined;
  if (lit?.Integer === undefined) {
    throw new UnsupportedError(`\`take\` needs integer literals for its ${what}`, "take");
  }
  return lit.Integer;
}

function gatherFrame(frame: Frame, idx: Int32Array, live: Set<CId>): Frame {
  const cols = new Map<CId, Column>();
  for (const [id, c] of frame.cols) if (live.has(id)) cols.set(id, gather(c, idx));
  return { n: idx.length, cols };
}

function toTimestamps(c: Column, kind: Kind | "null"): Column {
  if (c.kind !== "date" || kind !== "timestamp") return c;
  const nums = Float64Array.from(c.nums!, (d) => d * 86_400_000_000);
  return { ...c, kind: "timestamp", type: defaultType("timestamp"), nums };
}

/** Splits a join condition into equality pairs (left id, right id) and the rest. */
function splitJoinFilter(
  filter: Expr,
  rightIds: Set<CId>,
): { pairs: [CId, CId][]; rest: Expr[] } {
  const pairs: [CId, CId][] = [];
  const rest: Expr[] = [];
  const visit = (e: Expr) => {
    const op = (e.kind as { Operator?: { name: string; args: Expr[] } }).Operator;
    if (op?.name === "std.and") return op.args.forEach(visit);
    if (op?.name === "std.eq") {
      const [a, b] = op.args.map((x) => (x.kind as { ColumnRef?: CId }).ColumnRef);
      if (a !== undefined && b !== undefined && rightIds.has(a) !== rightIds.has(b)) {
        pairs.push(rightIds.has(a) ? [b, a] : [a, b]);
        return;
      }
    }
    rest.push(e);
  };
  visit(filter);
  return { pairs, rest };
}

class Planner {
  private readonly plans = new Map<number, RelPlan>();
  /** Positions of each table's output that some reader needs. */
  private readonly needs = new Map<number, Set<number>>();
  readonly reads = new Map<string, Set<string>>();

  constructor(
    private readonly rq: RelationalQuery,
    private readonly schemas: Record<string, arrow.Schema>,
  ) {}

  plan(): Plan {
    const main = this.rq.relation;
    const steps = (main.kind as { Pipeline?: Transform[] }).Pipeline;
    if (!steps) throw new UnsupportedError("the query's main relation is not a pipeline");
    // Liveness first: main pipeline, then tables from the last declared to the first, since a
    // table is declared before the tables that read it.
    const mainLive = this.liveness(steps, null);
    for (const t of [...this.rq.tables].reverse()) {
      const p = (t.relation.kind as { Pipeline?: Transform[] }).Pipeline;
      if (p && this.needs.has(t.id)) {
        this.tableLive.set(t.id, this.liveness(p, this.needs.get(t.id)!));
      }
    }
    const split = this.splitPoint(steps);
    // A partitioned take's parts go back in order by its keys: they must outlive it.
    if (split?.kind === "take") { for (const k of split.keys) mainLive[split.step].add(k); }
    const rel = this.pipeline(steps, mainLive, main.columns);
    return {
      columns: rel.columns,
      run: (relations) => rel.run({ relations, cache: new Map() }),
      partitioned: split ? this.partitioned(rel, split, steps) : null,
      reads: this.reads,
      projection: this.projection(steps),
      sortedRun: this.sortedRun(steps),
      rowLocal: this.rowLocal(steps),
    };
  }

  private readonly tableLive = new Map<number, Set<CId>[]>();

  /**
   * Where the pipeline may be split for a partitioned run: at its first group, partitioned
   * take or window partitioned by some key, when only row-by-row steps (and inner or left
   * joins with other relations) come before it and none after it reads another relation.
   */
  private splitPoint(steps: Transform[]): SplitPoint | null {
    const from = (steps[0] as { From?: TableRef }).From;
    if (!from) return null;
    const base = this.externBase(from.source);
    if (!base) return null;
    const relation = this.externName(base.source)!;
    const at = (i: number): SplitPoint | null => {
      const tag = tagOf(steps[i]);
      // deno-lint-ignore no-explicit-any
      const b = (steps[i] as any)[tag];
      if (tag === "Aggregate") {
        const kind = b.partition.length === 0 ? "stream" : "aggregate";
        return { relation, step: i, end: i + 1, kind, keys: b.partition, order: [ROW_ID] };
      }
      if (tag === "Take" && (b as Take).partition.length > 0) {
        const keys = (b as Take).partition;
        return { relation, step: i, end: i + 1, kind: "take", keys, order: keys };
      }
      if (tag !== "Compute" || !b.window) return null;
      if (b.window.partition.length === 0) {
        // Aggregates over the whole input (no partition, no sort, no frame) in a row.
        let end = i + 1;
        // deno-lint-ignore no-explicit-any
        while (end < steps.length && wholeInput((steps[end] as any).Compute?.window)) end++;
        if (!wholeInput(b.window)) return null;
        return { relation, step: i, end, kind: "broadcast", keys: [], order: [] };
      }
      // Derives and windows over the same keys (or finer) after it stay within a part too
      // (they keep every row, and with it the row positions the parts are merged by).
      const keys: CId[] = b.window.partition;
      let end = i + 1;
      for (; end < steps.length; end++) {
        // deno-lint-ignore no-explicit-any
        const c = (steps[end] as any).Compute;
        if (tagOf(steps[end]) === "Select" || (c && !c.window && !c.is_aggregation)) continue;
        if (!c?.window || !keys.every((k) => c.window.partition.includes(k))) break;
      }
      return { relation, step: i, end, kind: "window", keys, order: [ROW_ID] };
    };
    for (let i = 1; i < steps.length; i++) {
      // deno-lint-ignore no-explicit-any
      if (rowWise(steps[i]) || (steps[i] as any).Compute?.is_aggregation) continue;
      const j = (steps[i] as { Join?: Join }).Join;
      if (j) {
        if (j.side !== "Inner" && j.side !== "Left") return null;
        if (this.readsRelation(j.with.source, relation)) return null;
        continue;
      }
      const split = at(i);
      if (!split) return null;
      const later = steps.slice(split.end).some((t) => ["Join", "Append"].includes(tagOf(t)));
      return later ? null : split;
    }
    return null;
  }

  /** Whether table `id` reads the extern relation `relation`, directly or through its steps. */
  private readsRelation(id: number, relation: string): boolean {
    const ext = this.externName(id);
    if (ext !== null) return ext === relation;
    const t = this.rq.tables.find((x) => x.id === id)!;
    const steps = (t.relation.kind as { Pipeline?: Transform[] }).Pipeline ?? [];
    return steps.some((s) => {
      // deno-lint-ignore no-explicit-any
      const b = (s as any)[tagOf(s)];
      const ref = (tagOf(s) === "Join" ? b.with : b) as TableRef;
      return ["From", "Append", "Join"].includes(tagOf(s)) &&
        this.readsRelation(ref.source, relation);
    });
  }

  private partitioned(
    rel: PipelinePlan,
    split: SplitPoint,
    steps: Transform[],
  ): Partitioned | null {
    const execAt = (i: number) => i < rel.execAt.length ? rel.execAt[i] : rel.execs.length;
    const cut = execAt(split.step), local = execAt(split.end);
    let aggregates = split.kind === "stream" ? rel.aggPlans[split.step] : [];
    if (split.kind === "broadcast") {
      const windows = rel.windowPlans.slice(split.step, split.end).filter((w) => w);
      if (windows.some((w) => !w.agg) || !steps.slice(split.end).every(rowWise)) return null;
      aggregates = windows.map((w) => w.agg!);
    }
    // A distinct count needs every distinct value at once: it is not folded batch by batch.
    if (aggregates.some((a) => a.name === "count_distinct")) return null;
    const run = (f: Frame, from: number, to: number, relations: Record<string, arrow.Table>) => {
      const ctx = { relations, cache: new Map() };
      for (let k = from; k < to; k++) f = rel.execs[k](f, ctx);
      return f;
    };
    return {
      relation: split.relation,
      kind: split.kind,
      keys: split.keys,
      aggregates,
      order: split.order,
      rowWise: steps.slice(split.end).every(rowWise),
      pre: (relations) => run({ n: 0, cols: new Map() }, 0, cut, relations),
      local: (part) => run(part, cut, local, {}),
      rest: (frame) => {
        const f = run(frame, local, rel.execs.length, {});
        return { n: f.n, cols: rel.outIds.map((c) => f.cols.get(c)) };
      },
    };
  }

  private tableColumnNames(id: number): (string | null)[] {
    const t = this.rq.tables.find((x) => x.id === id);
    if (!t) throw new UnsupportedError(`internal: table ${id} is not declared`);
    const ext = this.externName(id);
    if (ext !== null) return this.schemaOf(ext).fields.map((f) => f.name);
    return t.relation.columns.map(colName);
  }

  private externName(id: number): string | null {
    const t = this.rq.tables.find((x) => x.id === id)!;
    const ext = (t.relation.kind as { ExternRef?: { LocalTable?: string[] } }).ExternRef;
    if (!ext) return null;
    const path = ext.LocalTable;
    if (!path) throw new UnsupportedError("only local tables can be read by the PRQL engine");
    const name = path[path.length - 1];
    if (path.length > 2 || (path.length === 2 && path[0] !== "default_db")) {
      throw new UnsupportedError(`unknown relation \`${path.join(".")}\``, path.join("."));
    }
    return name;
  }

  private schemaOf(name: string): arrow.Schema {
    const s = this.schemas[name];
    if (!s) {
      throw new UnsupportedError(`unknown relation \`${name}\``, name, [
        `available relations: ${Object.keys(this.schemas).join(", ")}`,
      ]);
    }
    return s;
  }

  private need(ref: TableRef, live: Set<CId>, all: boolean): void {
    const positions = refPositions(ref, this.tableColumnNames(ref.source));
    const set = this.needs.get(ref.source) ?? new Set<number>();
    ref.columns.forEach(([rc, cid], i) => {
      if (!all && !live.has(cid)) return;
      if (positions[i] < 0) {
        if (rc === "Wildcard") return;
        throw new UnsupportedError(`column \`${colName(rc)}\` is unknown`, colName(rc) ?? "");
      }
      set.add(positions[i]);
    });
    if (all) this.tableColumnNames(ref.source).forEach((_, i) => set.add(i));
    this.needs.set(ref.source, set);
    const ext = this.externName(ref.source);
    if (ext !== null) {
      const names = this.tableColumnNames(ref.source);
      const read = this.reads.get(ext) ?? new Set<string>();
      for (const p of set) read.add(names[p]!);
      this.reads.set(ext, read);
    }
  }

  /** Backward liveness: the set of column ids live after each step. */
  private liveness(steps: Transform[], outNeeded: Set<number> | null): Set<CId>[] {
    const order = this.columnOrders(steps);
    const last = steps[steps.length - 1] as { Select?: CId[] };
    let live = new Set<CId>(
      last.Select
        ? last.Select.filter((_, i) => !outNeeded || outNeeded.has(i))
        : order[steps.length],
    );
    const after: Set<CId>[] = new Array(steps.length);
    for (let i = steps.length - 1; i >= 0; i--) {
      after[i] = new Set(live);
      const t = steps[i];
      const tag = tagOf(t);
      // deno-lint-ignore no-explicit-any
      const b = (t as any)[tag];
      switch (tag) {
        case "Select":
          break;
        case "Filter":
          exprRefs(b, live);
          break;
        case "Compute":
          if (live.has(b.id)) {
            live.delete(b.id);
            exprRefs(b.expr, live);
            // A window's partition and sort are column ids, not expressions.
            for (const c of b.window?.partition ?? []) live.add(c);
            for (const s of b.window?.sort ?? []) live.add(s.column);
          }
          break;
        case "Aggregate":
          live = new Set([...b.partition, ...b.compute]);
          break;
        case "Sort":
          for (const s of b as ColumnSort[]) live.add(s.column);
          break;
        case "Take":
          (b as Take).partition.forEach((c) => live.add(c));
          (b as Take).sort.forEach((s) => live.add(s.column));
          break;
        case "Join": {
          const j = b as Join;
          exprRefs(j.filter, live);
          this.need(j.with, live, false);
          for (const [, cid] of j.with.columns) live.delete(cid);
          break;
        }
        case "Append":
          this.need(b as TableRef, live, true);
          for (const c of order[i]) live.add(c);
          break;
        case "From":
          this.need(b as TableRef, live, false);
          live = new Set();
          break;
      }
    }
    return after;
  }

  /** The columns (in order) a pipeline holds before each step, plus after the last. */
  private columnOrders(steps: Transform[]): CId[][] {
    const orders: CId[][] = [];
    let cur: CId[] = [];
    for (const t of steps) {
      orders.push(cur);
      const tag = tagOf(t);
      // deno-lint-ignore no-explicit-any
      const b = (t as any)[tag];
      if (tag === "From") cur = (b as TableRef).columns.map(([, c]) => c);
      else if (tag === "Select") cur = b;
      else if (tag === "Compute") cur = [...cur, b.id];
      else if (tag === "Aggregate") cur = [...b.partition, ...b.compute];
      else if (tag === "Join") cur = [...cur, ...(b as Join).with.columns.map(([, c]) => c)];
    }
    orders.push(cur);
    return orders;
  }

  private table(id: number): RelPlan {
    const known = this.plans.get(id);
    if (known) return known;
    const t = this.rq.tables.find((x) => x.id === id)!;
    const ext = this.externName(id);
    let plan: RelPlan;
    if (ext !== null) plan = this.extern(ext, id);
    else {
      const steps = (t.relation.kind as { Pipeline?: Transform[] }).Pipeline;
      if (!steps) {
        throw new UnsupportedError(
          `${tagOf(t.relation.kind)} relations are not supported by the PRQL engine`,
        );
      }
      plan = this.pipeline(steps, this.tableLive.get(id)!, t.relation.columns);
    }
    const cached: RelPlan = {
      columns: plan.columns,
      run: (ctx) => {
        let rows = ctx.cache.get(id);
        if (!rows) ctx.cache.set(id, rows = plan.run(ctx));
        return rows;
      },
    };
    this.plans.set(id, cached);
    return cached;
  }

  private extern(name: string, id: number): RelPlan {
    const schema = this.schemaOf(name);
    const columns = schema.fields.map((f) => {
      const kind = kindOf(f.type);
      return { name: f.name, kind: kind!, type: f.type, bad: kind === null };
    });
    const needed = [...(this.needs.get(id) ?? [])];
    for (const p of needed) {
      if (columns[p].bad) {
        throw new UnsupportedError(
          `column \`${columns[p].name}\` of \`${name}\` has type ${
            columns[p].type
          }, which the PRQL engine does not support`,
          columns[p].name,
        );
      }
    }
    return {
      columns,
      run: (ctx) => {
        const table = ctx.relations[name];
        if (!table) throw new Error(`relation \`${name}\` was not supplied`);
        const cols: (Column | undefined)[] = [];
        for (const p of needed) {
          const f = columns[p];
          const v = table.getChild(f.name!);
          if (!v) throw new Error(`relation \`${name}\` has no column \`${f.name}\``);
          if (kindOf(v.type) !== f.kind) {
            throw new Error(
              `column \`${f.name}\` of \`${name}\` is ${v.type}, but the query was compiled for ${f.type}`,
            );
          }
          cols[p] = fromArrow(v, f.kind, f.name!);
        }
        return { n: table.numRows, cols };
      },
    };
  }

  private pipeline(
    steps: Transform[],
    liveAfter: Set<CId>[],
    outCols: RelationColumn[],
  ): PipelinePlan {
    const env: TypeEnv = new Map();
    const aggs = new Map<CId, Expr>();
    const execs: Step[] = [];
    const execAt: number[] = [];
    const aggPlans: AggPlan[][] = [];
    const windowPlans: WindowPlan[] = [];
    const orders = this.columnOrders(steps);
    steps.forEach((t, i) => {
      execAt.push(execs.length);
      const tag = tagOf(t);
      // deno-lint-ignore no-explicit-any
      const b = (t as any)[tag];
      const live = liveAfter[i];
      switch (tag) {
        case "From":
          return execs.push(this.from(b as TableRef, env, live));
        case "Select":
          return;
        case "Compute": {
          if (b.window) {
            if (!live.has(b.id)) return;
            const w = compileWindow(b.id, b.expr, b.window, env);
            windowPlans[i] = w;
            env.set(b.id, w.out);
            return execs.push((f) => {
              const cols = new Map(f.cols);
              cols.set(b.id, runWindow(w, f));
              return { n: f.n, cols };
            });
          }
          if (b.is_aggregation) {
            aggs.set(b.id, b.expr);
            return;
          }
          if (!live.has(b.id)) return;
          const e = compileExpr(b.expr, env);
          env.set(b.id, e.kind === "null" ? { kind: "int", type: defaultType("int") } : e);
          return execs.push((f) => {
            const cols = new Map(f.cols);
            cols.set(b.id, e.eval(f));
            return { n: f.n, cols };
          });
        }
        case "Filter": {
          const e = compileExpr(b as Expr, env);
          if (e.kind !== "bool" && e.kind !== "null") {
            throw new UnsupportedError(
              `\`filter\` needs a boolean condition, found \`${e.kind}\``,
              "filter",
            );
          }
          return execs.push((f) => {
            const m = e.eval(f);
            if (m.scalar) {
              const keep = m.nums![0] === 1 && (!m.valid || m.valid[0] === 1);
              return gatherFrame(f, new Int32Array(keep ? f.n : 0).map((_, i) => i), live);
            }
            const cols = new Map<CId, Column>();
            for (const [id, c] of f.cols) if (live.has(id)) cols.set(id, c);
            return selectColumns(cols, m.nums as Uint8Array, m.valid, f.n);
          });
        }
        case "Sort": {
          const keys = (b as ColumnSort[]).map((s) => ({ ...s, t: this.typeOf(env, s.column) }));
          // A sort that a plain `take` follows only needs the rows the take keeps.
          const next = steps[i + 1] as { Take?: Take } | undefined;
          const limit = next?.Take && next.Take.partition.length === 0
            ? intLiteral(next.Take.range.end, "end")
            : null;
          return execs.push((f) => {
            const sortKeys = keys.map((s) => ({
              col: f.cols.get(s.column)!,
              desc: s.direction === "Desc",
            }));
            const idx = limit === null ? sortIndex(f.n, sortKeys) : topK(f.n, sortKeys, limit);
            return gatherFrame(f, idx, live);
          });
        }
        case "Take":
          return execs.push(this.take(b as Take, env, live));
        case "Aggregate": {
          const a = this.aggregate(b.partition, b.compute, aggs, env);
          aggPlans[i] = a.plans;
          return execs.push(a.step);
        }
        case "Join":
          return execs.push(this.join(b as Join, env, live));
        case "Append":
          return execs.push(this.append(b as TableRef, orders[i], env));
        default:
          throw new UnsupportedError(
            `the \`${tag.toLowerCase()}\` transform is not supported by the PRQL engine`,
            tag.toLowerCase(),
          );
      }
    });
    const outIds = orders[steps.length];
    const columns: OutColumn[] = outIds.map((cid, i) => {
      const t = env.get(cid);
      const kind = (t?.kind === "null" || !t ? "int" : t.kind) as Kind;
      return {
        name: outCols[i] ? colName(outCols[i]) : null,
        kind,
        type: t?.type ?? defaultType(kind),
      };
    });
    return {
      columns,
      execs,
      execAt,
      outIds,
      aggPlans,
      windowPlans,
      run: (ctx) => {
        let f: Frame = { n: 0, cols: new Map() };
        for (const s of execs) f = s(f, ctx);
        return { n: f.n, cols: outIds.map((c) => f.cols.get(c)) };
      },
    };
  }

  private typeOf(env: TypeEnv, cid: CId): ColType {
    const t = env.get(cid);
    if (!t) throw new UnsupportedError(`internal: column ${cid} is not in scope`);
    return t;
  }

  private bind(ref: TableRef, env: TypeEnv): { plan: RelPlan; pos: number[] } {
    const plan = this.table(ref.source);
    const pos = refPositions(ref, plan.columns.map((c) => c.name));
    ref.columns.forEach(([, cid], i) => {
      if (pos[i] >= 0) env.set(cid, plan.columns[pos[i]]);
    });
    return { plan, pos };
  }

  private from(ref: TableRef, env: TypeEnv, live: Set<CId>): Step {
    const { plan, pos } = this.bind(ref, env);
    return (_f, ctx) => {
      const rows = plan.run(ctx);
      const cols = new Map<CId, Column>();
      ref.columns.forEach(([, cid], i) => {
        if (live.has(cid)) cols.set(cid, rows.cols[pos[i]]!);
      });
      return { n: rows.n, cols };
    };
  }

  private take(t: Take, env: TypeEnv, live: Set<CId>): Step {
    const start = Math.max(intLiteral(t.range.start, "start") ?? 1, 1);
    const end = intLiteral(t.range.end, "end") ?? Infinity;
    for (const c of t.partition) this.typeOf(env, c);
    return (f) => {
      if (t.partition.length === 0) {
        const a = Math.min(start - 1, f.n), z = Math.max(a, Math.min(end, f.n));
        const cols = new Map<CId, Column>();
        for (const [id, c] of f.cols) if (live.has(id)) cols.set(id, slice(c, a, z));
        return { n: z - a, cols };
      }
      // Rows are numbered within each partition in the order of `sort`; the partitions come
      // out in key order, as DISTINCT ON (...) ORDER BY does.
      const parts = t.partition.map((c) => f.cols.get(c)!);
      const sortKeys: SortKey[] = [
        ...parts.map((col) => ({ col, desc: false })),
        ...t.sort.map((s) => ({ col: f.cols.get(s.column)!, desc: s.direction === "Desc" })),
      ];
      const idx = sortIndex(f.n, sortKeys);
      const { gid } = groupIds(parts, f.n);
      const keep: number[] = [];
      let prev = -1, rank = 0;
      for (const r of idx) {
        rank = gid[r] === prev ? rank + 1 : 1;
        prev = gid[r];
        if (rank >= start && rank <= end) keep.push(r);
      }
      return gatherFrame(f, Int32Array.from(keep), live);
    };
  }

  private aggregate(
    partition: CId[],
    compute: CId[],
    aggs: Map<CId, Expr>,
    env: TypeEnv,
  ): { plans: AggPlan[]; step: Step } {
    const plans = compute.map((id) => {
      const e = aggs.get(id);
      if (!e) throw new UnsupportedError(`internal: aggregate ${id} has no definition`);
      const p = compileAggregate(id, e, env);
      return p;
    });
    for (const p of plans) env.set(p.id, p.out);
    for (const c of partition) this.typeOf(env, c);
    const step: Step = (f) => {
      let gid: Int32Array, firstIdx: Int32Array;
      if (partition.length === 0) (gid = new Int32Array(f.n), firstIdx = new Int32Array(1));
      else ({ gid, first: firstIdx } = groupIds(partition.map((c) => f.cols.get(c)!), f.n));
      const groups = firstIdx.length;
      const cols = new Map<CId, Column>();
      for (const c of partition) cols.set(c, gather(f.cols.get(c)!, firstIdx));
      const rowIds = f.cols.get(ROW_ID); // a partitioned run: each group's first row
      if (rowIds) cols.set(ROW_ID, gather(rowIds, firstIdx));
      for (const p of plans) cols.set(p.id, runAggregate(p, f, gid, groups));
      return { n: groups, cols };
    };
    return { plans, step };
  }

  private join(j: Join, env: TypeEnv, live: Set<CId>): Step {
    const rightEnv: TypeEnv = new Map();
    const { plan, pos } = this.bind(j.with, rightEnv);
    const rightIds = new Set(j.with.columns.map(([, c]) => c));
    for (const [k, v] of rightEnv) env.set(k, v);
    const { pairs, rest } = splitJoinFilter(j.filter, rightIds);
    const keyKinds = pairs.map(([l, r]) => {
      const kind = unify(this.typeOf(env, l).kind, this.typeOf(env, r).kind, "the join condition");
      if (kind === "bool") {
        throw new UnsupportedError("joining on booleans is not supported", "join");
      }
      return kind;
    });
    const residual = rest.length > 0 ? rest.map((e) => compileExpr(e, env)) : [];
    for (const r of residual) {
      if (r.kind !== "bool" && r.kind !== "null") {
        throw new UnsupportedError("a join condition must be boolean", "join");
      }
    }
    const keepLeft = j.side === "Left" || j.side === "Full";
    const keepRight = j.side === "Right" || j.side === "Full";
    return (f, ctx) => {
      const rows = plan.run(ctx);
      const right: Frame = { n: rows.n, cols: new Map() };
      j.with.columns.forEach(([, cid], i) => {
        const c = pos[i] >= 0 ? rows.cols[pos[i]] : undefined;
        if (c) right.cols.set(cid, c);
      });
      // Candidate pairs, grouped by left row in left order, right rows in right order.
      let L: Int32Array | null, R: Int32Array;
      if (pairs.length === 0) {
        L = new Int32Array(f.n * right.n), R = new Int32Array(f.n * right.n);
        for (let a = 0, p = 0; a < f.n; a++) {
          for (let b = 0; b < right.n; b++, p++) (L[p] = a, R[p] = b);
        }
      } else {
        const rk = pairs.map(([, r], k) => toTimestamps(right.cols.get(r)!, keyKinds[k]));
        const lk = pairs.map(([l], k) => toTimestamps(f.cols.get(l)!, keyKinds[k]));
        ({ L, R } = equiJoin(lk, f.n, rk, right.n));
      }
      if (residual.length > 0) {
        const l = leftIndex(L, f.n);
        const pairFrame = joinFrame(f, right, l, R, null);
        const keep: number[] = [];
        const masks = residual.map((r) => r.eval(pairFrame));
        for (let p = 0; p < l.length; p++) {
          if (masks.every((m) => isTrue(m, p))) keep.push(p);
        }
        L = Int32Array.from(keep, (p) => l[p]);
        R = Int32Array.from(keep, (p) => R[p]);
      }
      // A left join where every left row matched once is the left side as it is.
      if (keepRight || (keepLeft && L)) {
        [L, R] = outerPairs(leftIndex(L, f.n), R, f.n, right.n, keepLeft, keepRight);
      }
      return joinFrame(f, right, L, R, live);
    };
  }

  private append(ref: TableRef, leftOrder: CId[], env: TypeEnv): Step {
    const bottomEnv: TypeEnv = new Map();
    const { plan } = this.bind(ref, bottomEnv);
    if (plan.columns.length !== leftOrder.length) {
      throw new UnsupportedError(
        "`append` needs relations with the same number of columns",
        "append",
      );
    }
    const kinds = leftOrder.map((cid, p) => {
      const k = unify(this.typeOf(env, cid).kind, plan.columns[p].kind, "`append`");
      const kind = (k === "null" ? "int" : k) as Kind;
      env.set(cid, {
        kind,
        type: kind === env.get(cid)!.kind ? env.get(cid)!.type : defaultType(kind),
      });
      return kind;
    });
    return (f, ctx) => {
      const rows = plan.run(ctx);
      const cols = new Map(f.cols);
      leftOrder.forEach((cid, p) => {
        const a = toTimestamps(f.cols.get(cid)!, kinds[p]);
        const b = toTimestamps(rows.cols[p]!, kinds[p]);
        cols.set(cid, concat(a, f.n, b, rows.n, env.get(cid)!.type!));
        cols.get(cid)!.kind = kinds[p];
      });
      return { n: f.n + rows.n, cols };
    };
  }

  /** See `SortedRun`. */
  private sortedRun(steps: Transform[]): SortedRun | null {
    const from = (steps[0] as { From?: TableRef }).From;
    const base = from && this.externBase(from.source);
    const at = steps.findIndex((t) => tagOf(t) === "Sort");
    const last = (steps[steps.length - 1] as { Select?: CId[] }).Select;
    if (!base || at < 0 || !last || !steps.slice(1, at).every(rowWise)) return null;
    if (!steps.slice(at + 1).every((t) => tagOf(t) === "Select")) return null;
    // A derive that only renames (`derive {b = a}`) makes `b` the same column as `a`.
    const alias = new Map<CId, CId>();
    for (const t of steps.slice(1, at)) {
      // deno-lint-ignore no-explicit-any
      const c = (t as any).Compute;
      if (c?.expr.kind.ColumnRef !== undefined) alias.set(c.id, c.expr.kind.ColumnRef);
    }
    const resolve = (cid: CId) => {
      while (alias.has(cid)) cid = alias.get(cid)!;
      return cid;
    };
    const keys = (steps[at] as { Sort: ColumnSort[] }).Sort.map((k) => ({
      position: last.findIndex((c) => resolve(c) === resolve(k.column)),
      desc: k.direction === "Desc",
    }));
    if (keys.length === 0 || keys.some((k) => k.position < 0)) return null;
    return { relation: this.externName(base.source)!, keys };
  }

  /** A pure projection: only renames and selections of one extern relation's columns. */
  private projection(steps: Transform[]): Projection | null {
    const alias = new Map<CId, CId>();
    let origin: { source: number; pos: Map<CId, number> } | null = null;
    for (const t of steps) {
      const tag = tagOf(t);
      // deno-lint-ignore no-explicit-any
      const b = (t as any)[tag];
      if (tag === "Select") continue;
      if (tag === "Compute" && b.expr.kind.ColumnRef !== undefined && !b.window) {
        alias.set(b.id, b.expr.kind.ColumnRef);
        continue;
      }
      if (tag !== "From" || origin) return null;
      const ref = b as TableRef;
      const base = this.externBase(ref.source);
      if (!base) return null;
      const names = this.tableColumnNames(ref.source);
      const pos = refPositions(ref, names);
      const m = new Map<CId, number>();
      ref.columns.forEach(([, cid], i) => {
        if (pos[i] >= 0) m.set(cid, base.fields[pos[i]]);
      });
      origin = { source: base.source, pos: m };
    }
    if (!origin) return null;
    const last = steps[steps.length - 1] as { Select?: CId[] };
    if (!last.Select) return null;
    const fields: number[] = [];
    const resolve = (cid: CId) => {
      while (alias.has(cid)) cid = alias.get(cid)!;
      return cid;
    };
    for (const cid of last.Select) {
      const p = origin.pos.get(resolve(cid));
      if (p === undefined) return null;
      fields.push(p);
    }
    return { relation: this.externName(origin.source)!, fields };
  }

  /** `Plan.rowLocal`: the extern relation (or a selection of one) that `steps` read row-wise. */
  private rowLocal(steps: Transform[]): string | null {
    const from = (steps[0] as { From?: TableRef }).From;
    const base = from && this.externBase(from.source);
    return base && steps.slice(1).every(rowWise) ? this.externName(base.source) : null;
  }

  /** For a table that only selects columns of an extern relation: that relation's fields. */
  private externBase(id: number): { source: number; fields: number[] } | null {
    if (this.externName(id) !== null) {
      return { source: id, fields: this.tableColumnNames(id).map((_, i) => i) };
    }
    const t = this.rq.tables.find((x) => x.id === id)!;
    const steps = (t.relation.kind as { Pipeline?: Transform[] }).Pipeline ?? [];
    const [first, ...rest] = steps;
    const from = (first as { From?: TableRef } | undefined)?.From;
    if (!from || this.externName(from.source) === null) return null;
    if (!rest.every((s) => tagOf(s) === "Select")) return null;
    const last = (rest[rest.length - 1] as { Select: CId[] } | undefined)?.Select;
    if (!last) return null;
    const pos = refPositions(from, this.tableColumnNames(from.source));
    const byCid = new Map(from.columns.map(([, cid], i) => [cid, pos[i]]));
    const fields = last.map((cid) => byCid.get(cid) ?? -1);
    return fields.includes(-1) ? null : { source: from.source, fields };
  }
}

function isTrue(m: Column, p: number): boolean {
  const s = m.scalar ? 0 : p;
  return m.nums![s] === 1 && (!m.valid || m.valid[s] === 1);
}

/** Adds unmatched rows (paired with -1) for outer joins, keeping left rows in order. */
function outerPairs(
  L: Int32Array,
  R: Int32Array,
  ln: number,
  rn: number,
  keepLeft: boolean,
  keepRight: boolean,
): [Int32Array, Int32Array] {
  const lo: number[] = [], ro: number[] = [];
  const rightHit = new Uint8Array(rn);
  let p = 0;
  for (let a = 0; a < ln; a++) {
    let matched = false;
    while (p < L.length && L[p] === a) {
      lo.push(a), ro.push(R[p]), rightHit[R[p]] = 1, p++;
      matched = true;
    }
    if (!matched && keepLeft) lo.push(a), ro.push(-1);
  }
  if (keepRight) { for (let b = 0; b < rn; b++) if (!rightHit[b]) lo.push(-1), ro.push(b); }
  return [Int32Array.from(lo), Int32Array.from(ro)];
}

/** The joined rows; `L` null: every left row once, in order (its columns are kept as are). */
function joinFrame(
  left: Frame,
  right: Frame,
  L: Int32Array | null,
  R: Int32Array,
  live: Set<CId> | null,
): Frame {
  const cols = new Map<CId, Column>();
  for (const [id, c] of left.cols) {
    if (!live || live.has(id)) cols.set(id, L ? gather(c, L) : c);
  }
  for (const [id, c] of right.cols) if (!live || live.has(id)) cols.set(id, gather(c, R));
  return { n: R.length, cols };
}

/** Plans an RQ query against the schemas of the relations it may read. */
export function planQuery(rq: RelationalQuery, schemas: Record<string, arrow.Schema>): Plan {
  return new Planner(rq, schemas).plan();
}
