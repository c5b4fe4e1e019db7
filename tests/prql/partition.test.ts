/**
 * The hash-partitioned external run of group and distinct (`externalGroupOf`): over input
 * pushed in batches with a run size far below the input, it spills the input into parts by
 * key hash and gives exactly the rows, in exactly the order, of running the query over all of
 * it at once (NULL, NaN, -0 and non-ASCII keys, duplicate keys, steps after the group), and
 * leaves no spill file behind. What it compares against is the in-memory engine, which the
 * oracle tests hold to DuckDB. Queries it cannot partition are refused (null).
 */
import { strict as assert } from "node:assert";
import * as arrow from "apache-arrow";
import { compilePrql, execute, externalGroupOf } from "../../runtime/prql/mod.ts";
import { makeDataset, plainArrow } from "./_fixtures.ts";

function files(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch {
    return [];
  }
}

const QUERIES = [
  "from input | group {name} (aggregate {n = count this, s = sum amount, hi = max ts})",
  "from input | filter amount > 0 | group {user_id, flag} (aggregate {c = count_distinct name, a = average amount}) | sort {-a, user_id} | take 50",
  "from input | derive {u = user_id, k = qty * 2} | group {u, name} (aggregate {t = sum k, lo = min d})",
  "from input | group {amount} (aggregate {n = count this}) | filter n > 1",
  "from input | group {name} (take 1)",
  "from input | group {user_id} (sort {-amount, ts} | take 2) | select {user_id, amount, name}",
  "from input | select {name, flag} | group {name, flag} (take 1)",
  "from input | sort {amount} | group {name} (take 1)",
  "from input | group {user_id, name} (aggregate {n = count this}) | group {user_id} (aggregate {m = max n})",
];

for (
  const [seed, opts] of [[3, { unicode: true, specials: true }], [4, { duplicates: true }]] as const
) {
  const ds = makeDataset(seed, 8_000, opts);
  const input = ds.tables.input;
  const schemas = { input: input.schema };
  for (const text of QUERIES) {
    Deno.test(`externalGroupOf() spills \`${text}\` by key and gives its exact output (seed ${seed})`, () => {
      const r = compilePrql(text, schemas);
      assert.deepEqual(r.diagnostics, []);
      const q = r.value!;
      const dir = Deno.makeTempDirSync({ prefix: "heddle-part-test-" });
      try {
        const op = externalGroupOf(q, { runBytes: 30_000, dir, batchRows: 333, partitions: 7 });
        assert.ok(op, "not partitionable");
        let released = 0, pushed = 0;
        for (let at = 0; at < input.numRows; at += 900) {
          op.push(input.slice(at, at + 900), () => released++);
          pushed++;
        }
        const out = [...op.finish()];
        assert.ok(op.runs > 3, `only ${op.runs} spills`);
        assert.equal(released, pushed);
        assert.ok(out.every((t) => t.numRows <= 333));
        const got = plainArrow(new arrow.Table(out.flatMap((t) => t.batches)));
        const want = plainArrow(execute(q, { input }));
        assert.ok(want.length > 0);
        assert.equal(got.length, want.length);
        const at = got.findIndex((row, i) => JSON.stringify(row) !== JSON.stringify(want[i]));
        assert.equal(
          at,
          -1,
          `row ${at}: ${JSON.stringify(got[at])} vs ${JSON.stringify(want[at])}`,
        );
        assert.deepEqual(files(dir), []);
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    });
  }
}

Deno.test("externalGroupOf() runs in memory when the input fits, and removes files when stopped early", () => {
  const input = makeDataset(5, 3_000).tables.input;
  const q = compilePrql("from input | group {name} (aggregate {n = count this})", {
    input: input.schema,
  }).value!;
  const dir = Deno.makeTempDirSync({ prefix: "heddle-part-test-" });
  try {
    const fits = externalGroupOf(q, { runBytes: 1 << 30, dir, batchRows: 100 })!;
    fits.push(input);
    assert.deepEqual(
      plainArrow(new arrow.Table([...fits.finish()].flatMap((t) => t.batches))),
      plainArrow(execute(q, { input })),
    );
    assert.equal(fits.runs, 0);
    const stopped = externalGroupOf(q, { runBytes: 10_000, dir, batchRows: 100 })!;
    for (let at = 0; at < input.numRows; at += 500) stopped.push(input.slice(at, at + 500));
    assert.ok(files(dir).length > 0);
    stopped.dispose();
    assert.deepEqual(files(dir), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("externalGroupOf() is null for queries it cannot partition by an input column", () => {
  const ds = makeDataset(6, 100);
  const schemas = { input: ds.tables.input.schema, users: ds.tables.users.schema };
  for (
    const text of [
      "from input | derive {k = user_id % 7} | group {k} (aggregate {n = count this})",
      "from input | aggregate {n = count this}",
      "from input | join users (==user_id) | group {country} (aggregate {n = count this})",
      "from input | sort {amount}",
    ]
  ) {
    const r = compilePrql(text, schemas);
    assert.deepEqual(r.diagnostics, [], text);
    assert.equal(
      externalGroupOf(r.value!, { runBytes: 1, dir: "/nonexistent", batchRows: 1 }),
      null,
      text,
    );
  }
});
