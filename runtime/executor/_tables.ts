/**
 * Small table operations the executor needs around stages: picking failed rows and adding
 * the error columns a handler's `*` carries, and the distinct key values of a batch for a
 * batched lookup. They copy only the rows they pick and must never change a value's type.
 */
import { Field, Int32, Schema, type Table, Utf8 } from "apache-arrow";
import { rawRowsOf, tableFromRows } from "../connectors/mod.ts";

/** The columns appended to failed rows (the `ERROR_FIELDS` of the type checker). */
const ERROR_FIELDS = [
  new Field("_error_step", new Utf8(), false),
  new Field("_error_message", new Utf8(), false),
  new Field("_error_attempt", new Int32(), false),
];

export interface ErrorDetails {
  step: string;
  message: string;
  attempt: number;
}

function errorSchema(base: Schema, nullable: boolean): Schema {
  const kept = base.fields.filter((f) => !f.name.startsWith("_error_"));
  return new Schema([
    ...kept.map((f) => nullable ? new Field(f.name, f.type, true) : f),
    ...ERROR_FIELDS,
  ]);
}

/** Rows `indexes` of `table`, each with `details` in the error columns. */
export function failedRows(table: Table, indexes: number[], details: ErrorDetails[]): Table {
  const all = rawRowsOf(table);
  const rows = indexes.map((i, k) => ({
    ...all[i],
    _error_step: details[k].step,
    _error_message: details[k].message,
    _error_attempt: details[k].attempt,
  }));
  return tableFromRows(errorSchema(table.schema, false), rows);
}

/** Rows that never became typed rows (malformed input): null columns plus error details. */
export function untypedFailures(schema: Schema, details: ErrorDetails[]): Table {
  return tableFromRows(
    errorSchema(schema, true),
    details.map((d) => ({
      _error_step: d.step,
      _error_message: d.message,
      _error_attempt: d.attempt,
    })),
  );
}

/**
 * The distinct values of the batch's key columns, named as the lookup side names them:
 * `keys` pairs (column of the batch, column of the lookup).
 */
export function distinctKeys(table: Table, keys: [string, string][]): Table {
  const fields = keys.map(([left, right]) => {
    const f = table.schema.fields.find((x) => x.name === left);
    if (!f) throw new Error(`the batch has no key column \`${left}\``);
    return new Field(right, f.type, true);
  });
  const seen = new Set<string>();
  const rows: Record<string, unknown>[] = [];
  for (const row of rawRowsOf(table)) {
    const key = keys.map(([left]) => row[left]);
    if (key.some((v) => v === null)) continue;
    const text = JSON.stringify(key, (_, v) => typeof v === "bigint" ? `${v}n` : v);
    if (seen.has(text)) continue;
    seen.add(text);
    rows.push(Object.fromEntries(keys.map(([left, right]) => [right, row[left]])));
  }
  return tableFromRows(new Schema(fields), rows);
}
