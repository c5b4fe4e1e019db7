/**
 * Window functions against the DuckDB oracle: ranking, lag/lead and framed aggregates per
 * partition, over datasets with NULLs, NaN/-0/infinities, duplicate keys, non-ASCII text and
 * an empty input. Rows compare as multisets (a window keeps the input's rows). Frames that
 * depend on the order of peers (rows, lag, lead, row_number) sort by a unique `id`, since
 * DuckDB orders peers arbitrarily; rank and whole-partition aggregates need no such key.
 * Constructs the engine does not compute are refused with HE0701.
 */
import { strict as assert } from "node:assert";
import * as arrow from "apache-arrow";
import { compilePrql, execute, PRQL_UNSUPPORTED } from "../../runtime/prql/mod.ts";
import {
  canonical,
  type Dataset,
  type DatasetOptions,
  duckRows,
  loadDuckDb,
  makeDataset,
  plainArrow,
} from "./_fixtures.ts";

/** A dataset whose input also has a unique `id` (a total order for frames over peers). */
function withIds(seed: number, n: number, o: DatasetOptions): Dataset {
  const ds = makeDataset(seed, n, o);
  const input = ds.tables.input;
  const cols: Record<string, arrow.Vector> = {};
  for (const f of input.schema.fields) cols[f.name] = input.getChild(f.name)!;
  // Ids in a shuffled order, so that sorting by id is not the input order.
  cols.id = arrow.vectorFromArray(
    Array.from({ length: n }, (_, i) => (i * 7919) % 100_003),
    new arrow.Int32(),
  );
  return {
    tables: { ...ds.tables, input: new arrow.Table(cols) },
    ddl: { ...ds.ddl, input: [...ds.ddl.input, "INTEGER"] },
  };
}

const CASES = [
  "from input | group {user_id} (derive {s = sum amount, c = count this, n = count qty, a = average qty, lo = min ts, hi = max amount})",
  "from input | derive {total = sum amount, top = max d, rows = count this}",
  "from input | group {user_id} (sort {ts, id} | derive {rn = row_number this, r = rank ts, l = lag 1 amount, ld = lead 2 name})",
  "from input | group {name} (sort {-amount} | derive {r = rank amount, dr = rank_dense amount})",
  "from input | group {user_id, flag} (sort {id} | window rows:-2..1 (derive {s = sum amount, c = count amount, lo = min amount, a = average qty}))",
  "from input | sort {d, id} | window expanding:true (derive {s = sum qty, hi = max d, lo = min amount})",
  "from input | group {flag} (sort {-id} | window rows:0.. (derive {s = sum qty, c = count this, hi = max ts}))",
  "from input | group {name} (sort {id} | window rolling:4 (derive {a = average amount, l = lag 3 d}))",
  "from input | group {user_id} (sort {id} | window rows:1..3 (derive {s = sum amount, c = count this}))",
  "from input | group {user_id} (sort {id} | derive {prev = lag 1 amount}) | filter prev != null | derive {delta = amount - prev}",
  "from input | filter amount > 0 | group {name} (sort {amount, id} | derive {r = row_number this}) | filter r <= 2",
];

const DATASETS: [string, DatasetOptions, number][] = [
  ["NULLs", {}, 300],
  ["NaN, -0 and infinities, non-ASCII text", { specials: true, unicode: true }, 300],
  ["duplicate keys", { duplicates: true }, 300],
  ["an empty input", {}, 0],
];

for (const [what, opts, n] of DATASETS) {
  const ds = withIds(11, n, opts);
  const conn = await loadDuckDb(ds);
  const schemas = Object.fromEntries(Object.entries(ds.tables).map(([k, t]) => [k, t.schema]));
  for (const text of CASES) {
    Deno.test(`execute() agrees with DuckDB over ${what} on \`${text}\``, async () => {
      const r = compilePrql(text, schemas);
      assert.deepEqual(r.diagnostics, []);
      const mine = plainArrow(execute(r.value!, ds.tables));
      const theirs = await duckRows(conn, r.value!.sql);
      assert.equal(mine.length, theirs.length, "row count");
      const a = canonical(mine), b = canonical(theirs);
      const at = a.findIndex((x, i) => x !== b[i]);
      assert.equal(at, -1, `rows differ first at ${at}: ${a[at]} vs DuckDB's ${b[at]}`);
    });
  }
}

Deno.test("window constructs the engine does not compute are refused with HE0701", () => {
  const schemas = { input: withIds(1, 10, {}).tables.input.schema };
  for (
    const text of [
      "from input | group {user_id} (sort {ts} | window range:-2..2 (derive {s = sum amount}))",
      "from input | group {user_id} (sort {ts} | derive {f = first amount})",
      "from input | group {user_id} (sort {id} | window rolling:3 (derive {m = max name}))",
      "from input | group {user_id} (derive {c = count_distinct name})",
    ]
  ) {
    const r = compilePrql(text, schemas);
    assert.equal(r.value, null, text);
    assert.deepEqual(r.diagnostics.map((d) => d.code), [PRQL_UNSUPPORTED], text);
  }
});
