/**
 * What the SQL connectors (`fhub/postgresql`, `fhub/clickhouse`) share: finding `@name`
 * parameters outside string literals and comments, binding each to the distinct values of
 * a batch's column, and typing result columns so that a join key keeps the batch's type.
 * It exists so that parameters are always sent bound and never spliced into the SQL text:
 * nothing here may ever put a value into a query string.
 */
import { Schema, Table } from "apache-arrow";
import type { ArrowType } from "../../compiler/modules/mod.ts";
import { rawRowsOf, tableFromRows, toArrowField } from "./_arrow.ts";
import { stringOf } from "./_remote.ts";
import { type ConnectorContext, ConnectorError, type Lookup } from "./_types.ts";

/** An `@name` parameter at `[start, end)` of the SQL text. */
interface ParamSite {
  name: string;
  start: number;
  end: number;
}

/** The `@name` parameters of `sql`, skipping quoted text, quoted names and comments. */
export function paramSites(sql: string): ParamSite[] {
  const sites: ParamSite[] = [];
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i];
    if (ch === "'" || ch === '"' || ch === "`") {
      const close = sql.indexOf(ch, i + 1);
      i = close < 0 ? sql.length : close + 1;
    } else if (ch === "-" && sql[i + 1] === "-") {
      const nl = sql.indexOf("\n", i);
      i = nl < 0 ? sql.length : nl + 1;
    } else if (ch === "/" && sql[i + 1] === "*") {
      const close = sql.indexOf("*/", i + 2);
      i = close < 0 ? sql.length : close + 2;
    } else if (ch === "@" && /[A-Za-z_]/.test(sql[i + 1] ?? "") && sql[i - 1] !== "@") {
      const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i + 1))!;
      sites.push({ name: match[0], start: i, end: i + 1 + match[0].length });
      i += 1 + match[0].length;
    } else i++;
  }
  return sites;
}

/** `sql` with each `@name` replaced by `placeholder(name)`; the text is otherwise kept. */
export function replaceParams(sql: string, placeholder: (name: string) => string): string {
  let out = "";
  let at = 0;
  for (const site of paramSites(sql)) {
    out += sql.slice(at, site.start) + placeholder(site.name);
    at = site.end;
  }
  return out + sql.slice(at);
}

/** The distinct non-null values of column `name` of `keys`, as an array parameter. */
export function arrayParam(keys: Table, name: string): unknown[] {
  if (!keys.schema.fields.some((f) => f.name === name)) {
    const have = keys.schema.fields.map((f) => `\`${f.name}\``).join(", ") || "none";
    throw new ConnectorError(
      "config",
      `the query's parameter \`@${name}\` names no column of the incoming rows (columns: ${have})`,
    );
  }
  const seen = new Map<string, unknown>();
  for (const row of rawRowsOf(keys)) {
    const v = row[name];
    if (v !== null && v !== undefined) seen.set(typeof v === "bigint" ? `${v}n` : String(v), v);
  }
  return [...seen.values()];
}

/**
 * The table of a query's result rows. A result column named like a column of `keys` takes
 * that column's type (so `user_id` stays int64 even when the table stores int4), the others
 * the type the database reported; every column is nullable, since SQL may return nulls.
 */
export function resultTable(
  columns: { name: string; type: ArrowType }[],
  rows: Record<string, unknown>[],
  keys: Table,
): Table {
  const keyTypes = new Map(keys.schema.fields.map((f) => [f.name, f]));
  const fields = columns.map((c) => {
    const key = keyTypes.get(c.name);
    return key ? key.clone({ nullable: true }) : toArrowField({ ...c, nullable: true });
  });
  try {
    return tableFromRows(new Schema(fields), rows);
  } catch (e) {
    throw new ConnectorError("data", `the query's result does not fit its columns: ${e}`);
  }
}

/** The step's SQL text (`query`). */
export function queryOf(ctx: ConnectorContext): string {
  const query = stringOf(ctx.config, "query");
  if (!query) throw new ConnectorError("config", "`query` must be a non-empty string");
  return query;
}

/** The SQL text of a query that starts a pipeline: it has no rows to bind `@params` to. */
export function sourceQueryOf(ctx: ConnectorContext): string {
  const query = queryOf(ctx);
  if (paramSites(query).length > 0) {
    throw new ConnectorError("config", "a query that starts a pipeline cannot have `@` parameters");
  }
  return query;
}

/** The keys of a query that binds none (a query that starts a pipeline). */
export const NO_KEYS: Table = new Table();

/** A lookup that counts the queries it sent, so tests and metrics can see the batching. */
export interface CountingLookup extends Lookup {
  readonly queries: number;
}

export const INT64: ArrowType = { kind: "primitive", name: "int64" };
export const FLOAT64: ArrowType = { kind: "primitive", name: "float64" };
export const UTF8: ArrowType = { kind: "primitive", name: "utf8" };
export const BOOL: ArrowType = { kind: "primitive", name: "bool" };
