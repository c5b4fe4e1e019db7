/**
 * Types an inline PRQL block through prql-js: its own compiler reports PRQL mistakes (with
 * spans we map into the `.he` file), and its RQ (relational query) JSON tells which columns
 * the block reads from `input` and from joined steps and which it produces. This file walks
 * RQ; it must never execute a query.
 */
import { primitive } from "../modules/mod.ts";
import { constrain, known, Row, type Site, TypeVar, unify } from "./_row.ts";
import type { Span } from "../diagnostics/_types.ts";
import { lowerPrql, type Rq } from "./_prql_lower.ts";
import { didYouMean } from "../resolve/mod.ts";

/** A problem inside the block, with its span relative to the block text. */
export interface PrqlProblem {
  kind: "prql" | "crash" | "type" | "missing-column" | "unknown-table" | "join-key";
  message: string;
  at: { start: number; end: number };
  /** A second place (absolute span) that explains it. */
  other?: Site;
  hints: string[];
}

export interface PrqlJoin {
  /** The step joined (`join fetch_user_data (==user_id)`). */
  step: string;
  side: string;
  /** Pairs of equal columns: left (the rows flowing in) and right (the step's output). */
  keys: Array<[string, string]>;
  /** The row flowing in at the join: where the step's `@params` must come from. */
  left: Row;
}

export interface PrqlTyping {
  output: Row | null;
  joins: PrqlJoin[];
  /** Columns read by name from `input`; `*` when the block keeps all of them. */
  inputColumns: string[];
  /** Each column read from `input` (absolute span), and whether an open row grew by it. */
  reads: Array<{ name: string; at: Span; grows: boolean }>;
  problems: PrqlProblem[];
}

interface Col {
  name: string | null;
  type: TypeVar;
  /** Set for a wildcard column: all remaining fields of that row. */
  wildcard?: Row;
}

const TRANSFORM = /\s+(?=(?:filter|select|derive|sort|take|group|aggregate|join|window|append)\b)/g;

/**
 * prql-js reads `from input filter x > 1` on one line as one call with too many arguments.
 * When a one-line block without `|` fails so, the problem says what PRQL needs instead.
 */
function oneLine(text: string, reason: string): PrqlProblem | null {
  const line = text.trim();
  const fn = /^Too many arguments to function `(\w+)`/.exec(reason)?.[1];
  const split = line.replace(TRANSFORM, " | ");
  if (!fn || line.includes("\n") || line.includes("|") || split === line) return null;
  const start = text.indexOf(line);
  return {
    kind: "prql",
    message: `transforms on one line need \`|\` between them (\`${fn}\` was given the rest)`,
    at: { start, end: start + line.length },
    hints: [`PRQL needs a line break or \`|\` between transforms: \`${split}\``],
  };
}

/**
 * The deepest bracket nesting in PRQL text (strings and comments included: it only words a
 * hint) and the outermost brackets around its first deepest point, to point at.
 */
function deepestNest(text: string): { depth: number; at: { start: number; end: number } } {
  const open: number[] = [];
  let depth = 0;
  let at = { start: 0, end: text.length };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "(" || c === "[" || c === "{") {
      open.push(i);
      if (open.length > depth) {
        depth = open.length;
        at = { start: open[0], end: text.length };
      }
    } else if ((c === ")" || c === "]" || c === "}") && open.pop() === at.start) at.end = i + 1;
  }
  return { depth, at };
}

/**
 * Finds `word` as a whole word in `text`, preferring the occurrence after `after`. A scan, not
 * a regular expression built from the word: a name can be any length.
 */
export function locate(text: string, word: string, after = 0): { start: number; end: number } {
  const w = word.replace(/[^\w]/g, "");
  const isWord = (i: number) => i >= 0 && i < text.length && /\w/.test(text[i]);
  let first: number | null = null;
  for (let i = w ? text.indexOf(w) : -1; i >= 0; i = text.indexOf(w, i + 1)) {
    if (isWord(i - 1) || isWord(i + w.length)) continue;
    first ??= i;
    if (i >= after) return { start: i, end: i + word.length };
  }
  return first === null ? { start: 0, end: 0 } : { start: first, end: first + word.length };
}

export function typePrql(
  text: string,
  textSpan: Span,
  input: Row,
  joinTarget: (name: string) => Row | null,
): PrqlTyping {
  const out: PrqlTyping = { output: null, joins: [], inputColumns: [], reads: [], problems: [] };
  const compiled = lowerPrql(text);
  if ("crash" in compiled) {
    const { depth, at } = deepestNest(text);
    out.problems.push({
      kind: "crash",
      message: `the PRQL compiler failed on this block (${compiled.crash})`,
      at: depth > 16 ? at : { start: 0, end: text.length },
      hints: depth > 16
        ? [
          `its brackets nest ${depth} deep; prql-js overflows at about 20: name the inner parts with \`derive\``,
        ]
        : ["simplify the block; other blocks are checked as usual"],
    });
    return out;
  }
  if ("error" in compiled) {
    for (const e of compiled.error) {
      const m = /:(\d+)-(\d+)$/.exec(String(e.span ?? ""));
      const at = m ? { start: Number(m[1]), end: Number(m[2]) } : { start: 0, end: text.length };
      out.problems.push(
        oneLine(text, String(e.reason)) ?? {
          kind: "prql",
          message: String(e.reason ?? "PRQL error"),
          at,
          hints: (e.hints as string[] | undefined) ?? [],
        },
      );
    }
    return out;
  }
  const abs = (at: { start: number; end: number }): Span => ({
    start: textSpan.start + at.start,
    end: textSpan.start + at.end,
  });
  const siteOf = (word: string, note: string, after = 0): Site => ({
    span: abs(locate(text, word, after)),
    note,
  });
  const rq = compiled.rq;
  const tables = new Map<number, { name: string; row: Row | null }>();
  for (const t of rq.tables as Rq[]) {
    const ref = ((t.relation as Rq).kind as Rq).ExternRef as Rq | undefined;
    const name = (ref?.LocalTable as string[] | undefined)?.at(-1) ?? "";
    if (name === "input") tables.set(t.id as number, { name, row: input });
    else {
      const row = joinTarget(name);
      if (!row) {
        out.problems.push({
          kind: "unknown-table",
          message: `\`${name}\` is neither \`input\` nor a declared step`,
          at: locate(text, name),
          hints: ["join a `step` declared at the top of the file"],
        });
      }
      tables.set(t.id as number, { name, row });
    }
  }
  const cols = new Map<number, Col>();
  let current: number[] = [];
  let lastJoinAt = 0;
  const bind = (
    source: number,
    columns: Array<[unknown, number]>,
    after: number,
  ): boolean => {
    const table = tables.get(source)!;
    for (const [c, cid] of columns) {
      if (c === "Wildcard") {
        cols.set(cid, {
          name: null,
          type: new TypeVar(siteOf("from", "")),
          wildcard: table.row ?? undefined,
        });
        continue;
      }
      const name = (c as Rq).Single as string;
      if (table.name === "input") out.inputColumns.push(name);
      const site = siteOf(name, `\`${name}\` used here`, after);
      const grows = table.name === "input" && table.row !== null && !table.row.has(name);
      const v = table.row?.get(name, site) ?? null;
      if (!v && table.row) {
        const known = table.row.known();
        out.problems.push({
          kind: table.name === "input" ? "missing-column" : "join-key",
          message: `\`${table.name}\` has no column \`${name}\``,
          at: locate(text, name, after),
          other: {
            span: table.row.site.span,
            note: `the rows of \`${table.name}\` come from here`,
          },
          hints: [
            ...didYouMean(name, known),
            `available: ${known.map((n) => `\`${n}\``).join(", ") || "none"}`,
          ],
        });
        return false;
      }
      if (table.name === "input") out.reads.push({ name, at: site.span, grows });
      cols.set(cid, { name, type: v ?? new TypeVar(site) });
    }
    return true;
  };
  const conflict = (c: ReturnType<typeof unify>, word: string) => {
    if (!c) return;
    out.problems.push({
      kind: "type",
      message: c.message,
      at: {
        start: c.expected.span.start - textSpan.start,
        end: c.expected.span.end - textSpan.start,
      },
      other: { span: c.found.span, note: "found there" },
      hints: [`\`${word}\` is compared or combined with an incompatible value`],
    });
  };
  const nameOf = (e: Rq): string => {
    const k = e.kind as Rq;
    const ref = k.ColumnRef as number | undefined;
    return ref !== undefined ? cols.get(ref)?.name ?? "expression" : "expression";
  };
  const exprType = (e: Rq): TypeVar => {
    const k = e.kind as Rq;
    const site0 = siteOf("from", "");
    if (k.ColumnRef !== undefined) {
      return cols.get(k.ColumnRef as number)?.type ?? new TypeVar(site0);
    }
    if (k.Literal !== undefined) {
      const lit = k.Literal as Rq | string;
      if (lit === "Null") return new TypeVar(site0);
      const key = Object.keys(lit as Rq)[0];
      const value = String((lit as Rq)[key]);
      const site = siteOf(value, "this literal", lastJoinAt);
      // A number literal fixes only the family: `amount > 10000` must not make `amount` int64.
      if (key === "Integer" || key === "Float") {
        const v = new TypeVar({ ...site, note: "a number here" });
        v.family = "numeric";
        return v;
      }
      if (key === "String") return known(primitive("utf8"), { ...site, note: "a string here" });
      if (key === "Boolean") return known(primitive("bool"), site);
      return new TypeVar(site);
    }
    if (k.Operator !== undefined) {
      const op = k.Operator as Rq;
      const name = String(op.name).replace(/^std\./, "");
      const args = (op.args as Rq[]).map(exprType);
      const argNames = (op.args as Rq[]).map(nameOf);
      if (["eq", "ne", "gt", "gte", "lt", "lte"].includes(name) && args.length === 2) {
        const [a, b] = args;
        const ra = a.root();
        const rb = b.root();
        // The column side is "expected", the literal or other column "found".
        if (ra.type && !rb.type) conflict(unify(b, a), argNames[1]);
        else conflict(unify(a, b), argNames[0]);
        if (["gt", "gte", "lt", "lte"].includes(name)) {
          const fam = a.root().family;
          if (fam === null) {
            conflict(
              constrain(a, "numeric", { span: b.site.span, note: "compared here" }),
              argNames[0],
            );
          }
        }
        return known(primitive("bool"), site0);
      }
      if (["add", "sub", "mul", "div", "mod", "neg"].includes(name)) {
        for (let i = 0; i < args.length; i++) {
          const c = constrain(args[i], "numeric", siteOf(argNames[i], "used in arithmetic here"));
          if (c) conflict({ ...c, expected: { ...c.expected } }, argNames[i]);
        }
        const typed = args.find((a) => a.root().type?.kind === "primitive" && a.root().type);
        if (name === "div") return known(primitive("float64"), site0);
        return typed ?? args[0] ?? new TypeVar(site0);
      }
      if (["and", "or", "not"].includes(name)) {
        args.forEach((a, i) =>
          conflict(constrain(a, "bool", siteOf(argNames[i], "")), argNames[i])
        );
        return known(primitive("bool"), site0);
      }
      if (name === "count" || name === "count_distinct") return known(primitive("int64"), site0);
      if (name === "average") return known(primitive("float64"), site0);
      if (["sum", "min", "max"].includes(name) && args[0]) return args[0];
      if (name === "concat") return known(primitive("utf8"), site0);
    }
    return new TypeVar(site0);
  };

  const pipeline = ((rq.relation as Rq).kind as Rq).Pipeline as Rq[];
  for (const t of pipeline) {
    const [kind, body] = Object.entries(t)[0] as [string, Rq];
    if (kind === "From") {
      if (!bind(body.source as number, body.columns as Array<[unknown, number]>, 0)) return out;
      current = (body.columns as Array<[unknown, number]>).map(([, cid]) => cid);
    } else if (kind === "Compute") {
      cols.set(body.id as number, { name: null, type: exprType(body.expr as Rq) });
    } else if (kind === "Filter") {
      exprType(t.Filter as Rq);
    } else if (kind === "Select") {
      current = t.Select as unknown as number[];
    } else if (kind === "Join") {
      const w = body.with as Rq;
      const table = tables.get(w.source as number)!;
      const joinAt = locate(text, `${table.name}`).start;
      lastJoinAt = joinAt;
      const left = new Row({ span: abs({ start: joinAt, end: joinAt }), note: "" }, false);
      for (const cid of current) {
        const c = cols.get(cid)!;
        if (c.wildcard) left.rest = { row: c.wildcard, exclude: new Set() };
        else if (c.name) left.add(c.name, c.type);
      }
      if (!bind(w.source as number, w.columns as Array<[unknown, number]>, joinAt)) return out;
      const keys: Array<[string, string]> = [];
      const filter = (body.filter as Rq).kind as Rq;
      const op = filter.Operator as Rq | undefined;
      if (op && op.name === "std.eq") {
        const [l, r] = (op.args as Rq[]).map(nameOf);
        keys.push([l, r]);
      }
      exprType(body.filter as Rq);
      out.joins.push({ step: table.name, side: String(body.side), keys, left });
      current = [...current, ...(w.columns as Array<[unknown, number]>).map(([, cid]) => cid)];
    } else if (kind === "Aggregate") {
      current = [...(body.partition as number[]), ...(body.compute as number[])];
    }
  }
  const names = (rq.relation as Rq).columns as unknown[];
  const row = new Row({ span: textSpan, note: "the PRQL block's output" }, false);
  names.forEach((n, i) => {
    const c = cols.get(current[i]);
    if (!c) return;
    if (n === "Wildcard" && c.wildcard) {
      // The first wildcard carries the unknown rest; later ones add what they know.
      if (!row.rest) row.rest = { row: c.wildcard, exclude: new Set() };
      else {
        for (const f of c.wildcard.known()) {
          if (!row.fields.has(f)) row.add(f, c.wildcard.get(f, c.wildcard.site)!);
        }
      }
      return;
    }
    const name = (n as Rq).Single as string | undefined;
    if (name && !row.fields.has(name)) row.add(name, c.type);
  });
  if (row.rest) {
    for (const n of row.order) row.rest.exclude.add(n);
  }
  out.output = row;
  return out;
}
