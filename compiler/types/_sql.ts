/**
 * What the compiler reads from the SQL text of query steps without a database: the output
 * column names of the SELECT list and the `@name` parameters; and the schema snapshot that
 * supplies column and parameter types (the sqlx offline model). It must never connect to a
 * database: `introspect` receives a catalog callback from the runtime or CLI.
 */
import { type ArrowType, parseType } from "../modules/mod.ts";

export interface SqlParam {
  name: string;
  /** Offset of the `@` in the SQL text. */
  offset: number;
}

export interface SqlShape {
  /** Output column names in order; null when the list has `*` (unknown without a catalog). */
  columns: string[] | null;
  params: SqlParam[];
  /** Why the SELECT list could not be read, if it could not. */
  problem: string | null;
}

/** Replaces quoted text by spaces so that scanning never looks inside literals. */
function blankStrings(sql: string): string {
  return sql.replace(/'(?:[^']|'')*'|"(?:[^"])*"/g, (m) => m[0] + " ".repeat(m.length - 2) + m[0]);
}

export function sqlShape(sql: string): SqlShape {
  const plain = blankStrings(sql);
  const params: SqlParam[] = [];
  for (const m of plain.matchAll(/@([A-Za-z_][A-Za-z0-9_]*)/g)) {
    params.push({ name: m[1], offset: m.index! });
  }
  const select = /^\s*(?:with\b[\s\S]*?\)\s*)?select\s+(?:distinct\s+)?/i.exec(plain);
  if (!select) return { columns: null, params, problem: "only SELECT queries are supported" };
  const items: string[] = [];
  let depth = 0;
  let start = select[0].length;
  let end = plain.length;
  for (let i = start; i < plain.length; i++) {
    const ch = plain[i];
    if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (depth === 0 && ch === ",") {
      items.push(sql.slice(start, i));
      start = i + 1;
    } else if (depth === 0 && /^\s+from\b/i.test(plain.slice(i, i + 6)) && /\s/.test(ch)) {
      end = i;
      break;
    }
  }
  items.push(sql.slice(start, end));
  const columns: string[] = [];
  for (const raw of items) {
    const item = raw.trim();
    if (item === "*" || item.endsWith(".*")) return { columns: null, params, problem: null };
    const alias = /\s(?:as\s+)?"?([A-Za-z_][A-Za-z0-9_]*)"?$/i.exec(item);
    const bare = /^(?:[A-Za-z_][A-Za-z0-9_]*\.)*"?([A-Za-z_][A-Za-z0-9_]*)"?$/.exec(item);
    if (bare) columns.push(bare[1]);
    else if (alias) columns.push(alias[1]);
    else return { columns: null, params, problem: `name the expression \`${item}\` with AS` };
  }
  return { columns, params, problem: null };
}

/** A stable hash of the query text, insensitive to whitespace: the snapshot key. */
export function queryHash(sql: string): string {
  const text = sql.trim().replace(/\s+/g, " ");
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, "0");
}

export interface SnapshotColumn {
  name: string;
  type: string;
  nullable?: boolean;
}

/** One query's recorded types, keyed by resource name and query hash. */
export interface SnapshotEntry {
  resource: string;
  hash: string;
  query: string;
  columns: SnapshotColumn[];
  params: SnapshotColumn[];
}

/** The `<program>.schema.json` file. */
export interface SchemaSnapshot {
  heddle_schema_snapshot: 1;
  queries: SnapshotEntry[];
}

export interface TypedColumn {
  name: string;
  type: ArrowType;
  nullable: boolean;
}

/** Parses a snapshot file's text; returns an error message instead of throwing. */
export function parseSnapshot(text: string): SchemaSnapshot | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return `not valid JSON: ${(e as Error).message}`;
  }
  const s = json as SchemaSnapshot;
  if (s?.heddle_schema_snapshot !== 1 || !Array.isArray(s.queries)) {
    return 'expected `{"heddle_schema_snapshot": 1, "queries": [...]}`';
  }
  for (const q of s.queries) {
    for (const c of [...(q.columns ?? []), ...(q.params ?? [])]) {
      const t = parseType(c.type);
      if (typeof t === "string") return `query on \`${q.resource}\`, \`${c.name}\`: ${t}`;
    }
  }
  return s;
}

export function lookupSnapshot(
  snapshot: SchemaSnapshot | null,
  resource: string,
  sql: string,
): SnapshotEntry | null {
  const hash = queryHash(sql);
  return snapshot?.queries.find((q) => q.resource === resource && q.hash === hash) ?? null;
}

export function typedColumns(cols: SnapshotColumn[]): TypedColumn[] {
  return cols.map((c) => ({
    name: c.name,
    type: parseType(c.type) as ArrowType,
    nullable: c.nullable === true,
  }));
}
