/**
 * Lowers the commonest PRQL blocks from PL to RQ here, giving exactly what prql-js's
 * `pl_to_rq` gives (the same RQ, compared as JSON), so that most checks never start prql-js:
 * its first call in a process costs about half a second of WebAssembly warm-up, and each later
 * lowering a load of PRQL's standard library (about 15 ms), which made typing a new column
 * alias into a block cost that per keystroke. Anything this file does not know gives null and
 * prql-js lowers the block, so PRQL's own name errors, functions, joins and aggregations stay
 * prql-js's.
 *
 * The subset: `from input` followed by `filter`, `derive`, `select`, `sort` and `take N`, over
 * column names, literals and the unary and binary operators. A name is a column of the frame
 * (what the previous transforms produced) or, while the frame still holds all of `input`
 * (no `select` yet), a new column of `input`. Names PRQL's standard library declares, names it
 * would shadow, and any name the frame cannot place give null. `tests/compiler/prql_resolve_test.ts`
 * compares it with prql-js on every block of the corpora and on generated pipelines.
 */

type Pl = Record<string, unknown>;

/** A column id, numbered once the whole block is read (prql-js numbers `input`'s first). */
interface Ref {
  id: number;
}

/** Thrown when the block leaves the subset; `resolveRq` turns it into null. */
class Outside extends Error {}

/** Names PRQL's standard library declares (and its modules): resolving them is prql-js's. */
const RESERVED = new Set(
  ("mul div_i div_f mod add sub eq ne gt lt gte lte and or coalesce regex_search neg not from " +
    "select filter derive aggregate sort take join group window append intersect remove loop min " +
    "max sum average stddev all any concat_array count count_distinct lag lead first last rank " +
    "rank_dense row_number math text date std as in tuple_every tuple_map tuple_zip from_text " +
    "read_parquet read_csv prql prql_version this that default_db noresolve lower upper ltrim " +
    "rtrim trim length extract replace starts_with contains ends_with to_text round abs floor " +
    "ceil pi exp ln log10 log sqrt degrees radians cos acos sin asin tan atan pow version " +
    "input true false null")
    .split(" "),
);

/**
 * Whether resolving `name` is left to prql-js: PRQL's own names, and names with a leading `_`
 * (prql-js gives some, like `_param`, a meaning of their own) but for the `_error_*` columns
 * Heddle gives a handler's rows.
 */
function reserved(name: string): boolean {
  return RESERVED.has(name) || (name.startsWith("_") && !name.startsWith("_error_"));
}

const NUMBER = ["int", "float"];
const BOOL = ["bool"];

/** The type of each kind of literal, as prql-js names them. */
const LITERAL: Record<string, string> = {
  Integer: "int",
  Float: "float",
  String: "text",
  Boolean: "bool",
};

interface Operator {
  name: string;
  /** The types its parameters take (null: any), and its result's. */
  args: readonly string[] | null;
  result: readonly string[];
  unary?: boolean;
}

const op = (name: string, args: string[] | null, result: string[], unary = false): Operator => ({
  name: `std.${name}`,
  args,
  result,
  unary,
});

/** PL operators by name, with the signatures of PRQL's standard library (0.12). */
const OPERATORS: Record<string, Operator> = {
  Mul: op("mul", null, NUMBER),
  DivInt: op("div_i", null, NUMBER),
  DivFloat: op("div_f", null, NUMBER),
  Mod: op("mod", null, NUMBER),
  Add: op("add", null, [...NUMBER, "timestamp", "date"]),
  Sub: op("sub", null, [...NUMBER, "timestamp", "date"]),
  Eq: op("eq", null, BOOL),
  Ne: op("ne", null, BOOL),
  Gt: op("gt", null, BOOL),
  Lt: op("lt", null, BOOL),
  Gte: op("gte", null, BOOL),
  Lte: op("lte", null, BOOL),
  And: op("and", BOOL, BOOL),
  Or: op("or", BOOL, BOOL),
  Neg: op("neg", NUMBER, NUMBER, true),
  Not: op("not", BOOL, BOOL, true),
};

/** The aggregate functions lowered here: those the engine runs. */
const AGGREGATES = new Set(["count", "sum", "average", "min", "max", "count_distinct"]);

/** One column of the frame: a named column, or `input`'s unknown rest (`name` null). */
interface FrameCol {
  /** Null for `input`'s wildcard and for a column without a name (`group {a + 1}`). */
  name: string | null;
  ref: Ref;
  wildcard?: true;
  /** Set on the place a joined table's columns and wildcard take in the frame. */
  join?: Join;
}

/** A table joined while `input` is whole: its columns in order of first use, then wildcard. */
interface Join {
  table: string;
  cols: FrameCol[];
  wildcard: Ref;
  /** The RQ `Join` step, completed once every column read from the table is known. */
  step: Record<string, unknown>;
}

const SIDES: Record<string, string> = {
  inner: "Inner",
  left: "Left",
  right: "Right",
  full: "Full",
};

const single = (c: FrameCol) => c.wildcard ? "Wildcard" : { Single: c.name };

class Resolver {
  /**
   * `known`: `input`'s columns when they are declared (the engine's prelude), so the frame
   * starts closed, holding exactly them; null when `input`'s columns are unknown (a check).
   */
  constructor(readonly known: string[] | null, readonly relations: Record<string, string[]> = {}) {
    if (known) this.frame = known.map((name) => ({ name, ref: { id: -1 } }));
    this.declaredInput = this.frame ? [...this.frame] : [];
  }
  /** With declared columns: `input`'s, as the block's `from` reads them. */
  readonly declaredInput: FrameCol[];
  /** Set from a join until a `select` or `group` makes a new frame. */
  private afterJoin = false;
  /** Set once a `select` or `group` made a new frame: joins after that are prql-js's. */
  private reshaped = false;
  /** `input`'s named columns in order of first use, then its wildcard. */
  readonly inputs: FrameCol[] = [];
  readonly wildcard: Ref = { id: -1 };
  readonly computes: Ref[] = [];
  readonly pipeline: unknown[] = [];
  /** What prql-js knows of computed columns' types. */
  private readonly types = new Map<Ref, readonly string[]>();
  /** The derived and selected columns after `input`'s, and whether `input` is still whole. */
  private frame: FrameCol[] | null = null;
  /** Columns derived while `input` is still whole: they follow its wildcard. */
  private derived: FrameCol[] = [];
  private sort: unknown[] = [];

  /** The frame as prql-js orders it: `input`'s columns and wildcard first while it is whole. */
  columns(): FrameCol[] {
    if (this.frame) return this.frame;
    const tail = this.derived.flatMap((c) =>
      c.join ? [...c.join.cols, { name: null, ref: c.join.wildcard, wildcard: true as const }] : [c]
    );
    return [...this.inputs, { name: null, ref: this.wildcard, wildcard: true }, ...tail];
  }

  /** Aliases given earlier in the tuple being read: prql-js may resolve a name to one. */
  private siblings = new Set<string>();

  /**
   * Set while an `aggregate`'s arguments are read: prql-js resolves a name there that a
   * `derive` gave to a new column of `input` instead, so such names are left to it.
   */
  private aggregating = false;
  /** While a `group`'s keys are read: the columns they read. */
  private reads: Set<Ref> | null = null;
  /**
   * Columns a `group` over a closed frame keys by (or reads in its keys): prql-js no longer
   * finds them inside its `aggregate`, so reading them there is left to it.
   */
  private hidden = new Set<Ref>();
  /** Tables joined so far, in order. */
  readonly joins: Join[] = [];
  /** Computed columns and joins in pipeline order: how prql-js numbers what follows `input`. */
  readonly order: Array<Ref | Join> = [];
  /** The join whose condition is being read (`that`). */
  private joining: Join | null = null;

  /**
   * A qualified name: `input.x`, `<joined table>.x`, and in a join's condition `this.x` (the
   * stream's `input`, at a first join) and `that.x` (the table joined). Only while `input` is
   * whole; a name PRQL owns is left to prql-js.
   */
  private qualified(e: Pl): { name: string; ref: Ref } {
    const base = ((e.base as Pl).Ident) as string | undefined;
    const field = ((e.field as Pl).Name) as string | undefined;
    // Qualified names are read while `input` is whole (a check) or right after joins (declared).
    const open = this.known ? this.afterJoin || this.joining !== null : !this.frame;
    if (!open || typeof base !== "string" || typeof field !== "string" || reserved(field)) {
      throw new Outside();
    }
    let cols: FrameCol[];
    if (base === "input" || (base === "this" && this.joining && this.joins.length === 1)) {
      const derived = this.known
        ? this.frame!.filter((c) => this.computes.includes(c.ref))
        : this.derived;
      if (derived.some((c) => c.name === field)) throw new Outside();
      cols = this.known ? this.declaredInput : this.inputs;
    } else if (base === "that" && this.joining) cols = this.joining.cols;
    else {
      const join = this.joins.find((j) => j.table === base);
      if (!join) throw new Outside();
      cols = join.cols;
    }
    let col = cols.find((c) => c.name === field);
    // Declared tables hold exactly their columns: another name is prql-js's error.
    if (!col && this.known) throw new Outside();
    if (!col) cols.push(col = { name: field, ref: { id: -1 } });
    return { name: field, ref: col.ref };
  }

  private name(n: string): Ref {
    if (reserved(n) || this.siblings.has(n)) throw new Outside();
    if (this.afterJoin || this.joining) {
      // After a join an unqualified name may be ambiguous between the tables, unless a
      // `derive` made it.
      const derived = this.columns().find((c) =>
        !c.join && c.name === n && this.computes.includes(c.ref)
      );
      if (!derived || this.joining) throw new Outside();
      return derived.ref;
    }
    const found = this.columns().find((c) => c.name === n);
    if (found && this.aggregating && this.computes.includes(found.ref)) throw new Outside();
    if (found && this.aggregating && this.hidden.has(found.ref)) throw new Outside();
    if (found) this.reads?.add(found.ref);
    if (found) return found.ref;
    if (this.frame) throw new Outside();
    const ref = { id: -1 };
    this.inputs.push({ name: n, ref });
    return ref;
  }

  /**
   * An expression's RQ. prql-js checks the types of what it can type (literals, operators'
   * results, columns computed from them) against its functions' parameters, so a misfit
   * (`filter 1`, `-true`) is left to it to report. `want` is the types the place allows.
   */
  expr(e: Pl, want: readonly string[] | null = null): unknown {
    if ("alias" in e) throw new Outside();
    let kind: unknown;
    let type: readonly string[] | null = null;
    if (typeof e.Ident === "string") {
      const ref = this.name(e.Ident);
      kind = { ColumnRef: ref };
      type = this.types.get(ref) ?? null;
    } else if (e.Indirection) {
      kind = { ColumnRef: this.qualified(e.Indirection as Pl).ref };
    } else if (e.Literal !== undefined) {
      if (e.Literal === "Null") throw new Outside();
      const literal = Object.keys(e.Literal as Pl)[0];
      type = [LITERAL[literal] ?? "other"];
      kind = { Literal: e.Literal };
    } else if (e.Binary) {
      const b = e.Binary as Pl;
      const op = OPERATORS[b.op as string];
      if (!op) throw new Outside();
      const args = [this.operand(b, "left", op), this.operand(b, "right", op)];
      kind = { Operator: { name: op.name, args } };
      type = op.result;
    } else if (e.Pipeline) {
      return this.inRange(e.Pipeline as Pl, want);
    } else if (e.Unary) {
      const u = e.Unary as Pl;
      const op = OPERATORS[u.op as string];
      // prql-js folds an operator on a literal (`!true` is `false`): left to it.
      if (!op || !op.unary || (u.expr as Pl).Literal !== undefined) throw new Outside();
      kind = { Operator: { name: op.name, args: [this.expr(u.expr as Pl, op.args)] } };
      type = op.result;
    } else throw new Outside();
    if (want && (!type || !type.every((t) => want.includes(t)))) {
      // A column of unknown type fits anywhere; a known type that may not fit is prql-js's.
      if (type) throw new Outside();
    }
    this.lastType = type;
    return { kind, span: null };
  }
  /**
   * One operand of a binary operator. `null` is an operand of `==` and `!=` only (prql-js
   * makes them `IS NULL` and `IS NOT NULL`), and never both of them.
   */
  private operand(b: Pl, side: "left" | "right", op: Operator): unknown {
    const e = b[side] as Pl;
    const other = b[side === "left" ? "right" : "left"] as Pl;
    if (e.Literal === "Null" && !("alias" in e) && (op.name === "std.eq" || op.name === "std.ne")) {
      if (other.Literal !== undefined) throw new Outside();
      return { kind: { Literal: "Null" }, span: null };
    }
    return this.expr(e, op.args);
  }

  /**
   * `(x | in a..b)`: prql-js writes `x >= a && x <= b` (one side for an open range), with
   * `x`'s RQ in each comparison. Bounds are number literals; `x` a column or an operation.
   */
  private inRange(pipeline: Pl, want: readonly string[] | null): unknown {
    const [x, call, ...rest] = pipeline.exprs as Pl[];
    const fn = call?.FuncCall as Pl | undefined;
    const args = fn?.args as Pl[] | undefined;
    const range = args?.[0]?.Range as Pl | undefined;
    if (
      rest.length > 0 || !fn || (fn.name as Pl).Ident !== "in" || args!.length !== 1 ||
      fn.named_args || !range || "alias" in x || "alias" in args![0] || x.Literal !== undefined
    ) throw new Outside();
    const bound = (b: unknown) => {
      const literal = (b as Pl | null)?.Literal as Pl | undefined;
      if (b === null) return null;
      if (typeof literal?.Integer !== "number" && typeof literal?.Float !== "number") {
        throw new Outside();
      }
      return { kind: { Literal: literal }, span: null };
    };
    const start = bound(range.start), end = bound(range.end);
    if (want && !want.includes("bool")) throw new Outside();
    const value = this.expr(x, null);
    const compare = (name: string, b: unknown) => ({
      kind: { Operator: { name, args: [value, b] } },
      span: null,
    });
    this.lastType = BOOL;
    if (start && end) {
      return {
        kind: {
          Operator: { name: "std.and", args: [compare("std.gte", start), compare("std.lte", end)] },
        },
        span: null,
      };
    }
    return start ? compare("std.gte", start) : compare("std.lte", end);
  }

  /** The type of the expression `expr` read last. */
  private lastType: readonly string[] | null = null;

  /** A new column computed from `e`, placed in the pipeline here. */
  private compute(e: Pl): Ref {
    const expr = this.expr(e);
    const ref = { id: -1 };
    if (this.lastType) this.types.set(ref, this.lastType);
    this.computes.push(ref);
    this.order.push(ref);
    this.pipeline.push({ Compute: { id: ref, expr } });
    return ref;
  }

  /** A transform's only argument, as a list of items (a tuple's or the one). */
  private items(call: Pl): Pl[] {
    const args = call.args as Pl[];
    if (args.length !== 1 || call.named_args) throw new Outside();
    const arg = args[0];
    return Array.isArray(arg.Tuple) ? arg.Tuple as Pl[] : [arg];
  }

  /** A new column's name: one the frame does not hold yet. */
  private fresh(alias: unknown, taken: FrameCol[]): string {
    if (typeof alias !== "string" || reserved(alias)) {
      throw new Outside();
    }
    if (this.columns().some((c) => c.name === alias) || taken.some((c) => c.name === alias)) {
      throw new Outside();
    }
    return alias;
  }

  /**
   * `aggregate {..}`, alone or inside `group` (`keys` the partition): each item one of the
   * aggregate functions the engine runs, over one argument. The frame becomes the keys and
   * the aggregates, and a `sort` before it no longer orders what follows.
   */
  private aggregate(call: Pl, keys: FrameCol[]): void {
    // prql-js drops a `sort` that a `group` or `aggregate` follows: left to it; so are
    // groups after a join.
    if (this.pipeline.some((step) => "Sort" in (step as Pl)) || this.joins.length > 0) {
      throw new Outside();
    }
    const computed: FrameCol[] = [];
    const taken = () => [...keys, ...computed];
    for (const item of this.items(call)) {
      const { alias, ...e } = item;
      const fn = e.FuncCall as Pl | undefined;
      const fname = (fn?.name as Pl | undefined)?.Ident as string | undefined;
      const args = fn?.args as Pl[] | undefined;
      if (!fn || !fname || !AGGREGATES.has(fname) || args?.length !== 1 || fn.named_args) {
        throw new Outside();
      }
      const [arg] = args;
      if ("alias" in arg) throw new Outside();
      this.aggregating = true;
      let rq: unknown;
      if (fname === "count") {
        // prql-js counts rows whatever the argument (`count this`, `count a`), yet reads `a`.
        if (typeof arg.Ident !== "string") throw new Outside();
        if (arg.Ident !== "this") this.name(arg.Ident);
        rq = { kind: { Literal: "Null" }, span: null };
      } else rq = this.expr(arg);
      this.aggregating = false;
      const ref = { id: -1 };
      this.computes.push(ref);
      this.order.push(ref);
      this.pipeline.push({
        Compute: {
          id: ref,
          expr: { kind: { Operator: { name: `std.${fname}`, args: [rq] } }, span: null },
          is_aggregation: true,
        },
      });
      const named = alias === undefined ? null : alias as string;
      if (named !== null && (reserved(named) || taken().some((c) => c.name === named))) {
        throw new Outside();
      }
      computed.push({ name: named, ref });
      if (named !== null) this.siblings.add(named);
    }
    this.siblings.clear();
    this.pipeline.push({
      Aggregate: { partition: keys.map((c) => c.ref), compute: computed.map((c) => c.ref) },
    });
    this.frame = [...keys, ...computed];
    this.derived = [];
    this.reshaped = true;
    this.sort = [];
  }

  /**
   * `join [side:s] t (condition)` while `input` is whole (in a check, where tables have no
   * declared columns): the table's columns are those the block reads from it.
   */
  private join(call: Pl): void {
    const args = call.args as Pl[];
    const named = (call.named_args ?? {}) as Pl;
    const sideName = (named.side as Pl | undefined)?.Ident;
    const table = args[0]?.Ident;
    const declared = this.known ? this.relations[table as string] : null;
    if (
      (this.known ? !declared || table === "input" : this.frame) || this.reshaped ||
      args.length !== 2 || typeof table !== "string" ||
      "alias" in args[0] || reserved(table) || this.joins.some((j) => j.table === table) ||
      Object.keys(named).some((k) => k !== "side") ||
      (named.side !== undefined && (typeof sideName !== "string" || !SIDES[sideName])) ||
      this.pipeline.some((step) => "Sort" in (step as Pl))
    ) throw new Outside();
    const step: Record<string, unknown> = {};
    const cols = (declared ?? []).map((name) => ({ name, ref: { id: -1 } }));
    const join: Join = { table, cols, wildcard: { id: -1 }, step };
    this.joins.push(join);
    this.joining = join;
    const filter = this.selfEquality(args[1]) ?? this.expr(args[1], BOOL);
    this.joining = null;
    this.order.push(join);
    this.afterJoin = true;
    if (this.known) this.frame!.push(...cols);
    else this.derived.push({ name: null, ref: join.wildcard, join });
    step.side = SIDES[typeof sideName === "string" ? sideName : "inner"];
    step.filter = filter;
    this.pipeline.push({ Join: step });
  }

  /**
   * `(==k)` at a first join behind the prelude: prql-js reads it as `this.k == that.k`, each
   * side its own column `k`. Later joins (where Heddle's `_sugar.ts` may rewrite it) and a
   * check (where the compiler spells it out first) leave it to prql-js.
   */
  private selfEquality(e: Pl): unknown {
    const u = e.Unary as Pl | undefined;
    if (!u || u.op !== "EqSelf") return null;
    const k = (u.expr as Pl).Ident;
    const join = this.joining!;
    const left = this.frame?.find((c) => c.name === k && !join.cols.includes(c));
    const right = join.cols.find((c) => c.name === k);
    if (!this.known || this.joins.length !== 1 || "alias" in (u.expr as Pl) || !left || !right) {
      throw new Outside();
    }
    const column = (c: FrameCol) => ({ kind: { ColumnRef: c.ref }, span: null });
    this.lastType = BOOL;
    return {
      kind: { Operator: { name: "std.eq", args: [column(left), column(right)] } },
      span: null,
    };
  }

  transform(call: Pl): void {
    const name = (call.name as Pl | undefined)?.Ident;
    if (name === "filter") {
      const [e] = this.items(call);
      if ((call.args as Pl[])[0].Tuple) throw new Outside();
      this.pipeline.push({ Filter: this.expr(e, BOOL) });
    } else if (name === "derive") {
      const added: FrameCol[] = [];
      for (const item of this.items(call)) {
        const { alias, ...e } = item;
        // The expression first: a name it reads may be the one the alias would shadow.
        const ref = this.compute(e);
        added.push({ name: this.fresh(alias, added), ref });
        this.siblings.add(alias as string);
      }
      this.siblings.clear();
      if (this.frame) this.frame.push(...added);
      else this.derived.push(...added);
    } else if (name === "select") {
      const chosen: FrameCol[] = [];
      for (const item of this.items(call)) {
        if (item.alias === undefined) {
          const col = item.Indirection
            ? this.qualified(item.Indirection as Pl)
            : typeof item.Ident === "string"
            ? { name: item.Ident, ref: this.name(item.Ident) }
            : null;
          if (!col || chosen.some((c) => c.ref === col.ref || c.name === col.name)) {
            throw new Outside();
          }
          chosen.push(col);
        } else {
          const { alias, ...e } = item;
          const ref = this.compute(e);
          chosen.push({ name: this.fresh(alias, chosen), ref });
          this.siblings.add(alias as string);
        }
      }
      this.siblings.clear();
      this.frame = chosen;
      this.derived = [];
      this.afterJoin = false;
      this.reshaped = true;
      this.pipeline.push({ Select: chosen.map((c) => c.ref) });
    } else if (name === "sort") {
      this.sort = this.items(call).map((item) => {
        let e = item;
        let direction = "Asc";
        if (e.Unary) {
          const u = e.Unary as Pl;
          if (u.op !== "Neg" && u.op !== "Add") throw new Outside();
          if (u.op === "Neg") direction = "Desc";
          e = u.expr as Pl;
        }
        if (typeof e.Ident !== "string" || "alias" in item) throw new Outside();
        return { direction, column: this.name(e.Ident) };
      });
      this.pipeline.push({ Sort: this.sort });
    } else if (name === "group") {
      const args = call.args as Pl[];
      const inner = args[1]?.FuncCall as Pl | undefined;
      if (
        args.length !== 2 || call.named_args ||
        (inner?.name as Pl | undefined)?.Ident !== "aggregate"
      ) {
        throw new Outside();
      }
      const keys: FrameCol[] = [];
      const closed = this.frame !== null;
      this.reads = new Set();
      const by = Array.isArray(args[0].Tuple) ? args[0].Tuple as Pl[] : [args[0]];
      for (const item of by) {
        const { alias, ...e } = item;
        if (alias === undefined && typeof e.Ident === "string") {
          const ref = this.name(e.Ident);
          if (keys.some((c) => c.ref === ref)) throw new Outside();
          keys.push({ name: e.Ident, ref });
        } else {
          // An unnamed key expression is a column without a name, as in prql-js.
          const ref = this.compute(e);
          keys.push({ name: alias === undefined ? null : this.fresh(alias, keys), ref });
          if (alias !== undefined) this.siblings.add(alias as string);
        }
      }
      this.siblings.clear();
      if (closed) this.hidden = this.reads;
      this.reads = null;
      this.aggregate(inner!, keys);
      this.hidden = new Set();
    } else if (name === "aggregate") {
      this.aggregate(call, []);
    } else if (name === "join") {
      this.join(call);
    } else if (name === "take") {
      const [n] = this.items(call);
      if ("alias" in n || (call.args as Pl[])[0].Tuple) throw new Outside();
      // `take n` and `take a..b` / `take a..` over positive integer literals.
      const literal = (e: unknown) => {
        const value = ((e as Pl | null)?.Literal as Pl | undefined)?.Integer;
        if (typeof value !== "number" || value < 1) throw new Outside();
        return { kind: { Literal: (e as Pl).Literal }, span: null };
      };
      const range = n.Range as Pl | undefined;
      const start = range ? literal(range.start) : null;
      const end = range ? (range.end === null ? null : literal(range.end)) : literal(n);
      this.pipeline.push({ Take: { range: { start, end }, partition: [], sort: this.sort } });
    } else throw new Outside();
  }
}

/**
 * `input`'s columns as the PRQL engine declares them in front of a block (`let input = (from
 * default_db.input | select {..})`, target DuckDB): lowering then gives what prql-js gives for
 * the block behind that prelude.
 */
export interface Declared {
  columns: string[];
  /** The other relations' columns (joined steps), declared the same way. */
  relations?: Record<string, string[]>;
}

/**
 * The RQ prql-js's `pl_to_rq` gives for `pl` (PL JSON as `_prql_parse.ts` writes it), or null
 * when the block is outside the subset this file lowers. With `declared`, the RQ of the block
 * behind the engine's prelude (`runtime/prql`), whose `input` has exactly those columns.
 */
export function resolveRq(pl: string, declared?: Declared): Record<string, unknown> | null {
  try {
    const stmts = (JSON.parse(pl) as Pl).stmts as Pl[];
    const def = stmts.length === 1 ? stmts[0].VarDef as Pl | undefined : undefined;
    if (def?.kind !== "Main") return null;
    const value = def.value as Pl;
    const exprs = ((value.Pipeline as Pl | undefined)?.exprs ?? [value]) as Pl[];
    const from = exprs[0]?.FuncCall as Pl | undefined;
    const fromArgs = from?.args as Pl[] | undefined;
    if (
      !from || (from.name as Pl).Ident !== "from" || from.named_args || fromArgs?.length !== 1 ||
      fromArgs[0].Ident !== "input" || "alias" in fromArgs[0] || "alias" in exprs[0]
    ) return null;
    const known = declared?.columns ?? null;
    // Names the prelude would quote or that PRQL would read as its own: left to prql-js.
    const plain = (cols: string[]) =>
      cols.length > 0 && new Set(cols).size === cols.length &&
      cols.every((c) => !reserved(c) && /^[A-Za-z_]\w*$/.test(c));
    if (known && !plain(known)) return null;
    const relations = Object.fromEntries(
      Object.entries(declared?.relations ?? {}).filter(([name, cols]) =>
        name !== "input" && !reserved(name) && /^[A-Za-z_]\w*$/.test(name) && plain(cols)
      ),
    );
    const r = new Resolver(known, relations);
    const start = known ? [...r.columns()] : [];
    for (const step of exprs.slice(1)) {
      if (!step.FuncCall || "alias" in step) return null;
      r.transform(step.FuncCall as Pl);
    }
    const columns = r.columns();
    r.pipeline.push({ Select: columns.map((c) => c.ref) });
    if (known) return JSON.parse(JSON.stringify(declaredRq(r, start, columns), refsToIds));
    // prql-js numbers `input`'s named columns first, then its wildcard, then computed columns
    // and joined tables' columns (each table's then its wildcard) in pipeline order.
    let next = 0;
    r.inputs.forEach((c) => (c.ref.id = next++));
    r.wildcard.id = next++;
    for (const item of r.order) {
      if ("table" in item) {
        item.cols.forEach((c) => (c.ref.id = next++));
        item.wildcard.id = next++;
      } else item.id = next++;
    }
    const withWildcard = (cols: FrameCol[], wildcard: Ref): FrameCol[] => [
      ...cols,
      { name: null, ref: wildcard, wildcard: true },
    ];
    const inputColumns = withWildcard(r.inputs, r.wildcard);
    // Tables are numbered from the last joined back to `input`.
    const source = (k: number) => r.joins.length - 1 - k;
    r.joins.forEach((j, k) => {
      const cols = withWildcard(j.cols, j.wildcard);
      j.step.with = {
        source: source(k),
        columns: cols.map((c) => [single(c), c.ref]),
        name: j.table,
      };
    });
    const table = (name: string, cols: FrameCol[]) => ({
      kind: { ExternRef: { LocalTable: [name] } },
      columns: cols.map(single),
    });
    const rq = {
      def: { version: null, other: {} },
      tables: [
        ...[...r.joins].reverse().map((j, id) => ({
          id,
          name: null,
          relation: table(j.table, withWildcard(j.cols, j.wildcard)),
        })),
        { id: r.joins.length, name: null, relation: table("input", inputColumns) },
      ],
      relation: {
        kind: {
          Pipeline: [
            {
              From: {
                source: r.joins.length,
                columns: inputColumns.map((c) => [single(c), c.ref]),
                name: "input",
              },
            },
            ...r.pipeline,
          ],
        },
        columns: columns.map(single),
      },
    };
    return JSON.parse(JSON.stringify(rq, refsToIds));
  } catch (e) {
    if (e instanceof Outside) return null;
    throw e;
  }
}

/** The refs become their numbers: a plain object, as `JSON.parse` of prql-js's answer. */
function refsToIds(_key: string, v: unknown): unknown {
  return v && typeof v === "object" && "id" in v && !("expr" in v) && Object.keys(v).length === 1
    ? (v as Ref).id
    : v;
}

/**
 * The RQ behind the engine's prelude: `default_db.input` (its columns and wildcard numbered
 * first), the `input` relation that selects the declared columns, then the block reading it.
 */
function declaredRq(r: Resolver, start: FrameCol[], columns: FrameCol[]) {
  // Each relation read, from the last joined back to `input`: the table the prelude names
  // (its columns and wildcard numbered first) and the `let` that selects its columns.
  const tables: unknown[] = [];
  const letOf = new Map<string, number>();
  let next = 0;
  const relations = [
    ...[...r.joins].reverse().map((j) => ({ name: j.table, cols: j.cols })),
    { name: "input", cols: start },
  ];
  for (const { name, cols } of relations) {
    const named = cols.map((c) => ({ Single: c.name }));
    const ids = cols.map(() => next++);
    const wildcard = next++;
    tables.push({
      id: tables.length,
      name: null,
      relation: {
        kind: { ExternRef: { LocalTable: ["default_db", name] } },
        columns: [...named, "Wildcard"],
      },
    });
    letOf.set(name, tables.length);
    tables.push({
      id: tables.length,
      name,
      relation: {
        kind: {
          Pipeline: [
            {
              From: {
                source: tables.length - 1,
                columns: [...named.map((c, k) => [c, ids[k]]), ["Wildcard", wildcard]],
                name,
              },
            },
            { Select: ids },
            { Select: ids },
          ],
        },
        columns: named,
      },
    });
  }
  start.forEach((c) => (c.ref.id = next++));
  for (const item of r.order) {
    if ("table" in item) item.cols.forEach((c) => (c.ref.id = next++));
    else item.id = next++;
  }
  for (const j of r.joins) {
    j.step.with = {
      source: letOf.get(j.table),
      columns: j.cols.map((c) => [{ Single: c.name }, c.ref]),
      name: j.table,
    };
  }
  return {
    def: { version: null, other: { target: "sql.duckdb" } },
    tables,
    relation: {
      kind: {
        Pipeline: [
          {
            From: {
              source: letOf.get("input"),
              columns: start.map((c) => [{ Single: c.name }, c.ref]),
              name: "input",
            },
          },
          ...r.pipeline,
        ],
      },
      columns: columns.map(single),
    },
  };
}
