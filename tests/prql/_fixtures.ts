/**
 * Shared test data and a DuckDB oracle for the PRQL engine tests: seeded random Arrow tables
 * (with NULLs, awkward text, dates and timestamps), the same rows loaded into an in-memory
 * DuckDB, and a normaliser that turns both sides' rows into comparable plain values. It must
 * never derive expected results from the engine itself.
 */
import * as arrow from "apache-arrow";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";

import { prng } from "../_prng.ts";

const WORDS = [
  "alpha",
  "Beta",
  "gamma",
  "DELTA",
  "a_b",
  "50%",
  "ab",
  "",
  "  pad  ",
  "héllo",
  "Zeta",
];

/** Text whose UTF-8 byte order differs from its UTF-16 order, and other non-ASCII. */
const UNICODE_WORDS = ["日本", "😀x", "\uff21", "Ωmega", "é", "e\u0301", "ß", "Ä"];

/** What a dataset stresses beyond the plain one. */
export interface DatasetOptions {
  /** NaN, -0 and infinities among the floats. */
  specials?: boolean;
  /** Non-ASCII text, including characters outside the BMP. */
  unicode?: boolean;
  /** `users` holds repeated user ids (joins fan out) and `input` few distinct keys. */
  duplicates?: boolean;
}

export interface Dataset {
  tables: Record<string, arrow.Table>;
  /** DuckDB column types, per table, in field order. */
  ddl: Record<string, string[]>;
}

/** Builds `input`, `users` and `risk` with `n` input rows from `seed`. */
export function makeDataset(seed: number, n: number, o: DatasetOptions = {}): Dataset {
  const rnd = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const maybe = <T>(v: T, p = 0.1): T | null => (rnd() < p ? null : v);
  const words = o.unicode ? [...WORDS, ...UNICODE_WORDS] : WORDS;
  const idRange = o.duplicates ? 6 : 40;
  const ids = Array.from({ length: n }, () => maybe(1 + Math.floor(rnd() * idRange)));
  const special = () => pick([NaN, -0, 0, Infinity, -Infinity, NaN]);
  const input = new arrow.Table({
    user_id: arrow.vectorFromArray(ids, new arrow.Int32()),
    amount: arrow.vectorFromArray(
      ids.map(() =>
        maybe(o.specials && rnd() < 0.15 ? special() : Math.round(rnd() * 40000 - 5000) / 4)
      ),
      new arrow.Float64(),
    ),
    qty: arrow.vectorFromArray(
      ids.map(() => maybe(BigInt(Math.floor(rnd() * 21) - 5))),
      new arrow.Int64(),
    ),
    name: arrow.vectorFromArray(ids.map(() => maybe(pick(words))), new arrow.Utf8()),
    flag: arrow.vectorFromArray(ids.map(() => maybe(rnd() < 0.5)), new arrow.Bool()),
    d: arrow.vectorFromArray(
      ids.map(() => maybe(new Date(Date.UTC(2019, 0, 1) + Math.floor(rnd() * 900) * 86400000))),
      new arrow.DateDay(),
    ),
    ts: arrow.vectorFromArray(
      ids.map(() => maybe(Date.UTC(2020, 0, 1) + Math.floor(rnd() * 1e6) * 60000)),
      new arrow.TimestampMillisecond(),
    ),
  });
  const users = new arrow.Table({
    user_id: arrow.vectorFromArray(
      Array.from(
        { length: 30 },
        (_, i) => (i === 29 ? null : o.duplicates ? 1 + (i % 7) : i + 1 + (i > 20 ? 30 : 0)),
      ),
      new arrow.Int32(),
    ),
    country: arrow.vectorFromArray(
      Array.from({ length: 30 }, () => maybe(pick(["FR", "DE", "US", "JP"]))),
      new arrow.Utf8(),
    ),
    score: arrow.vectorFromArray(
      Array.from({ length: 30 }, () => maybe(Math.floor(rnd() * 100) / 10)),
      new arrow.Float64(),
    ),
  });
  const risk = new arrow.Table({
    user_id: arrow.vectorFromArray(
      Array.from({ length: 25 }, () => 1 + Math.floor(rnd() * 45)),
      new arrow.Int32(),
    ),
    velocity: arrow.vectorFromArray(
      Array.from({ length: 25 }, () => maybe(BigInt(Math.floor(rnd() * 10)))),
      new arrow.Int64(),
    ),
  });
  return {
    tables: { input, users, risk },
    ddl: {
      input: ["INTEGER", "DOUBLE", "BIGINT", "VARCHAR", "BOOLEAN", "DATE", "TIMESTAMP"],
      users: ["INTEGER", "VARCHAR", "DOUBLE"],
      risk: ["INTEGER", "BIGINT"],
    },
  };
}

function sqlLiteral(v: unknown, type: string): string {
  if (v === null || v === undefined) return "NULL";
  if (typeof v === "number" && !Number.isFinite(v)) return `'${v}'::DOUBLE`;
  if (Object.is(v, -0)) return "-0.0";
  if (type === "VARCHAR") return `'${String(v).replaceAll("'", "''")}'`;
  if (type === "DATE") return `DATE '${new Date(v as number).toISOString().slice(0, 10)}'`;
  if (type === "TIMESTAMP") {
    return `TIMESTAMP '${new Date(v as number).toISOString().replace("T", " ").slice(0, 23)}'`;
  }
  return String(v);
}

/** An in-memory DuckDB holding the dataset's tables under the same names. */
export async function loadDuckDb(ds: Dataset): Promise<DuckDBConnection> {
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  for (const [name, table] of Object.entries(ds.tables)) {
    const types = ds.ddl[name];
    const fields = table.schema.fields;
    const cols = fields.map((f, i) => `"${f.name}" ${types[i]}`).join(", ");
    await conn.run(`CREATE TABLE "${name}" (${cols})`);
    const rows: string[] = [];
    for (let r = 0; r < table.numRows; r++) {
      const vals = fields.map((f, i) => sqlLiteral(table.getChild(f.name)!.get(r), types[i]));
      rows.push(`(${vals.join(", ")})`);
    }
    if (rows.length > 0) await conn.run(`INSERT INTO "${name}" VALUES ${rows.join(", ")}`);
  }
  return conn;
}

/** A plain comparable value: numbers (floats rounded to 9 digits), strings, booleans, null. */
export type Plain = number | string | boolean | null;

function roundFloat(x: number): Plain {
  if (!Number.isFinite(x)) return String(x); // JSON would print NaN and infinities as null
  return Number.isInteger(x) ? x : Number(x.toPrecision(12));
}

/** Normalises a value DuckDB's node API returns. */
export function plainDuck(v: unknown): Plain {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "number") return roundFloat(v);
  if (typeof v === "string" || typeof v === "boolean") return v;
  const o = v as { days?: number; micros?: bigint; value?: bigint; scale?: number };
  if (o.days !== undefined) return `date:${o.days}`;
  if (o.micros !== undefined) return `ts:${Number(o.micros)}`;
  if (o.value !== undefined && o.scale !== undefined) {
    return roundFloat(Number(o.value) / 10 ** o.scale);
  }
  return String(v);
}

/** Normalises an Arrow table's rows the same way. */
export function plainArrow(table: arrow.Table): Plain[][] {
  const cols = table.schema.fields.map((f) => ({ f, v: table.getChild(f.name)! }));
  const rows: Plain[][] = [];
  for (let r = 0; r < table.numRows; r++) {
    rows.push(cols.map(({ f, v }) => {
      const x = v.get(r);
      if (x === null || x === undefined) return null;
      if (arrow.DataType.isDate(f.type)) return `date:${Math.round(Number(x) / 86400000)}`;
      if (arrow.DataType.isTimestamp(f.type)) {
        const unit = (f.type as arrow.Timestamp).unit;
        const scale = [1e6, 1e3, 1, 1e-3][unit];
        return `ts:${Math.round(Number(x) * scale)}`;
      }
      if (typeof x === "bigint") return Number(x);
      if (typeof x === "number") return roundFloat(x);
      return x as Plain;
    }));
  }
  return rows;
}

export async function duckRows(conn: DuckDBConnection, sql: string): Promise<Plain[][]> {
  const reader = await conn.runAndReadAll(sql);
  return reader.getRows().map((row) => row.map(plainDuck));
}

export function canonical(rows: Plain[][]): string[] {
  return rows.map((r) => JSON.stringify(r)).sort();
}
