/**
 * The PRQL engine: compiles an inline PRQL block of a workflow against the Arrow schemas of
 * the relations it may read (`input`, joined steps) and executes it over Arrow tables by
 * interpreting PRQL's RQ representation directly, without SQL text. The SQL that prql-js
 * generates for DuckDB is kept as the reference of the semantics (and for `heddle inspect`);
 * the engine must return exactly what that SQL returns, so whatever it cannot match is a
 * compile-time diagnostic naming the construct, never a different answer. Why an
 * interpreter rather than embedded DuckDB is recorded in docs/prql-engine.md.
 */
import * as arrow from "apache-arrow";
import type { Diagnostic, Result, Span } from "../../compiler/diagnostics/_types.ts";
// prql-js through the compiler's guard: an input that crashes it never poisons this process.
import { lowerDeclared, prqlc } from "../../compiler/mod.ts";
import { type Column, tableOf, toArrow } from "./_column.ts";
import { supportedFunctions, UnsupportedError } from "./_expr.ts";
import { type Partitioned, type Plan, planQuery, type Rows } from "./_plan.ts";
import type { RelationalQuery } from "./_rq.ts";
import { externalPartition, type ExternalPartitionOptions } from "./_partition.ts";
import { type ExternalSort, externalSort, type ExternalSortOptions } from "./_spill.ts";
import { streamAggregate, streamWindow } from "./_spill_stream.ts";
import { resolveSelfJoins } from "./_sugar.ts";

export type { ExternalPartitionOptions, ExternalSort, ExternalSortOptions };

export { supportedFunctions };

/** Diagnostic codes of this module (listed in docs/prql-engine.md). */
export const PRQL_ERROR = "HE0700";
export const PRQL_UNSUPPORTED = "HE0701";

/** A PRQL block compiled against the schemas of its relations, ready to execute. */
export interface CompiledQuery {
  /** The PRQL text as written. */
  readonly text: string;
  /** The SQL prql-js generates for DuckDB: the reference semantics, shown by `heddle inspect`. */
  readonly sql: string;
  readonly outputSchema: arrow.Schema;
  /** Per relation, the columns the query actually reads (for projection pushdown). */
  readonly readColumns: Record<string, string[]>;
  /** Set when the query only selects or renames columns of one relation: execution copies nothing. */
  readonly projectionOf: string | null;
  /** @internal The executable plan. */
  readonly plan: Plan;
}

/** A failure while executing a compiled query on data that does not fit what it was compiled for. */
export class PrqlExecutionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PrqlExecutionError";
  }
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function quoteName(name: string): string {
  return "`" + name.replaceAll("`", "") + "`";
}

/**
 * Declares each relation's columns in front of the query: without them prql-js treats
 * `input` as a table of unknown columns and rejects `join x (==id)` as ambiguous.
 */
function prelude(relations: Record<string, arrow.Schema>): string {
  let text = "prql target:sql.duckdb\n";
  for (const [name, schema] of Object.entries(relations)) {
    if (!IDENT.test(name) || schema.fields.length === 0) continue;
    const cols = schema.fields.map((f) => quoteName(f.name)).join(", ");
    text += `let ${name} = (from default_db.${name} | select {${cols}})\n`;
  }
  return text;
}

interface PrqlMessage {
  reason: string;
  hints?: string[];
  span?: string | null;
}

/** Converts an offset in Unicode scalar values (prql-js's unit) to UTF-16 code units. */
function charToUtf16(text: string, chars: number): number {
  let units = 0, seen = 0;
  for (const ch of text) {
    if (seen++ >= chars) break;
    units += ch.length;
  }
  return units;
}

function diagnostic(code: string, message: string, span: Span, hints: string[]): Diagnostic {
  return { code, severity: "error", message, span, labels: [], hints };
}

function wholeText(text: string): Span {
  return { start: 0, end: text.length };
}

function prqlErrors(err: unknown, text: string, preludeChars: number): Diagnostic[] {
  const raw = err instanceof Error ? err.message : String(err);
  let inner: PrqlMessage[];
  try {
    inner = (JSON.parse(raw) as { inner: PrqlMessage[] }).inner;
  } catch {
    inner = [{ reason: raw }];
  }
  return inner.map((m) => {
    // Resolver errors carry no span; their message names the culprit in backticks.
    let span = findSpan(text, /`([^`]+)`/.exec(m.reason)?.[1]);
    const at = m.span ? /:(\d+)-(\d+)$/.exec(m.span) : null;
    if (at) {
      const s = Number(at[1]) - preludeChars, e = Number(at[2]) - preludeChars;
      if (s >= 0) span = { start: charToUtf16(text, s), end: charToUtf16(text, Math.max(s, e)) };
    }
    return diagnostic(PRQL_ERROR, m.reason, span, m.hints ?? []);
  });
}

/** The span of the first whole-word occurrence of `needle`, or the whole text. */
function findSpan(text: string, needle: string | undefined): Span {
  if (!needle) return wholeText(text);
  const at = text.indexOf(needle);
  return at < 0 ? wholeText(text) : { start: at, end: at + needle.length };
}

/** Rewrites `default_db.x` to `x` so that the SQL reads the relations by their own names. */
function localNames(rq: RelationalQuery): RelationalQuery {
  for (const t of rq.tables) {
    const ext = (t.relation.kind as { ExternRef?: { LocalTable?: string[] } }).ExternRef;
    const path = ext?.LocalTable;
    if (path && path.length === 2 && path[0] === "default_db") path.shift();
  }
  return rq;
}

function outputSchema(plan: Plan): arrow.Schema {
  // Repeated names get DuckDB's suffixes (`user_id`, `user_id_1`), as CREATE TABLE AS does.
  const taken = new Set<string>();
  const fields = plan.columns.map((c, i) => {
    let name = c.name ?? `column_${i}`;
    for (let k = 1; taken.has(name); k++) name = `${c.name ?? `column_${i}`}_${k}`;
    taken.add(name);
    return new arrow.Field(name, c.type, true);
  });
  return new arrow.Schema(fields);
}

/**
 * Compiles a PRQL block. `relations` maps every name the block may read to its schema; the
 * value is null when the block has errors, which are all in the diagnostics.
 */
export function compilePrql(
  text: string,
  relations: Record<string, arrow.Schema>,
): Result<CompiledQuery | null> {
  // The common blocks over `input` are lowered by the compiler to the very RQ prql-js gives
  // behind the prelude: a run of them never loads prql-js (~0.3 s of CPU on first use).
  const input = relations.input;
  const names = (schema: arrow.Schema) => schema.fields.map((f) => f.name);
  const others = Object.fromEntries(
    Object.entries(relations).filter(([k]) => k !== "input").map(([k, v]) => [k, names(v)]),
  );
  const own = input ? lowerDeclared(text, names(input), others) : null;
  let rq: RelationalQuery;
  if (own) rq = localNames(own as unknown as RelationalQuery);
  else {
    const head = prelude(relations);
    let rqText: string;
    try {
      const pl = JSON.parse(prqlc.prqlToPl(head + text));
      resolveSelfJoins(pl, relations);
      rqText = prqlc.plToRq(JSON.stringify(pl));
    } catch (err) {
      return { value: null, diagnostics: prqlErrors(err, text, [...head].length) };
    }
    rq = localNames(JSON.parse(rqText) as RelationalQuery);
  }
  let plan: Plan;
  try {
    plan = planQuery(rq, relations);
  } catch (err) {
    if (!(err instanceof UnsupportedError)) throw err;
    return {
      value: null,
      diagnostics: [
        diagnostic(PRQL_UNSUPPORTED, err.message, findSpan(text, err.needle), err.hints),
      ],
    };
  }
  // The SQL is for `heddle inspect` and the oracle tests; a run never reads it, and prql-js's
  // SQL backend costs about 0.3 s of CPU the first time a process calls it.
  const rqJson = JSON.stringify(rq);
  let sql: string | undefined;
  const readColumns: Record<string, string[]> = {};
  for (const [rel, cols] of plan.reads) readColumns[rel] = [...cols];
  return {
    value: {
      text,
      get sql() {
        return sql ??= prqlc.rqToSql(rqJson).replace(/\n*-- Generated by PRQL.*\n?$/, "\n");
      },
      outputSchema: outputSchema(plan),
      readColumns,
      projectionOf: plan.projection?.relation ?? null,
      plan,
    },
    diagnostics: [],
  };
}

/** Shares the input's column data under the projection's names and order. */
function project(query: CompiledQuery, table: arrow.Table): arrow.Table {
  const fields = query.plan.projection!.fields;
  const schema = query.outputSchema;
  const batches = table.batches.map((b) => {
    const children = fields.map((f) => b.data.children[f]);
    const data = arrow.makeData({
      type: new arrow.Struct(schema.fields),
      length: b.numRows,
      nullCount: 0,
      children,
    });
    return new arrow.RecordBatch(schema, data);
  });
  return new arrow.Table(schema, batches);
}

/**
 * Executes a compiled query over Arrow tables named as at compile time. Throws a
 * PrqlExecutionError when a table is missing or does not match its compiled schema.
 */
export function execute(query: CompiledQuery, relations: Record<string, arrow.Table>): arrow.Table {
  const proj = query.plan.projection;
  if (proj) {
    const table = relations[proj.relation];
    if (!table) throw new PrqlExecutionError(`relation \`${proj.relation}\` was not supplied`);
    return project(query, table);
  }
  const local = query.plan.rowLocal;
  const input = local === null ? undefined : relations[local];
  if (input && input.numRows > SLICE_ROWS) {
    // Slice by slice, each step's columns stay in the CPU's cache instead of streaming the
    // whole input through memory once per step (a 10M-row derive took twice as long).
    const batches: arrow.RecordBatch[] = [];
    for (let at = 0; at < input.numRows; at += SLICE_ROWS) {
      const slice = { ...relations, [local!]: input.slice(at, at + SLICE_ROWS) };
      batches.push(...tableOfRows(query, runPlan(query, slice)).batches);
    }
    return new arrow.Table(query.outputSchema, batches);
  }
  return tableOfRows(query, runPlan(query, relations));
}

/** Rows a row-local query (`Plan.rowLocal`) works on at a time in `execute`. */
const SLICE_ROWS = 65_536;

function runPlan(query: CompiledQuery, relations: Record<string, arrow.Table>): Rows {
  try {
    return query.plan.run(relations);
  } catch (err) {
    throw executionError(err);
  }
}

function tableOfRows(query: CompiledQuery, rows: { n: number; cols: (Column | undefined)[] }) {
  const schema = query.outputSchema;
  const children = rows.cols.map((c, i) => {
    if (!c) throw new PrqlExecutionError(`internal: output column ${i} was not computed`);
    return toArrow({ ...c, type: schema.fields[i].type }, rows.n);
  });
  return tableOf(schema, children, rows.n);
}

/**
 * An external (spilling) sort for a query that filters, derives and selects its input around
 * one sort by columns it outputs (`SortedRun` in _plan.ts), so that a
 * blocking stage can sort more rows than its memory budget; null for any other query. Feed
 * it the input batch by batch, then read the sorted output from `finish()`.
 */
export function externalSortOf(
  query: CompiledQuery,
  options: ExternalSortOptions,
): ExternalSort | null {
  const sorted = query.plan.sortedRun;
  if (!sorted) return null;
  const run = (input: arrow.Table) => execute(query, { [sorted.relation]: input });
  return externalSort(run, sorted, query.outputSchema, options);
}

/**
 * An external run of a query that `Partitioned` (_plan.ts) can split, so that a blocking stage
 * can group, distinct, window or aggregate more rows than its memory budget: hash-partitioned
 * and spilled (_partition.ts), or folded batch by batch for an aggregate without keys
 * (_spill_stream.ts); null for any other query. Feed it the input batch by batch (with the
 * lookups of each batch when the query joins them), then read the output, exactly the
 * in-memory run's, from `finish()`.
 */
export function externalGroupOf(
  query: CompiledQuery,
  options: ExternalPartitionOptions,
): ExternalSort | null {
  const partitioned = query.plan.partitioned;
  if (!partitioned) return null;
  const output = (rows: Rows) => {
    try {
      return tableOfRows(query, rows);
    } catch (err) {
      throw executionError(err);
    }
  };
  const guarded: Partitioned = {
    ...partitioned,
    pre: (relations) => guard(() => partitioned.pre(relations)),
    local: (part) => guard(() => partitioned.local(part)),
    rest: (frame) => guard(() => partitioned.rest(frame)),
  };
  if (partitioned.kind === "stream") return streamAggregate(guarded, output, options);
  if (partitioned.kind === "broadcast") return streamWindow(guarded, output, options);
  return externalPartition(guarded, output, options);
}

function guard<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw executionError(err);
  }
}

function executionError(err: unknown): PrqlExecutionError {
  if (err instanceof PrqlExecutionError) return err;
  return new PrqlExecutionError(
    `PRQL block failed: ${err instanceof Error ? err.message : String(err)}`,
    { cause: err },
  );
}
