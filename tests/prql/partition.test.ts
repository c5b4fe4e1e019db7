/**
 * The external run of group, distinct, windows and keyless aggregates (`externalGroupOf`):
 * over input pushed in batches with a run size far below the input, it spills the rows into
 * parts by the hash of the keys (plain or computed columns, after filters, derives and joins
 * with a lookup given per batch), or folds a keyless aggregate batch by batch, and gives
 * exactly the rows, in exactly the order, of running the query over all of it at once (NULL,
 * NaN, -0 and non-ASCII keys, duplicate keys, steps after the split, an empty input), releases
 * every batch and leaves no spill file behind. What it compares against is the in-memory
 * engine, which the oracle tests hold to DuckDB. Queries it cannot split are refused (null).
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
  // Computed keys.
  "from input | derive {k = user_id % 7} | group {k} (aggregate {n = count this, s = sum amount})",
  'from input | derive {k = name ?? "none", w = amount * 2.0} | group {k, flag} (take 1)',
  // Joins with a lookup before the split (the lookup is given with each batch).
  "from input | join users (==user_id) | group {country} (aggregate {n = count this, s = sum amount, hi = max score})",
  "from input | join side:left users (==user_id) | filter amount > 0 | group {country, flag} (aggregate {n = count this}) | sort {-n, country}",
  "from input | join side:left users (==user_id) | derive {k = score ?? 0.0} | group {k} (sort {ts} | take 1)",
  // Windows partitioned by a key, and what follows them row by row.
  "from input | group {user_id} (sort {ts} | derive {rn = row_number this, prev = lag 1 amount})",
  "from input | group {name} (sort {-amount} | window rows:-2..0 (derive {s = sum amount, c = count this})) | filter c > 1 | derive {x = s * 2.0}",
  "from input | group {user_id, flag} (derive {total = sum amount, lo = min d})",
  "from input | join side:left users (==user_id) | group {country} (sort {ts} | window expanding:true (derive {run = sum amount}))",
  "from input | group {name} (sort {ts} | derive {r = rank ts}) | sort {r, ts} | take 30",
  // Windows over the whole input: folded, the rows spilled in order and given the values.
  "from input | derive {total = sum amount, n = count this, c = count qty, a = average qty, lo = min d, hi = max amount}",
  "from input | filter amount > 0 | join side:left users (==user_id) | derive {t = sum score} | derive {share = score / t} | filter amount > 100.0",
  // Aggregates without keys, folded batch by batch.
  "from input | aggregate {n = count this, c = count amount, s = sum amount, a = average qty, lo = min amount, hi = max name, t = max ts}",
  "from input | filter amount > 0 | join users (==user_id) | aggregate {n = count this, s = sum score, lo = min d} | derive {m = s / n}",
];

for (
  const [seed, opts] of [[3, { unicode: true, specials: true }], [4, { duplicates: true }]] as const
) {
  const ds = makeDataset(seed, 8_000, opts);
  const { input, users } = ds.tables;
  const schemas = { input: input.schema, users: users.schema };
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
          op.push(input.slice(at, at + 900), () => released++, { users });
          pushed++;
        }
        const out = [...op.finish()];
        // An aggregate without keys is folded, never spilled.
        if (!/\| aggregate/.test(text)) assert.ok(op.runs > 3, `only ${op.runs} spills`);
        assert.equal(released, pushed);
        assert.ok(out.every((t) => t.numRows <= 333));
        const got = plainArrow(new arrow.Table(out.flatMap((t) => t.batches)));
        const want = plainArrow(execute(q, { input, users }));
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

Deno.test("externalGroupOf() folds an aggregate without keys batch by batch, holding no batch", () => {
  const { input, users } = makeDataset(8, 5_000, { specials: true, unicode: true }).tables;
  const text = "from input | join side:left users (==user_id) | aggregate " +
    "{n = count this, s = sum amount, a = average amount, lo = min name, hi = max amount}";
  const q = compilePrql(text, { input: input.schema, users: users.schema }).value!;
  const op = externalGroupOf(q, { runBytes: 1, dir: "/nonexistent", batchRows: 10 })!;
  let released = 0, pushed = 0;
  for (let at = 0; at < input.numRows; at += 300) {
    op.push(input.slice(at, at + 300), () => released++, { users });
    assert.equal(released, ++pushed, "a batch was held after its push");
  }
  const got = plainArrow(new arrow.Table([...op.finish()].flatMap((t) => t.batches)));
  assert.equal(op.runs, 0);
  assert.deepEqual(got, plainArrow(execute(q, { input, users })));
});

Deno.test("externalGroupOf() gives the in-memory output of an empty input, and of one filtered out whole", () => {
  const ds = makeDataset(7, 2_000, { specials: true });
  const { input, users } = ds.tables;
  const schemas = { input: input.schema, users: users.schema };
  for (
    const text of [
      "from input | group {name} (aggregate {n = count this, s = sum amount})",
      "from input | aggregate {n = count this, s = sum amount, a = average amount, lo = min name}",
      "from input | group {user_id} (derive {r = row_number this})",
      "from input | group {name} (aggregate {n = count this}) | aggregate {groups = count this}",
      "from input | derive {s = sum amount, lo = min ts}",
    ]
  ) {
    const q = compilePrql(text, schemas).value!;
    for (const [what, data] of [["empty", input.slice(0, 0)], ["filtered", input]] as const) {
      const filtered = what === "filtered";
      const query = filtered
        ? compilePrql(text.replace("from input", "from input | filter amount > 1e300"), schemas)
          .value!
        : q;
      const dir = Deno.makeTempDirSync({ prefix: "heddle-part-test-" });
      try {
        const op = externalGroupOf(query, { runBytes: 1_000, dir, batchRows: 100 })!;
        for (let at = 0; at < Math.max(1, data.numRows); at += 500) {
          op.push(data.slice(at, at + 500), undefined, { users });
        }
        const got = plainArrow(new arrow.Table([...op.finish()].flatMap((t) => t.batches)));
        assert.deepEqual(
          got,
          plainArrow(execute(query, { input: data, users })),
          `${what}: ${text}`,
        );
        assert.deepEqual(files(dir), []);
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    }
  }
});

Deno.test("externalGroupOf() is null for queries it cannot split", () => {
  const ds = makeDataset(6, 100);
  const schemas = { input: ds.tables.input.schema, users: ds.tables.users.schema };
  for (
    const text of [
      // A distinct count needs every distinct value at once.
      "from input | aggregate {n = count_distinct name}",
      // A right join keeps lookup rows no batch matched; a join after the split reads its
      // lookup over the split's output, which no batch gives.
      "from input | join side:right users (==user_id) | group {country} (aggregate {n = count this})",
      "from input | group {user_id} (aggregate {n = count this}) | join users (==user_id)",
      // Windows over the whole input that need an order, and steps that are not row by row
      // before the split.
      "from input | derive {r = row_number this}",
      "from input | sort {d} | window expanding:true (derive {s = sum qty})",
      "from input | derive {s = sum amount} | sort {s}",
      "from input | sort {amount}",
      "from input | take 10 | group {name} (aggregate {n = count this})",
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
