/**
 * Oracle tests: every query runs through the engine and, as the SQL prql-js generates for
 * DuckDB, through DuckDB over the same seeded data; the rows must agree. Queries without a
 * final sort compare as multisets; sorted ones also compare the sequence of their sort keys
 * (rows that tie may legitimately come in any order).
 */
import { strict as assert } from "node:assert";
import { compilePrql, execute } from "../../runtime/prql/mod.ts";
import {
  canonical,
  duckRows,
  loadDuckDb,
  makeDataset,
  type Plain,
  plainArrow,
} from "./_fixtures.ts";

interface Case {
  prql: string;
  /** Output column positions whose sequence must match (the query's sort keys). */
  ordered?: number[];
}

const CASES: Case[] = [
  { prql: "from input | filter amount > 1000 | select {user_id, amount}" },
  { prql: "from input | filter amount >= 0 && qty < 3 | select {user_id, qty, amount}" },
  { prql: "from input | filter amount == null | select {user_id, amount}" },
  { prql: "from input | filter name != null && flag | select {name, flag}" },
  { prql: "from input | filter !flag || qty == 2 | select {flag, qty}" },
  { prql: "from input | filter (flag || qty > 4) == null | select {flag, qty}" },
  { prql: "from input | derive {a = amount + qty, b = amount - 1, c = qty * 3, n = -qty}" },
  { prql: "from input | derive {q = amount / qty, i = qty // 2, m = qty % 3, z = qty / 0}" },
  { prql: "from input | derive {i = amount // qty, m = amount % qty, z = qty // 0, y = qty % 0}" },
  { prql: "from input | derive {x = user_id / 7, y = user_id // 7, w = (user_id - 20) % 7}" },
  { prql: 'from input | derive {k = amount ?? 0, j = qty ?? user_id, l = name ?? "none"}' },
  {
    prql:
      "from input | derive {lo = text.lower name, up = text.upper name, len = text.length name}",
  },
  { prql: 'from input | derive {t = text.trim name, r = text.replace "a" "X" name}' },
  { prql: 'from input | filter (text.starts_with "a" name) | select {name}' },
  { prql: 'from input | filter (text.contains "_" name) | select {name}' },
  { prql: 'from input | filter (text.ends_with "%" name) | select {name}' },
  {
    prql:
      'from input | filter (text.contains "é" name) || (text.ends_with "a" name) | select {name}',
  },
  { prql: 'from input | filter name > "Beta" | select {name}' },
  { prql: 'from input | filter name ~= "^[a-z]+$" | select {name}' },
  { prql: 'from input | derive {s = f"{name}#{qty}"} | select {s}' },
  {
    prql: 'from input | derive {c = case [amount > 5000 => "big", amount > 0 => "small"]}' +
      " | select {amount, c}",
  },
  {
    prql: "from input | derive {c = case [qty > 5 => amount, qty > 0 => qty, true => null]}" +
      " | select {qty, c}",
  },
  { prql: "from input | filter d >= @2020-01-01 && d < @2020-06-01 | select {d}" },
  { prql: "from input | filter ts > @2020-06-01T12:30:00 | select {ts, user_id}" },
  { prql: "from input | filter ts >= d | select {ts, d}" },
  { prql: "from input | filter (qty | in 1..3) | select {qty}" },
  { prql: "from input | filter (user_id | in [1, 2, 3, 5, 8]) | select {user_id}" },
  { prql: "from input | sort {-amount} | select {amount, user_id}", ordered: [0] },
  { prql: "from input | sort {name, -qty} | select {name, qty}", ordered: [0, 1] },
  { prql: "from input | sort {d} | take 10 | select {d}", ordered: [0] },
  { prql: "from input | sort {-ts} | take 5..12 | select {ts}", ordered: [0] },
  { prql: "from input | sort {flag, user_id} | select {flag, user_id}", ordered: [0, 1] },
  { prql: "from input | group {user_id} (aggregate {n = count this, s = sum amount})" },
  {
    prql: "from input | group {name} (aggregate {a = average amount, lo = min qty," +
      " hi = max qty, c = count qty})",
  },
  { prql: "from input | group {flag, name} (aggregate {cd = count_distinct user_id})" },
  { prql: "from input | aggregate {n = count this, s = sum qty, mx = max d, mn = min name}" },
  {
    prql:
      "from input | filter amount > 1e9 | aggregate {n = count this, s = sum amount, a = average amount}",
  },
  { prql: "from input | filter amount > 1e9 | group user_id (aggregate {n = count this})" },
  { prql: "from input | group {user_id} (aggregate {s = sum (amount * 2)}) | filter s > 10000" },
  {
    prql: "from input | group {user_id} (aggregate {n = count this}) | sort {-n, user_id}" +
      " | take 5",
    ordered: [0, 1],
  },
  { prql: "from input | group user_id (sort {-amount} | take 1) | select {user_id, amount}" },
  { prql: "from input | join users (==user_id) | select {input.user_id, country, amount}" },
  { prql: "from input | join side:left users (==user_id) | select {input.user_id, country}" },
  { prql: "from input | join side:right users (==user_id) | select {users.user_id, qty}" },
  {
    prql:
      "from input | join side:full users (==user_id) | select {input.user_id, users.user_id, score}",
  },
  { prql: "from input | join users (==user_id) | join risk (==user_id)" },
  { prql: "from input | join side:left risk (this.user_id == that.user_id && velocity > 3)" },
  {
    prql:
      "from users | join risk (this.user_id < that.user_id) | select {users.user_id, risk.user_id}",
  },
  {
    prql: "from input | join users (==user_id) | group {country} (aggregate {t = sum amount," +
      " n = count this})",
  },
  { prql: "from input | select {user_id, amount} | append (from users | select {user_id, score})" },
  { prql: "from input | filter qty > 0 | select {id = user_id, q = qty, amount}" },
  { prql: "from input | derive {big = amount > 10000} | filter big | derive {h = amount / 2}" },
  { prql: "from input | take 7" },
  { prql: "from input | filter flag == false | select {flag, qty}" },
  {
    prql:
      "from input | derive {r = math.abs qty, f = math.floor (amount / 3), c = math.ceil (amount / 3)}",
  },
  { prql: "from input | derive {r = math.round 1 (amount / 7), s = math.round 0 amount}" },
];

const ds = makeDataset(42, 400);
const schemas = Object.fromEntries(Object.entries(ds.tables).map(([k, t]) => [k, t.schema]));
const conn = await loadDuckDb(ds);

function keys(rows: Plain[][], cols: number[]): string[] {
  return rows.map((r) => JSON.stringify(cols.map((c) => r[c])));
}

for (const c of CASES) {
  Deno.test(`execute() agrees with DuckDB on \`${c.prql}\``, async () => {
    const compiled = compilePrql(c.prql, schemas);
    assert.deepEqual(compiled.diagnostics, []);
    const query = compiled.value!;
    const mine = plainArrow(execute(query, ds.tables));
    const theirs = await duckRows(conn, query.sql);
    assert.equal(mine.length, theirs.length, "row count");
    assert.equal(mine[0]?.length ?? 0, theirs[0]?.length ?? 0, "column count");
    assert.deepEqual(canonical(mine), canonical(theirs));
    if (c.ordered) assert.deepEqual(keys(mine, c.ordered), keys(theirs, c.ordered));
  });
}
