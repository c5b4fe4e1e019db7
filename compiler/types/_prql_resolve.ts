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

/** One column of the frame: a named column, or `input`'s unknown rest (`name` null). */
interface FrameCol {
  name: string | null;
  ref: Ref;
}

class Resolver {
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
    return [...this.inputs, { name: null, ref: this.wildcard }, ...this.derived];
  }

  /** Aliases given earlier in the tuple being read: prql-js may resolve a name to one. */
  private siblings = new Set<string>();

  private name(n: string): Ref {
    if (reserved(n) || this.siblings.has(n)) throw new Outside();
    const found = this.columns().find((c) => c.name === n);
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
    } else if (e.Literal !== undefined) {
      if (e.Literal === "Null") throw new Outside();
      const literal = Object.keys(e.Literal as Pl)[0];
      type = [LITERAL[literal] ?? "other"];
      kind = { Literal: e.Literal };
    } else if (e.Binary) {
      const b = e.Binary as Pl;
      const op = OPERATORS[b.op as string];
      if (!op) throw new Outside();
      const args = [this.expr(b.left as Pl, op.args), this.expr(b.right as Pl, op.args)];
      kind = { Operator: { name: op.name, args } };
      type = op.result;
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
  /** The type of the expression `expr` read last. */
  private lastType: readonly string[] | null = null;

  /** A new column computed from `e`, placed in the pipeline here. */
  private compute(e: Pl): Ref {
    const expr = this.expr(e);
    const ref = { id: -1 };
    if (this.lastType) this.types.set(ref, this.lastType);
    this.computes.push(ref);
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
          if (typeof item.Ident !== "string") throw new Outside();
          const ref = this.name(item.Ident);
          if (chosen.some((c) => c.ref === ref)) throw new Outside();
          chosen.push({ name: item.Ident, ref });
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
    } else if (name === "take") {
      const [n] = this.items(call);
      const count = (n.Literal as Pl | undefined)?.Integer;
      if (typeof count !== "number" || "alias" in n || (call.args as Pl[])[0].Tuple) {
        throw new Outside();
      }
      this.pipeline.push({
        Take: {
          range: { start: null, end: { kind: { Literal: n.Literal }, span: null } },
          partition: [],
          sort: this.sort,
        },
      });
    } else throw new Outside();
  }
}

/**
 * The RQ prql-js's `pl_to_rq` gives for `pl` (PL JSON as `_prql_parse.ts` writes it), or null
 * when the block is outside the subset this file lowers.
 */
export function resolveRq(pl: string): Record<string, unknown> | null {
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
    const r = new Resolver();
    for (const step of exprs.slice(1)) {
      if (!step.FuncCall || "alias" in step) return null;
      r.transform(step.FuncCall as Pl);
    }
    const columns = r.columns();
    r.pipeline.push({ Select: columns.map((c) => c.ref) });
    // prql-js numbers `input`'s named columns first, then its wildcard, then computed ones.
    r.inputs.forEach((c, k) => (c.ref.id = k));
    r.wildcard.id = r.inputs.length;
    r.computes.forEach((ref, k) => (ref.id = r.inputs.length + 1 + k));
    const single = (c: FrameCol) => c.name === null ? "Wildcard" : { Single: c.name };
    const inputColumns = [...r.inputs, { name: null, ref: r.wildcard }];
    const rq = {
      def: { version: null, other: {} },
      tables: [{
        id: 0,
        name: null,
        relation: {
          kind: { ExternRef: { LocalTable: ["input"] } },
          columns: inputColumns.map(single),
        },
      }],
      relation: {
        kind: {
          Pipeline: [
            {
              From: {
                source: 0,
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
    // The refs become their numbers: a plain object, as `JSON.parse` of prql-js's answer.
    return JSON.parse(
      JSON.stringify(rq, (_k, v) =>
        v && typeof v === "object" && "id" in v && !("expr" in v) &&
          Object.keys(v).length === 1
          ? v.id
          : v),
    );
  } catch (e) {
    if (e instanceof Outside) return null;
    throw e;
  }
}
