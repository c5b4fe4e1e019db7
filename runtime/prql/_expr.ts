/**
 * Compiles RQ expressions into typed, vectorised evaluators. Each `std.*` operator that the
 * engine supports is listed in OPERATORS with its typing rule and kernel; anything else is a
 * compile error naming the construct. Kernels loop over typed arrays and never allocate per
 * row for numbers, booleans and dates. Every kernel follows the SQL that prql-js generates
 * for DuckDB (three-valued logic, NULL on division by zero, LIKE for the text predicates);
 * a kernel that cannot match that SQL exactly must not exist.
 */
import { lower, upper } from "./_case.ts";
import type * as arrow from "apache-arrow";
import {
  type Column,
  defaultType,
  type Kind,
  type NumArray,
  scalarColumn,
  texts,
  utf8Of,
} from "./_column.ts";
import { type CId, type Expr, type Literal, tagOf } from "./_rq.ts";
import { compareBytes } from "./_utf8.ts";

/** A compile-time failure; `needle` is text to look for in the PRQL source for a span. */
export class UnsupportedError extends Error {
  constructor(message: string, readonly needle?: string, readonly hints: string[] = []) {
    super(message);
  }
}

/** The rows a pipeline step sees: a row count and the columns by id. */
export interface Frame {
  n: number;
  cols: Map<CId, Column>;
}

/** The static type of a column id or expression; "null" is the type of a bare `null`. */
export interface ColType {
  kind: Kind | "null";
  type: arrow.DataType | null;
}

export interface CompiledExpr extends ColType {
  eval(frame: Frame): Column;
  /**
   * Set when `eval` returns a column nobody else holds (an operator's own output): its
   * parent may then write its result over it instead of allocating another (a 10M-row
   * float column is 80 MB whose first touch costs more than the arithmetic).
   */
  fresh?: boolean;
}

/** `c`'s values when its holder may overwrite them with `n` rows of the same class. */
function reusable<T extends NumArray>(
  e: CompiledExpr,
  c: Column,
  n: number,
  cls: new (n: number) => T,
): T | null {
  return e.fresh && !c.scalar && c.nums instanceof cls && c.nums.length === n ? c.nums : null;
}

export type TypeEnv = Map<CId, ColType>;

const NUMERIC = new Set(["int", "float"]);

function kindName(k: Kind | "null"): string {
  return `\`${k}\``;
}

/** The type both `a` and `b` widen to, as DuckDB does for CASE, COALESCE and comparisons. */
export function unify(a: Kind | "null", b: Kind | "null", what: string): Kind | "null" {
  if (a === "null") return b;
  if (b === "null" || a === b) return a;
  if (NUMERIC.has(a) && NUMERIC.has(b)) return "float";
  if ((a === "date" && b === "timestamp") || (a === "timestamp" && b === "date")) {
    return "timestamp";
  }
  throw new UnsupportedError(`${what} mixes ${kindName(a)} and ${kindName(b)}`);
}

/** A column of `kind` with `n` rows, values left for the kernel to fill. */
function output(kind: Kind, n: number, withNulls: boolean): Column {
  return {
    kind,
    type: defaultType(kind),
    scalar: false,
    nums: kind === "text" ? null : kind === "bool" ? new Uint8Array(n) : new Float64Array(n),
    strs: kind === "text" ? new Array<string | null>(n) : null,
    valid: withNulls ? new Uint8Array(n) : null,
  };
}

/** Converts a date column to timestamps so that it compares with timestamps as DuckDB does. */
function asTimestamp(c: Column, n: number): Column {
  if (c.kind !== "date") return c;
  const len = c.scalar ? 1 : n;
  const out = new Float64Array(len);
  for (let i = 0; i < len; i++) out[i] = c.nums![i] * 86_400_000_000;
  return { ...c, kind: "timestamp", type: defaultType("timestamp"), nums: out };
}

/** Validity of a two-argument result: valid where both are (null when every row is). */
function bothValid(a: Column, b: Column, n: number): Uint8Array | null {
  if (!a.valid && !b.valid) return null;
  const out = new Uint8Array(n);
  const av = a.valid, bv = b.valid, as = a.scalar ? 0 : 1, bs = b.scalar ? 0 : 1;
  for (let i = 0; i < n; i++) out[i] = (av ? av[i * as] : 1) & (bv ? bv[i * bs] : 1);
  return out;
}

const enum Arith {
  Add,
  Sub,
  Mul,
  DivF,
  DivI,
  Mod,
}

function arith(
  op: Arith,
  kind: Kind,
  a: Column,
  b: Column,
  n: number,
  into: Float64Array | null,
): Column {
  const out: Column = into
    ? { kind, type: defaultType(kind), scalar: false, nums: into, strs: null, valid: null }
    : output(kind, n, false);
  // DuckDB divides floats as IEEE does (x / 0 is ±inf, 0 / 0 NaN, and `//` is TRUNC of `/`);
  // only an integer `%` by zero is NULL.
  const intMod = op === Arith.Mod && kind === "int";
  const valid = bothValid(a, b, n) ?? (intMod ? new Uint8Array(n).fill(1) : null);
  const x = a.nums!, y = b.nums!, r = out.nums as Float64Array;
  const as = a.scalar ? 0 : 1, bs = b.scalar ? 0 : 1;
  switch (op) {
    case Arith.Add:
      for (let i = 0; i < n; i++) r[i] = x[i * as] + y[i * bs];
      break;
    case Arith.Sub:
      for (let i = 0; i < n; i++) r[i] = x[i * as] - y[i * bs];
      break;
    case Arith.Mul:
      for (let i = 0; i < n; i++) r[i] = x[i * as] * y[i * bs];
      break;
    case Arith.DivF:
      for (let i = 0; i < n; i++) r[i] = x[i * as] / y[i * bs];
      break;
    case Arith.DivI:
      for (let i = 0; i < n; i++) r[i] = Math.trunc(x[i * as] / y[i * bs]);
      break;
    case Arith.Mod:
      for (let i = 0; i < n; i++) {
        const d = y[i * bs];
        if (d === 0 && intMod) valid![i] = 0;
        else r[i] = x[i * as] % d;
      }
      break;
  }
  out.valid = valid;
  return out;
}

const enum Cmp {
  Eq,
  Ne,
  Lt,
  Lte,
  Gt,
  Gte,
}

/** Whether `a op b` holds in SQL order, where NaN equals NaN and is greater than any number. */
function holdsWithNaN(op: Cmp, a: number, b: number): boolean {
  const c = a !== a ? (b !== b ? 0 : 1) : b !== b ? -1 : a < b ? -1 : a > b ? 1 : 0;
  return op === Cmp.Eq
    ? c === 0
    : op === Cmp.Ne
    ? c !== 0
    : op === Cmp.Lt
    ? c < 0
    : op === Cmp.Lte
    ? c <= 0
    : op === Cmp.Gt
    ? c > 0
    : c >= 0;
}

/** A column against a constant that is not NaN: one loop, NaN rows decided inline. */
function compareToConstant(op: Cmp, x: NumArray, c: number, r: Uint8Array, n: number): void {
  // NaN is greater than any constant: `>`, `>=` and `!=` hold for it, the others do not
  // (JS agrees except for `>` and `>=`). `+(cond)` compiles without a branch, where
  // `cond ? 1 : 0` costs a misprediction per row on unsorted data (4-5x slower).
  switch (op) {
    case Cmp.Eq:
      for (let i = 0; i < n; i++) r[i] = +(x[i] === c);
      break;
    case Cmp.Ne:
      for (let i = 0; i < n; i++) r[i] = +(x[i] !== c);
      break;
    case Cmp.Lt:
      for (let i = 0; i < n; i++) r[i] = +(x[i] < c);
      break;
    case Cmp.Lte:
      for (let i = 0; i < n; i++) r[i] = +(x[i] <= c);
      break;
    // `!(v <= c)` is `v > c || v is NaN` in one comparison (every comparison with NaN fails).
    case Cmp.Gt:
      for (let i = 0; i < n; i++) r[i] = +!(x[i] <= c);
      break;
    case Cmp.Gte:
      for (let i = 0; i < n; i++) r[i] = +!(x[i] < c);
      break;
  }
}

const FLIPPED = [Cmp.Eq, Cmp.Ne, Cmp.Gt, Cmp.Gte, Cmp.Lt, Cmp.Lte];

function compareNums(op: Cmp, a: Column, b: Column, n: number): Column {
  const out = output("bool", n, false);
  const x = a.nums!, y = b.nums!, r = out.nums as Uint8Array;
  const as = a.scalar ? 0 : 1, bs = b.scalar ? 0 : 1;
  if (as !== bs && (bs === 0 ? y[0] === y[0] : x[0] === x[0])) {
    // `c < x` is `x > c`: the constant always goes to the right.
    if (bs === 0) compareToConstant(op, x, y[0], r, n);
    else compareToConstant(FLIPPED[op], y, x[0], r, n);
    out.valid = bothValid(a, b, n);
    return out;
  }
  switch (op) {
    case Cmp.Eq:
      for (let i = 0; i < n; i++) r[i] = +(x[i * as] === y[i * bs]);
      break;
    case Cmp.Ne:
      for (let i = 0; i < n; i++) r[i] = +(x[i * as] !== y[i * bs]);
      break;
    case Cmp.Lt:
      for (let i = 0; i < n; i++) r[i] = +(x[i * as] < y[i * bs]);
      break;
    case Cmp.Lte:
      for (let i = 0; i < n; i++) r[i] = +(x[i * as] <= y[i * bs]);
      break;
    case Cmp.Gt:
      for (let i = 0; i < n; i++) r[i] = +(x[i * as] > y[i * bs]);
      break;
    case Cmp.Gte:
      for (let i = 0; i < n; i++) r[i] = +(x[i * as] >= y[i * bs]);
      break;
  }
  // Only float arrays can hold NaN; their rows are redone in DuckDB's order.
  if (a.kind === "float" || b.kind === "float") {
    for (let i = 0; i < n; i++) {
      const p = x[i * as], q = y[i * bs];
      if (p !== p || q !== q) r[i] = holdsWithNaN(op, p, q) ? 1 : 0;
    }
  }
  out.valid = bothValid(a, b, n);
  return out;
}

function compareStrs(op: Cmp, a: Column, b: Column, n: number): Column {
  const out = output("bool", n, false);
  const r = out.nums as Uint8Array;
  const x = utf8Of(a), y = utf8Of(b);
  const xo = x.offsets, xb = x.bytes, yo = y.offsets, yb = y.bytes;
  const as = a.scalar ? 0 : 1, bs = b.scalar ? 0 : 1;
  const valid = bothValid(a, b, n);
  const eq = op === Cmp.Eq || op === Cmp.Ne;
  for (let i = 0; i < n; i++) {
    if (valid && !valid[i]) continue;
    const p = i * as, q = i * bs;
    if (eq) {
      const same = compareBytes(xb, xo[p], xo[p + 1], yb, yo[q], yo[q + 1]) === 0;
      r[i] = same === (op === Cmp.Eq) ? 1 : 0;
      continue;
    }
    const c = compareBytes(xb, xo[p], xo[p + 1], yb, yo[q], yo[q + 1]);
    r[i] = (op === Cmp.Lt ? c < 0 : op === Cmp.Lte ? c <= 0 : op === Cmp.Gt ? c > 0 : c >= 0)
      ? 1
      : 0;
  }
  out.valid = valid;
  return out;
}

/** `x IS NULL` (or IS NOT NULL): what PRQL's `== null` compiles to. */
function isNull(c: Column, n: number, negate: boolean): Column {
  const out = output("bool", n, false);
  const r = out.nums as Uint8Array;
  const v = c.valid, s = c.scalar ? 0 : 1;
  for (let i = 0; i < n; i++) r[i] = ((v ? v[i * s] : 1) ? 0 : 1) ^ (negate ? 1 : 0);
  return out;
}

/** SQL AND/OR: false (or true) wins over NULL. */
function logic(isAnd: boolean, a: Column, b: Column, n: number, into: Uint8Array | null): Column {
  const out: Column = into
    ? {
      kind: "bool",
      type: defaultType("bool"),
      scalar: false,
      nums: into,
      strs: null,
      valid: null,
    }
    : output("bool", n, false);
  const x = a.nums!, y = b.nums!, r = out.nums as Uint8Array;
  const av = a.valid, bv = b.valid, as = a.scalar ? 0 : 1, bs = b.scalar ? 0 : 1;
  const valid = av || bv ? new Uint8Array(n) : null;
  for (let i = 0; i < n; i++) {
    const p = x[i * as], q = y[i * bs];
    const pv = av ? av[i * as] : 1, qv = bv ? bv[i * bs] : 1;
    if (isAnd) {
      r[i] = p & q & pv & qv;
      if (valid) valid[i] = (pv & qv) | (pv & (p ^ 1)) | (qv & (q ^ 1));
    } else {
      r[i] = (p & pv) | (q & qv);
      if (valid) valid[i] = (pv & qv) | r[i];
    }
  }
  out.valid = valid;
  return out;
}

function mapUnary(c: Column, n: number, kind: Kind, f: (x: number) => number): Column {
  const out = output(kind, n, false);
  const x = c.nums!, r = out.nums!, s = c.scalar ? 0 : 1;
  for (let i = 0; i < n; i++) r[i] = f(x[i * s]);
  out.valid = c.valid ? (c.scalar ? new Uint8Array(n).fill(c.valid[0]) : c.valid) : null;
  return out;
}

function mapText<T extends string | number | boolean>(
  c: Column,
  n: number,
  kind: Kind,
  f: (s: string) => T,
): Column {
  const out = output(kind, n, c.valid !== null);
  const x = texts(c), s = c.scalar ? 0 : 1;
  for (let i = 0; i < n; i++) {
    const v = x[i * s];
    if (v === null) continue;
    if (out.valid) out.valid[i] = 1;
    const r = f(v);
    if (kind === "text") out.strs![i] = r as string;
    else out.nums![i] = Number(r);
  }
  return out;
}

/** A SQL LIKE pattern (`%`, `_`, no escape character) as an anchored RegExp. */
function likeRegExp(pattern: string): RegExp {
  let src = "";
  for (const ch of pattern) {
    if (ch === "%") src += "[\\s\\S]*";
    else if (ch === "_") src += "[\\s\\S]";
    else src += ch.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${src}$`, "u");
}

/** A text predicate compiled by prql-js to LIKE: `prefix` and `suffix` wrap the pattern. */
function like(pat: Column, subject: Column, n: number, prefix: string, suffix: string): Column {
  const out = output("bool", n, false);
  out.valid = bothValid(pat, subject, n);
  const ps = pat.scalar ? 0 : 1, ss = subject.scalar ? 0 : 1;
  let cached: RegExp | null = null;
  const pats = texts(pat), subjects = texts(subject);
  for (let i = 0; i < n; i++) {
    const p = pats[i * ps], s = subjects[i * ss];
    if (p === null || s === null) continue;
    const re: RegExp = ps === 0 && cached ? cached : likeRegExp(prefix + p + suffix);
    cached = re;
    out.nums![i] = re.test(s) ? 1 : 0;
  }
  return out;
}

function codePointLength(s: string): number {
  let len = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) len--;
  }
  return len;
}

function parseDate(text: string): number {
  const ms = Date.parse(`${text}T00:00:00Z`);
  if (Number.isNaN(ms)) throw new UnsupportedError(`invalid date literal \`@${text}\``, text);
  return ms / 86_400_000;
}

function parseTimestamp(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$/.exec(text);
  if (!m) {
    throw new UnsupportedError(
      `timestamp literal \`@${text}\` is not supported (time zones are not)`,
      text,
    );
  }
  const days = parseDate(m[1]);
  const frac = Number((m[5] ?? "").padEnd(6, "0"));
  return ((days * 24 + Number(m[2])) * 60 + Number(m[3])) * 60e6 + Number(m[4] ?? 0) * 1e6 +
    frac;
}

function literal(lit: Literal): CompiledExpr {
  const tag = tagOf(lit as object | string);
  // deno-lint-ignore no-explicit-any
  const v = (lit as any)[tag];
  let col: Column;
  switch (tag) {
    case "Null":
      col = scalarColumn("int", null);
      return { kind: "null", type: null, eval: () => col };
    case "Integer":
      col = scalarColumn("int", v);
      break;
    case "Float":
      col = scalarColumn("float", v);
      break;
    case "Boolean":
      col = scalarColumn("bool", v ? 1 : 0);
      break;
    case "String":
      col = scalarColumn("text", v);
      break;
    case "Date":
      col = scalarColumn("date", parseDate(v));
      break;
    case "Timestamp":
      col = scalarColumn("timestamp", parseTimestamp(v));
      break;
    default:
      throw new UnsupportedError(`${tag} literals are not supported by the PRQL engine`);
  }
  return { kind: col.kind, type: col.type, eval: () => col };
}

/** Gives a typeless `null` the kind of its context, so kernels see a typed NULL. */
function typed(e: CompiledExpr, kind: Kind): CompiledExpr {
  if (e.kind !== "null") return e;
  const col = scalarColumn(kind, null);
  return { kind, type: col.type, eval: () => col };
}

function isNullLiteral(e: Expr): boolean {
  const k = e.kind as { Literal?: Literal };
  return k.Literal === "Null";
}

function requireKind(e: CompiledExpr, kinds: Kind[], op: string): void {
  if (e.kind !== "null" && !kinds.includes(e.kind)) {
    throw new UnsupportedError(
      `\`${op}\` expects ${kinds.map(kindName).join(" or ")}, found ${kindName(e.kind)}`,
      op,
    );
  }
}

type OperatorRule = (args: CompiledExpr[], raw: Expr[]) => CompiledExpr;

function arithRule(op: Arith, name: string): OperatorRule {
  return ([a, b]) => {
    requireKind(a, ["int", "float"], name);
    requireKind(b, ["int", "float"], name);
    const kind: Kind = op === Arith.DivF || op === Arith.DivI
      ? "float" // DuckDB: `/` is float division and prql-js writes `//` as TRUNC(a / b).
      : a.kind === "float" || b.kind === "float"
      ? "float"
      : "int";
    const ta = typed(a, kind), tb = typed(b, kind);
    return {
      kind,
      type: defaultType(kind),
      fresh: true,
      eval: (f) => {
        // Row i of the result only reads row i of each side: it may overwrite either.
        const x = ta.eval(f), y = tb.eval(f);
        const into = reusable(ta, x, f.n, Float64Array) ?? reusable(tb, y, f.n, Float64Array);
        return arith(op, kind, x, y, f.n, into);
      },
    };
  };
}

function cmpRule(op: Cmp, name: string): OperatorRule {
  return ([a, b], raw) => {
    if (op === Cmp.Eq || op === Cmp.Ne) {
      const nullSide = isNullLiteral(raw[1]) ? a : isNullLiteral(raw[0]) ? b : null;
      if (nullSide) {
        return {
          kind: "bool",
          type: defaultType("bool"),
          eval: (f) => isNull(nullSide.eval(f), f.n, op === Cmp.Ne),
        };
      }
    }
    const kind = unify(a.kind, b.kind, `\`${name}\``);
    if (kind === "null") return typed(literal("Null"), "bool");
    if (op !== Cmp.Eq && op !== Cmp.Ne && kind === "bool") {
      throw new UnsupportedError(`\`${name}\` on booleans is not supported`, name);
    }
    const ta = typed(a, kind), tb = typed(b, kind);
    return {
      kind: "bool",
      type: defaultType("bool"),
      eval: (f) => {
        let x = ta.eval(f), y = tb.eval(f);
        if (kind === "text") return compareStrs(op, x, y, f.n);
        if (kind === "timestamp") (x = asTimestamp(x, f.n)), (y = asTimestamp(y, f.n));
        return compareNums(op, x, y, f.n);
      },
    };
  };
}

function logicRule(isAnd: boolean): OperatorRule {
  return ([a, b]) => {
    const name = isAnd ? "&&" : "||";
    requireKind(a, ["bool"], name);
    requireKind(b, ["bool"], name);
    const ta = typed(a, "bool"), tb = typed(b, "bool");
    return {
      kind: "bool",
      type: defaultType("bool"),
      fresh: true,
      eval: (f) => {
        const x = ta.eval(f), y = tb.eval(f);
        const into = reusable(ta, x, f.n, Uint8Array) ?? reusable(tb, y, f.n, Uint8Array);
        return logic(isAnd, x, y, f.n, into);
      },
    };
  };
}

function likeRule(name: string, prefix: string, suffix: string): OperatorRule {
  return ([pat, subject]) => {
    requireKind(pat, ["text"], name);
    requireKind(subject, ["text"], name);
    const tp = typed(pat, "text"), ts = typed(subject, "text");
    return {
      kind: "bool",
      type: defaultType("bool"),
      eval: (f) => like(tp.eval(f), ts.eval(f), f.n, prefix, suffix),
    };
  };
}

function textRule<T extends string | number | boolean>(
  name: string,
  kind: Kind,
  fn: (s: string) => T,
): OperatorRule {
  return ([a]) => {
    requireKind(a, ["text"], name);
    const t = typed(a, "text");
    return { kind, type: defaultType(kind), eval: (f) => mapText(t.eval(f), f.n, kind, fn) };
  };
}

function numericUnary(name: string, fn: (x: number) => number, keepKind: boolean): OperatorRule {
  return ([a]) => {
    requireKind(a, ["int", "float"], name);
    const kind: Kind = keepKind && a.kind !== "null" ? a.kind as Kind : "float";
    const t = typed(a, kind);
    return {
      kind,
      type: defaultType(kind),
      eval: (f) => mapUnary(t.eval(f), f.n, kind, fn),
    };
  };
}

/** Text that arguments of CONCAT turn into; floats are refused since DuckDB prints them its way. */
function concatRule(): OperatorRule {
  return (args) => {
    for (const a of args) requireKind(a, ["text", "int"], "concat (f-string)");
    return {
      kind: "text",
      type: defaultType("text"),
      eval: (f) => {
        const cols = args.map((a) => a.eval(f));
        const out = output("text", f.n, false);
        for (let i = 0; i < f.n; i++) {
          let s = "";
          for (const c of cols) {
            const j = c.scalar ? 0 : i;
            if (c.valid && !c.valid[j]) continue; // DuckDB's CONCAT skips NULLs.
            s += c.kind === "text" ? texts(c)[j] : String(c.nums![j]);
          }
          out.strs![i] = s;
        }
        return out;
      },
    };
  };
}

/** DuckDB's ROUND: half away from zero; on integers it keeps the integer. */
function roundRule(): OperatorRule {
  return ([, x], raw) => {
    requireKind(x, ["int", "float"], "math.round");
    const lit = (raw[0].kind as { Literal?: { Integer?: number } }).Literal?.Integer;
    if (lit === undefined || lit < 0) {
      throw new UnsupportedError("`math.round` needs a non-negative integer literal", "round");
    }
    const scale = 10 ** lit;
    const away = (v: number) => Math.sign(v) * Math.round(Math.abs(v) * scale) / scale;
    return numericUnary("math.round", away, true)([x], raw);
  };
}

const OPERATORS: Record<string, OperatorRule> = {
  "std.add": arithRule(Arith.Add, "+"),
  "std.sub": arithRule(Arith.Sub, "-"),
  "std.mul": arithRule(Arith.Mul, "*"),
  "std.div_f": arithRule(Arith.DivF, "/"),
  "std.div_i": arithRule(Arith.DivI, "//"),
  "std.mod": arithRule(Arith.Mod, "%"),
  "std.eq": cmpRule(Cmp.Eq, "=="),
  "std.ne": cmpRule(Cmp.Ne, "!="),
  "std.lt": cmpRule(Cmp.Lt, "<"),
  "std.lte": cmpRule(Cmp.Lte, "<="),
  "std.gt": cmpRule(Cmp.Gt, ">"),
  "std.gte": cmpRule(Cmp.Gte, ">="),
  "std.and": logicRule(true),
  "std.or": logicRule(false),
  "std.not": ([a]) => {
    requireKind(a, ["bool"], "!");
    const t = typed(a, "bool");
    return {
      kind: "bool",
      type: defaultType("bool"),
      eval: (f) => mapUnary(t.eval(f), f.n, "bool", (x) => x ^ 1),
    };
  },
  "std.neg": numericUnary("-", (x) => -x, true),
  "std.math.abs": numericUnary("math.abs", Math.abs, true),
  "std.math.round": roundRule(),
  "std.math.floor": numericUnary("math.floor", Math.floor, true),
  "std.math.ceil": numericUnary("math.ceil", Math.ceil, true),
  "std.coalesce": ([a, b]) => {
    const kind = unify(a.kind, b.kind, "`??`");
    if (kind === "null") return a;
    const ta = typed(a, kind), tb = typed(b, kind);
    return { kind, type: defaultType(kind), eval: (f) => coalesce(ta.eval(f), tb.eval(f), f.n) };
  },
  "std.concat": concatRule(),
  "std.text.lower": textRule("text.lower", "text", lower),
  "std.text.upper": textRule("text.upper", "text", upper),
  "std.text.length": textRule("text.length", "int", codePointLength),
  "std.text.trim": textRule("text.trim", "text", (s) => s.replace(/^ +| +$/g, "")),
  "std.text.ltrim": textRule("text.ltrim", "text", (s) => s.replace(/^ +/, "")),
  "std.text.rtrim": textRule("text.rtrim", "text", (s) => s.replace(/ +$/, "")),
  "std.text.starts_with": likeRule("text.starts_with", "", "%"),
  "std.text.ends_with": likeRule("text.ends_with", "%", ""),
  "std.text.contains": likeRule("text.contains", "%", "%"),
  "std.text.replace": ([from, to, subject]) => {
    for (const a of [from, to, subject]) requireKind(a, ["text"], "text.replace");
    const tf = typed(from, "text"), tt = typed(to, "text"), ts = typed(subject, "text");
    return {
      kind: "text",
      type: defaultType("text"),
      eval: (f) => {
        const a = tf.eval(f), b = tt.eval(f), s = ts.eval(f);
        const valid = bothValid(bothColumn(a, b, f.n), s, f.n);
        const out = output("text", f.n, false);
        out.valid = valid;
        for (let i = 0; i < f.n; i++) {
          const x = texts(a)[a.scalar ? 0 : i], y = texts(b)[b.scalar ? 0 : i];
          const z = texts(s)[s.scalar ? 0 : i];
          out.strs![i] = x === null || y === null || z === null ? null : z.replaceAll(x, y);
        }
        return out;
      },
    };
  },
  "std.array_in": ([a], raw) => {
    const items = (raw[1].kind as { Array?: Expr[] }).Array;
    if (!items) throw new UnsupportedError("`in` needs a literal array", "in");
    const elems = items.map((e) => {
      if (tagOf(e.kind) !== "Literal") {
        throw new UnsupportedError("`in` supports only literal arrays", "in");
      }
      return literal((e.kind as { Literal: Literal }).Literal);
    });
    let kind = a.kind;
    for (const e of elems) kind = unify(kind, e.kind, "`in`");
    if (kind === "null") return typed(literal("Null"), "bool");
    const ta = typed(a, kind);
    const values = elems.filter((e) => e.kind !== "null").map((e) => typed(e, kind as Kind));
    const hasNull = elems.some((e) => e.kind === "null");
    return {
      kind: "bool",
      type: defaultType("bool"),
      eval: (f) => inList(ta.eval(f), values.map((v) => v.eval(f)), hasNull, f.n),
    };
  },
  "std.regex_search": ([s], raw) => {
    requireKind(s, ["text"], "~=");
    const pat = (raw[1].kind as { Literal?: { String?: string } }).Literal?.String;
    if (pat === undefined) {
      throw new UnsupportedError("`~=` needs a literal pattern", "~=");
    }
    const re = new RegExp(pat, "u");
    return textRule("~=", "bool", (x) => re.test(x))([s], raw);
  },
};

function bothColumn(a: Column, b: Column, n: number): Column {
  return { ...a, scalar: false, valid: bothValid(a, b, n) ?? null, nums: null };
}

function coalesce(a: Column, b: Column, n: number): Column {
  if (!a.valid) return a;
  const out = output(a.kind, n, b.valid !== null);
  const as = a.scalar ? 0 : 1, bs = b.scalar ? 0 : 1;
  for (let i = 0; i < n; i++) {
    const useA = a.valid[i * as] === 1;
    const src = useA ? a : b, j = useA ? i * as : i * bs;
    if (out.valid) out.valid[i] = src.valid ? src.valid[j] : 1;
    if (out.strs) out.strs[i] = texts(src)[j];
    else out.nums![i] = src.nums![j];
  }
  return out;
}

function inList(a: Column, values: Column[], hasNull: boolean, n: number): Column {
  const out = output("bool", n, false);
  const valid = new Uint8Array(n);
  const s = a.scalar ? 0 : 1;
  const strs = a.kind === "text" ? texts(a) : null;
  const set = new Set<number | string | null>(
    values.map((v) => (v.kind === "text" ? texts(v)[0] : asTimestampValue(v, a))),
  );
  for (let i = 0; i < n; i++) {
    if (a.valid && !a.valid[i * s]) continue;
    const x = strs ? strs[i * s] : a.nums![i * s];
    const hit = set.has(x);
    out.nums![i] = hit ? 1 : 0;
    valid[i] = hit || !hasNull ? 1 : 0; // x IN (..., NULL) is NULL unless x matched.
  }
  out.valid = valid;
  return out;
}

function asTimestampValue(v: Column, target: Column): number {
  const x = v.nums![0];
  return v.kind === "date" && target.kind === "timestamp" ? x * 86_400_000_000 : x;
}

function caseExpr(cases: { cond: CompiledExpr; value: CompiledExpr }[], kind: Kind): CompiledExpr {
  return {
    kind,
    type: defaultType(kind),
    eval: (f) => {
      const n = f.n;
      const out = output(kind, n, true);
      const done = new Uint8Array(n);
      for (const { cond, value } of cases) {
        const c = cond.eval(f);
        let v = value.eval(f);
        if (kind === "timestamp") v = asTimestamp(v, n);
        const cs = c.scalar ? 0 : 1, vs = v.scalar ? 0 : 1;
        for (let i = 0; i < n; i++) {
          if (done[i] || !c.nums![i * cs] || (c.valid && !c.valid[i * cs])) continue;
          done[i] = 1;
          out.valid![i] = v.valid ? v.valid[i * vs] : 1;
          if (out.strs) out.strs[i] = texts(v)[i * vs];
          else out.nums![i] = v.nums![i * vs];
        }
      }
      return out;
    },
  };
}

/** Compiles one RQ expression against the types of the columns in scope. */
export function compileExpr(expr: Expr, env: TypeEnv): CompiledExpr {
  const tag = tagOf(expr.kind);
  // deno-lint-ignore no-explicit-any
  const body = (expr.kind as any)[tag];
  switch (tag) {
    case "ColumnRef": {
      const t = env.get(body as CId);
      if (!t) throw new UnsupportedError(`internal: column ${body} is not in scope`);
      return {
        ...t,
        eval: (f) => {
          const c = f.cols.get(body as CId);
          if (!c) throw new Error(`internal: column ${body} was not computed`);
          return c;
        },
      };
    }
    case "Literal":
      return literal(body as Literal);
    case "Operator": {
      const { name, args } = body as { name: string; args: Expr[] };
      const rule = OPERATORS[name];
      if (!rule) {
        const short = name.replace(/^std\./, "");
        throw new UnsupportedError(
          `\`${short}\` is not supported by the PRQL engine`,
          short.split(".").pop(),
          [`supported functions: ${supportedFunctions().join(", ")}`],
        );
      }
      // Arrays only appear as operands that rules read raw (`in [...]`).
      const compiled = args.map((a) =>
        tagOf(a.kind) === "Array" ? literal("Null") : compileExpr(a, env)
      );
      return rule(compiled, args);
    }
    case "Case": {
      const cases = (body as { condition: Expr; value: Expr }[]).map((c) => ({
        cond: compileExpr(c.condition, env),
        value: compileExpr(c.value, env),
      }));
      let kind: Kind | "null" = "null";
      for (const c of cases) {
        requireKind(c.cond, ["bool"], "case");
        kind = unify(kind, c.value.kind, "`case`");
      }
      const k: Kind = kind === "null" ? "int" : kind;
      return caseExpr(cases.map((c) => ({ cond: c.cond, value: typed(c.value, k) })), k);
    }
    case "SString":
      throw new UnsupportedError(
        "s-strings (raw SQL) are not supported by the PRQL engine",
        's"',
        ["use PRQL functions instead"],
      );
    case "Param":
      throw new UnsupportedError(`query parameters (\`$${body}\`) are not supported`, "$");
    default:
      throw new UnsupportedError(`${tag} expressions are not supported by the PRQL engine`);
  }
}

/** Names of the functions and operators the engine supports, for hints and docs. */
export function supportedFunctions(): string[] {
  return Object.keys(OPERATORS).map((k) => k.replace(/^std\./, ""));
}
