/**
 * A paused batch as the debugger shows it: Arrow tables rendered as Debug Adapter Protocol
 * variables (schema, row count, first rows, the `_error_*` fields of quarantined rows), and
 * PRQL run over the batch for conditional breakpoints and the debug console. It only reads
 * the table it is given; it must never keep one past the pause that lent it.
 */
import type { Table } from "apache-arrow";
import { type CompiledQuery, compilePrql, execute } from "../../runtime/prql/mod.ts";

/** A variable as DAP sends it; `variablesReference` > 0 means it can be expanded. */
export interface Variable {
  name: string;
  value: string;
  type?: string;
  variablesReference: number;
}

/** How many rows a batch or a result shows before it says "and N more". */
export const ROWS_SHOWN = 20;

/** The columns a quarantined row carries, as handlers receive them (docs/executor.md). */
const ERROR_FIELDS = ["_error_step", "_error_message", "_error_attempt"];

/**
 * Expandable variables by reference. References stay valid until `clear`, which the session
 * calls whenever the run resumes (DAP's rule: references live while execution is suspended).
 */
export class VariableStore {
  #next = 1;
  #children = new Map<number, () => Variable[]>();

  add(children: () => Variable[]): number {
    const ref = this.#next++;
    this.#children.set(ref, children);
    return ref;
  }

  get(ref: number): Variable[] {
    return this.#children.get(ref)?.() ?? [];
  }

  clear(): void {
    this.#children.clear();
  }
}

/** One cell as source-like text: strings quoted, big integers without an `n`. */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string") return JSON.stringify(value);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") {
    return JSON.stringify(value, (_, v) => typeof v === "bigint" ? v.toString() : v);
  }
  return String(value);
}

function rowOf(table: Table, index: number): Record<string, unknown> {
  return (table.get(index)?.toJSON() ?? {}) as Record<string, unknown>;
}

function rowText(row: Record<string, unknown>): string {
  return `{${Object.entries(row).map(([k, v]) => `${k}: ${cellText(v)}`).join(", ")}}`;
}

function rowVariable(store: VariableStore, table: Table, index: number): Variable {
  const row = rowOf(table, index);
  return {
    name: `[${index}]`,
    value: rowText(row),
    variablesReference: store.add(() =>
      table.schema.fields.map((f) => ({
        name: f.name,
        value: cellText(row[f.name]),
        type: String(f.type),
        variablesReference: 0,
      }))
    ),
  };
}

/** The first rows of a table, one expandable variable each. */
function rowsVariable(store: VariableStore, table: Table, name: string): Variable {
  const shown = Math.min(table.numRows, ROWS_SHOWN);
  return {
    name,
    value: shown < table.numRows ? `${shown} of ${table.numRows} rows` : `${shown} rows`,
    variablesReference: shown === 0
      ? 0
      : store.add(() => Array.from({ length: shown }, (_, i) => rowVariable(store, table, i))),
  };
}

function schemaVariable(store: VariableStore, table: Table): Variable {
  const fields = table.schema.fields;
  return {
    name: "schema",
    value: `{${fields.map((f) => `${f.name}: ${f.type}${f.nullable ? "?" : ""}`).join(", ")}}`,
    variablesReference: store.add(() =>
      fields.map((f) => ({
        name: f.name,
        value: `${f.type}${f.nullable ? "?" : ""}`,
        variablesReference: 0,
      }))
    ),
  };
}

/** A table's variables: its row count, schema and first rows. */
export function tableVariables(store: VariableStore, table: Table): Variable[] {
  return [
    { name: "rows", value: String(table.numRows), type: "int", variablesReference: 0 },
    schemaVariable(store, table),
    rowsVariable(store, table, "first rows"),
  ];
}

/** Whether the batch holds quarantined rows: it carries the `_error_*` columns. */
export function hasErrorFields(table: Table): boolean {
  return ERROR_FIELDS.every((f) => table.schema.fields.some((x) => x.name === f));
}

/** One variable per quarantined row (first ones): "step: message (attempt n)". */
export function errorVariables(store: VariableStore, table: Table): Variable[] {
  const shown = Math.min(table.numRows, ROWS_SHOWN);
  return Array.from({ length: shown }, (_, i) => {
    const row = rowOf(table, i);
    return {
      name: `[${i}]`,
      value: `${row._error_step}: ${row._error_message} (attempt ${cellText(row._error_attempt)})`,
      variablesReference: store.add(() =>
        ERROR_FIELDS.map((f) => ({ name: f, value: cellText(row[f]), variablesReference: 0 }))
      ),
    };
  });
}

/** Compiled PRQL by schema and text: a breakpoint condition is compiled once per schema. */
const compiled = new Map<string, CompiledQuery | string>();

/**
 * Runs a PRQL pipeline over the batch as `input`. A pipeline that does not start with
 * `from` reads `input`, so `filter amount > 100` is enough. Errors come back as text.
 */
export function runPrql(
  pipeline: string,
  table: Table,
): { ok: true; table: Table } | { ok: false; message: string } {
  const text = /^\s*from\b/.test(pipeline) ? pipeline : `from input\n${pipeline}`;
  const key = `${table.schema.fields.map((f) => `${f.name}:${f.type}`).join(",")}\n${text}`;
  let query = compiled.get(key);
  if (query === undefined) {
    const result = compilePrql(text, { input: table.schema });
    query = result.value ?? result.diagnostics.map((d) => d.message).join("; ");
    // A console session types many one-off pipelines: keep the cache from growing without end.
    if (compiled.size >= 256) compiled.clear();
    compiled.set(key, query);
  }
  if (typeof query === "string") return { ok: false, message: query };
  try {
    return { ok: true, table: execute(query, { input: table }) };
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
}

/** Whether any row of the batch satisfies a PRQL condition (a breakpoint's). */
export function anyRowMatches(
  condition: string,
  table: Table,
): { ok: true; matches: boolean } | { ok: false; message: string } {
  const result = runPrql(`filter (${condition})`, table);
  return result.ok ? { ok: true, matches: result.table.numRows > 0 } : result;
}

/** One line about a result table, for the debug console. */
export function resultText(table: Table): string {
  const first = table.numRows > 0 ? `; first: ${rowText(rowOf(table, 0))}` : "";
  return `${table.numRows} row${table.numRows === 1 ? "" : "s"}${first}`;
}
