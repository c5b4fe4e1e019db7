/**
 * Benchmark of the PRQL engine against DuckDB running the SQL that prql-js generates for the
 * same query over the same rows. DuckDB's time is measured two ways: the query alone on
 * tables already loaded (its best case) and the query plus loading the micro-batch through
 * the appender (what embedding DuckDB would cost per batch, since the JS API cannot scan
 * Arrow memory in place). Both sides materialise their full result in JS memory. This file
 * must never assert anything: numbers go to docs/prql-engine.md, not to tests.
 */
import * as arrow from "apache-arrow";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { compilePrql, execute } from "../runtime/prql/mod.ts";
import { type BenchRow, median, row } from "./_report.ts";

export type { BenchRow };

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeTables(rows: number, userCount: number): Record<string, arrow.Table> {
  const rnd = prng(1);
  const names = ["alpha", "beta", "gamma", "delta", "epsilon"];
  const uid = new Int32Array(rows), amount = new Float64Array(rows), qty = new Int32Array(rows);
  const name: string[] = new Array(rows);
  for (let i = 0; i < rows; i++) {
    uid[i] = Math.floor(rnd() * userCount);
    amount[i] = Math.floor(rnd() * 2_000_000) / 100;
    qty[i] = Math.floor(rnd() * 50);
    name[i] = names[i % names.length];
  }
  const users = new Int32Array(userCount).map((_, i) => i);
  const country = Array.from({ length: userCount }, (_, i) => ["FR", "DE", "US", "JP"][i % 4]);
  return {
    input: new arrow.Table({
      user_id: arrow.makeVector(uid),
      amount: arrow.makeVector(amount),
      qty: arrow.makeVector(qty),
      name: arrow.vectorFromArray(name, new arrow.Utf8()),
    }),
    users: new arrow.Table({
      user_id: arrow.makeVector(users),
      country: arrow.vectorFromArray(country, new arrow.Utf8()),
    }),
  };
}

const QUERIES: Record<string, string> = {
  filter_select: "from input | filter amount > 10000 | select {user_id, amount}",
  projection: "from input | select {uid = user_id, amount}",
  derive_filter: "from input | derive {v = amount * qty / 100} | filter v > 50 && qty != 7",
  group_aggregate:
    "from input | group {name} (aggregate {n = count this, s = sum amount, a = average qty})",
  lookup_join:
    "from input | filter amount > 15000 | join users (==user_id) | select {input.user_id, amount, country}",
  sort_take: "from input | sort {-amount} | take 100",
};

async function load(conn: DuckDBConnection, tables: Record<string, arrow.Table>) {
  for (const [name, t] of Object.entries(tables)) {
    const cols = t.schema.fields.map((f) =>
      `"${f.name}" ${
        arrow.DataType.isUtf8(f.type)
          ? "VARCHAR"
          : arrow.DataType.isFloat(f.type)
          ? "DOUBLE"
          : "INTEGER"
      }`
    );
    await conn.run(`CREATE OR REPLACE TABLE "${name}" (${cols.join(", ")})`);
    const app = await conn.createAppender(name);
    const vecs = t.schema.fields.map((f) => ({ f, v: t.getChild(f.name)!.toArray() }));
    for (let i = 0; i < t.numRows; i++) {
      for (const { f, v } of vecs) {
        if (arrow.DataType.isUtf8(f.type)) app.appendVarchar(v[i] as string);
        else if (arrow.DataType.isFloat(f.type)) app.appendDouble(v[i] as number);
        else app.appendInteger(v[i] as number);
      }
      app.endRow();
    }
    app.closeSync();
  }
}

async function timeAsync(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/**
 * Runs every query on both engines over `rows` input rows; returns one row per measurement.
 * Ratios are DuckDB's time over Heddle's (>1: Heddle is faster).
 */
export async function benchPrql(rows = 1_000_000, runs = 5): Promise<BenchRow[]> {
  const tables = makeTables(rows, Math.max(10, Math.floor(rows / 10)));
  const schemas = Object.fromEntries(Object.entries(tables).map(([k, t]) => [k, t.schema]));
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  const loadMs = await timeAsync(() => load(conn, tables));
  const out: BenchRow[] = [
    row(`prql.duckdb_load_${rows}_rows`, loadMs, "ms", null, { note: "DuckDB appender" }),
  ];
  for (const [name, text] of Object.entries(QUERIES)) {
    const t0 = performance.now();
    const q = compilePrql(text, schemas).value!;
    const compileMs = performance.now() - t0;
    const mine: number[] = [], theirs: number[] = [];
    for (let r = 0; r < runs; r++) {
      mine.push(await timeAsync(() => Promise.resolve(execute(q, tables))));
      theirs.push(await timeAsync(() => conn.runAndReadAll(q.sql)));
    }
    const m = median(mine), d = median(theirs);
    out.push(
      row(`prql.${name}.compile`, compileMs, "ms"),
      row(`prql.${name}.vs_duckdb_query`, m, "ms", d, { baselineName: "DuckDB, query only" }),
      row(`prql.${name}.vs_duckdb_load_and_query`, m, "ms", d + loadMs, {
        baselineName: "DuckDB, load + query",
      }),
    );
  }
  conn.closeSync();
  return out;
}

if (import.meta.main) {
  for (const r of await benchPrql()) {
    console.log(
      `${r.name.padEnd(46)} ${r.value.toFixed(2).padStart(10)} ${r.unit}` +
        (r.baseline === null
          ? ""
          : `  duckdb ${r.baseline.toFixed(2)}  ratio ${r.ratio?.toFixed(2)}`),
    );
  }
}
