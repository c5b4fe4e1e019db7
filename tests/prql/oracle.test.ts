/**
 * Oracle tests: every query runs through the engine and, as the SQL prql-js generates for
 * DuckDB, through DuckDB over the same seeded data; the rows must agree. Queries without a
 * final sort compare as multisets; sorted ones also compare the sequence of their sort keys
 * (rows that tie may legitimately come in any order). Besides the hand-written cases, a
 * seeded generator composes filter, derive, group/aggregate, join, sort and take into
 * queries run over several datasets: NULLs everywhere, NaN/-0/infinities, an empty input,
 * duplicate join keys and non-ASCII text (whose UTF-8 order differs from UTF-16's), and the
 * same input cut into many small record batches, each a slice of one buffer (as a stage
 * receives batches: validity bits and offsets that do not start at zero).
 */
import { strict as assert } from "node:assert";
import * as arrow from "apache-arrow";
import { compilePrql, execute } from "../../runtime/prql/mod.ts";
import type { DuckDBConnection } from "@duckdb/node-api";
import { prng } from "../_prng.ts";
import {
  canonical,
  type Dataset,
  type DatasetOptions,
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
  // Nested operators: each writes its result over its operand's own (fresh) output.
  {
    prql: "from input | derive {a = (amount + qty) * 2 - qty, b = qty % 3 + qty % 0," +
      " c = 1 - (qty * amount) / (user_id - 3)} | select {a, b, c, amount, qty}",
  },
  {
    prql: "from input | filter (amount > 0 && qty > 1) || (flag && !(qty < 0 && user_id > 9))" +
      " | select {amount, qty, flag, user_id}",
  },
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
  // Every left row finds exactly one user: the join keeps the left columns as they are.
  {
    prql: "from input | filter user_id != null && user_id < 20 | join users (==user_id)" +
      " | select {input.user_id, amount, country}",
  },
  {
    prql: "from input | filter user_id != null && user_id < 20 | join side:left users" +
      " (==user_id) | select {input.user_id, name, score}",
  },
  {
    prql: "from input | filter user_id != null && user_id < 20 | join side:right users" +
      " (==user_id) | select {amount, users.user_id, country}",
  },
  {
    prql: "from input | filter user_id != null && user_id < 20 | join side:full users" +
      " (==user_id) | select {amount, users.user_id, country}",
  },
  // Keys spread too wide to be coded directly (timestamps), duplicated on both sides.
  {
    prql: "from input | join side:left (from input | select {ts2 = ts, q2 = qty})" +
      " (this.ts == that.ts2) | select {ts, qty, q2}",
  },
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

function keys(rows: Plain[][], cols: number[]): string[] {
  return rows.map((r) => JSON.stringify(cols.map((c) => r[c])));
}

async function agree(c: Case, ds: Dataset, conn: DuckDBConnection): Promise<void> {
  const schemas = Object.fromEntries(Object.entries(ds.tables).map(([k, t]) => [k, t.schema]));
  const compiled = compilePrql(c.prql, schemas);
  assert.deepEqual(compiled.diagnostics, []);
  const query = compiled.value!;
  const mine = plainArrow(execute(query, ds.tables));
  const theirs = await duckRows(conn, query.sql);
  assert.equal(mine.length, theirs.length, "row count");
  assert.equal(mine[0]?.length ?? 0, theirs[0]?.length ?? 0, "column count");
  sameList(canonical(mine), canonical(theirs), "rows");
  if (c.ordered) sameList(keys(mine, c.ordered), keys(theirs, c.ordered), "sort keys");
}

/** Compares lists by their first difference (a full diff of 40,000 rows would take GiBs). */
function sameList(mine: string[], theirs: string[], what: string): void {
  const at = mine.findIndex((x, i) => x !== theirs[i]);
  if (at >= 0) assert.fail(`${what} differ first at ${at}: ${mine[at]} vs DuckDB's ${theirs[at]}`);
}

const ds = makeDataset(42, 400);
const conn = await loadDuckDb(ds);

for (const c of CASES) {
  Deno.test(`execute() agrees with DuckDB on \`${c.prql}\``, () => agree(c, ds, conn));
}

// Generated queries: each is a pipeline of the relational stages over `input`.
const PREDICATES = [
  "amount > 1000",
  "amount <= 0",
  "qty < 3",
  "qty != 2",
  "flag",
  "!flag || qty > 4",
  "user_id != null",
  "amount == null || qty > 2",
  "(qty | in 1..5)",
  'name == "alpha"',
  'name > "a"',
  'name < "é"',
  "d >= @2019-06-01",
  "ts < @2021-01-01T00:00:00",
  "amount > qty",
];
const DERIVES = [
  "x = amount * qty",
  "x = qty + user_id",
  "x = amount / qty",
  'x = name ?? "?"',
  "x = text.length name",
  "x = amount ?? -1.0",
  "x = qty % 4",
];
const GROUP_KEYS = ["user_id", "name", "flag", "d", "qty", "x"];
const AGGREGATES = [
  "n = count this",
  "s = sum amount",
  "a = average qty",
  "lo = min name",
  "hi = max amount",
  "cd = count_distinct name",
  "md = min d",
  "mt = max ts",
  "sq = sum qty",
  "c = count amount",
  "mn = min amount",
];
const SORT_KEYS = ["name", "-amount", "qty", "d", "-ts", "flag", "-user_id", "amount", "-name"];

/** Join conditions other than `==user_id`, per joined relation. */
const JOIN_CONDITIONS: Record<string, string[]> = {
  users: [
    "(this.amount == that.score)",
    "(this.qty == that.user_id)",
    "(this.amount == that.user_id)",
    "(this.name == that.country)",
    "(this.user_id == that.user_id && this.amount > that.score)",
  ],
  risk: ["(this.qty == that.velocity)", "(this.amount == that.user_id)"],
};

/** A seeded query: optional filter/derive, then one of group, join, sort(+take) or take. */
function generate(seed: number): Case {
  const rnd = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const some = <T>(xs: T[], max: number) => {
    const k = 1 + Math.floor(rnd() * max);
    return [...new Set(Array.from({ length: k }, () => pick(xs)))];
  };
  let q = "from input";
  if (rnd() < 0.5) q += ` | filter ${pick(PREDICATES)}`;
  const derived = rnd() < 0.5;
  if (derived) q += ` | derive {${pick(DERIVES)}}`;
  const shape = pick(["group", "group", "join", "sort", "sort", "sort_take", "aggregate"]);
  switch (shape) {
    case "group": {
      const ks = some(GROUP_KEYS.filter((k) => derived || k !== "x"), 2);
      // prql-js does not let an aggregate read a column the group is keyed by.
      const aggs = some(AGGREGATES, 3).filter((a) => !ks.some((k) => a.endsWith(` ${k}`)));
      const body = aggs.length > 0 ? aggs.join(", ") : "n = count this";
      return { prql: `${q} | group {${ks.join(", ")}} (aggregate {${body}})` };
    }
    case "aggregate":
      return { prql: `${q} | aggregate {${some(AGGREGATES, 4).join(", ")}}` };
    case "join": {
      const side = pick(["", "side:left ", "side:right ", "side:full "]);
      const rel = pick(["users", "risk"]);
      const other = rel === "users" ? "country, score" : "velocity";
      // Keys the join codes directly (small integers), by hash (floats with NaN and -0,
      // text, integers against floats) and with a left side where every row matches.
      const on = rnd() < 0.5 ? "(==user_id)" : pick(JOIN_CONDITIONS[rel]);
      return { prql: `${q} | join ${side}${rel} ${on} | select {amount, name, ${other}}` };
    }
    default: {
      const ks = some(SORT_KEYS, 3).filter((k, i, all) =>
        all.findIndex((o) => o.replace("-", "") === k.replace("-", "")) === i
      );
      const cols = ks.map((k) => k.replace("-", ""));
      const take = shape === "sort_take" ? ` | take ${1 + Math.floor(rnd() * 30)}` : "";
      // After a take only the sort keys are selected: rows tied at the cut may differ.
      const rest = take
        ? ""
        : ", " + ["user_id", "amount", "name"].filter((c) => !cols.includes(c)).join(", ");
      const select = `${cols.join(", ")}${rest === ", " ? "" : rest}`;
      return {
        prql: `${q} | sort {${ks.join(", ")}}${take} | select {${select}}`,
        ordered: cols.map((_, i) => i),
      };
    }
  }
}

/** Queries that move every row of a large input (gathers of 32,768 rows and more). */
const LARGE_CASES: Case[] = [
  {
    prql: "from input | sort {-amount, user_id} | select {amount, user_id, name}",
    ordered: [0, 1],
  },
  { prql: "from input | sort {name, ts} | select {name, ts, qty}", ordered: [0, 1] },
  { prql: "from input | join side:left users (==user_id) | select {name, country, amount}" },
  {
    prql: "from input | join side:left (from input | select {ts2 = ts, q2 = qty})" +
      " (this.ts == that.ts2) | select {ts, qty, q2}",
  },
  {
    prql: "from input | filter user_id != null | join (from input | select {u = user_id}" +
      " | filter u != null | group {u} (take 1)) (this.user_id == that.u)" +
      " | select {u, name, amount}",
  },
];

/** `sort | take n` over one numeric key without NULLs (its heap's one-comparison path). */
const TOP_CASES: Case[] = [
  {
    prql: "from input | derive {k = amount ?? -1.0} | sort {-k} | take 9 | select {k}",
    ordered: [0],
  },
  {
    prql: "from input | derive {k = amount ?? 0.0} | sort {k} | take 9 | select {k}",
    ordered: [0],
  },
  { prql: "from input | derive {k = qty ?? 3} | sort {-k} | take 5 | select {k}", ordered: [0] },
];

const DATASETS: [string, number, number, DatasetOptions, number][] = [
  ["nulls", 11, 300, {}, 24],
  ["NaN, -0 and infinities", 12, 300, { specials: true }, 24],
  ["an empty input", 13, 0, {}, 24],
  ["duplicate keys", 14, 200, { duplicates: true }, 24],
  ["non-ASCII text", 15, 300, { unicode: true, specials: true }, 24],
  // Large enough for the kernels' paths for big inputs (dictionary gathers of text).
  ["40,000 rows", 16, 40_000, { unicode: true, specials: true }, 8],
];

/** `t` as record batches of `size` rows, each a slice of its one buffer. */
function rechunk(t: arrow.Table, size: number): arrow.Table {
  const parts: arrow.RecordBatch[] = [];
  for (let at = 0; at < t.numRows; at += size) parts.push(...t.slice(at, at + size).batches);
  return new arrow.Table(parts);
}

{
  // Batches of 7 rows: no batch boundary falls on a byte of the validity bitmaps.
  const seed = 17;
  const data = makeDataset(seed, 700, { unicode: true, specials: true });
  const db = await loadDuckDb(data);
  const input = rechunk(data.tables.input, 7);
  assert.equal(input.batches.length, 100);
  const chunked = { ...data, tables: { ...data.tables, input } };
  for (let i = 0; i < 24; i++) {
    const c = generate(seed * 1000 + i);
    Deno.test(`execute() agrees with DuckDB over batches of 7 rows on \`${c.prql}\``, () =>
      agree(c, chunked, db));
  }
}

{
  // Case mapping as DuckDB does it: per code point, by the simple mapping (no `ß` -> `SS`, no
  // final sigma, `İ` lowercases to `i`), on words where JavaScript's own mapping differs.
  const words = [
    "straße",
    "ẞ",
    "ŉ",
    "ﬁ",
    "ᾳ",
    "ᾈ",
    "ΐ",
    "ǰ",
    "İstanbul",
    "ΌΣΟΣ",
    "Σ",
    "aΣ b",
    "😀é",
  ];
  const data: Dataset = {
    tables: { input: new arrow.Table({ name: arrow.vectorFromArray(words, new arrow.Utf8()) }) },
    ddl: { input: ["VARCHAR"] },
  };
  const db = await loadDuckDb(data);
  const c = { prql: "from input | derive {u = text.upper name, l = text.lower name}" };
  Deno.test("text.upper and text.lower agree with DuckDB where JavaScript's case mapping does not", () =>
    agree(c, data, db));
}

{
  // Past `execute`'s slice size (65,536 rows), in batches of 1,000 rows so that slices end
  // inside batches: a query that only filters, derives and selects runs slice by slice.
  const seed = 18;
  const data = makeDataset(seed, 150_000, { specials: true });
  const db = await loadDuckDb(data);
  const sliced = { ...data, tables: { ...data.tables, input: rechunk(data.tables.input, 1000) } };
  const schemas = Object.fromEntries(Object.entries(data.tables).map(([k, t]) => [k, t.schema]));
  const local = CASES.filter((c) => compilePrql(c.prql, schemas).value!.plan.rowLocal);
  assert.ok(local.length >= 10, `only ${local.length} row-local cases`);
  for (const c of local) {
    Deno.test(`execute() agrees with DuckDB slice by slice over 150,000 rows on \`${c.prql}\``, () =>
      agree(c, sliced, db));
  }
}

for (const [what, seed, n, options, queries] of DATASETS) {
  const data = makeDataset(seed, n, options);
  const db = await loadDuckDb(data);
  const cases = Array.from({ length: queries }, (_, i) => generate(seed * 1000 + i));
  cases.push(...TOP_CASES);
  if (n >= 32_768) cases.push(...LARGE_CASES);
  for (const c of cases) {
    Deno.test(`execute() agrees with DuckDB over ${what} on \`${c.prql}\``, () =>
      agree(c, data, db));
  }
}
