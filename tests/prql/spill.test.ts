/**
 * The external sort (`externalSortOf`): over input pushed in batches with a run size far
 * below the input, it spills several runs and merges them into exactly the rows, in exactly
 * the order, that sorting everything at once gives (ties, NULLs, NaN and non-ASCII text
 * included), releases every input batch, and leaves no spill file behind, also when the
 * reader stops early. Queries that do more than sort are not sorted externally.
 */
import { strict as assert } from "node:assert";
import * as arrow from "apache-arrow";
import { compilePrql, execute, externalSortOf } from "../../runtime/prql/mod.ts";
import { makeDataset, plainArrow } from "./_fixtures.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const ds = makeDataset(21, 6_000, { unicode: true, specials: true });
const input = ds.tables.input;
const schemas = { input: input.schema };

function compile(text: string) {
  const r = compilePrql(text, schemas);
  assert.deepEqual(r.diagnostics, []);
  return r.value!;
}

/** The input cut into batches of `rows` rows, as a stage receives it. */
function batches(rows: number): arrow.Table[] {
  const out: arrow.Table[] = [];
  for (let at = 0; at < input.numRows; at += rows) out.push(input.slice(at, at + rows));
  return out;
}

/** The spill directory of a `heddle run` whose TMPDIR is `tmp`. */
const spillDir = (tmp: string) => `${tmp}/heddle-spill-${Deno.uid()}`;

function files(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch {
    return [];
  }
}

for (
  const text of [
    "from input | sort {-amount}",
    "from input | sort {name, -ts} | select {name, ts, user_id, amount}",
    "from input | sort {flag, -user_id, d}",
    // Row-by-row steps before the sort run over each run as well.
    "from input | filter qty > 0 | sort {amount}",
    'from input | derive {x = qty + 1, n = name ?? "-"} | filter amount > 0 | sort {-x, n}',
  ]
) {
  Deno.test(`externalSortOf() spills runs and merges them into \`${text}\`'s exact output`, () => {
    const q = compile(text);
    const dir = Deno.makeTempDirSync({ prefix: "heddle-spill-test-" });
    try {
      const sort = externalSortOf(q, { runBytes: 20_000, dir, batchRows: 1000, chunkRows: 300 });
      assert.ok(sort);
      let released = 0;
      const parts = batches(700);
      for (const b of parts) sort.push(b, () => released++);
      const out = [...sort.finish()];
      assert.ok(sort.runs > 3, `only ${sort.runs} runs spilled`);
      assert.equal(released, parts.length);
      assert.equal(sort.rows, input.numRows);
      assert.ok(out.every((t) => t.numRows <= 1000));
      const merged = plainArrow(new arrow.Table(out.flatMap((t) => t.batches)));
      const whole = plainArrow(execute(q, { input }));
      assert.equal(merged.length, whole.length);
      const at = merged.findIndex((r, i) => JSON.stringify(r) !== JSON.stringify(whole[i]));
      assert.equal(at, -1, `row ${at}: ${merged[at]} vs ${whole[at]}`);
      assert.deepEqual(files(dir), []);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
}

Deno.test("externalSortOf() removes its spill files when the reader stops early", () => {
  const dir = Deno.makeTempDirSync({ prefix: "heddle-spill-test-" });
  try {
    const sort = externalSortOf(compile("from input | sort {qty}"), {
      runBytes: 20_000,
      dir,
      batchRows: 100,
    })!;
    for (const b of batches(500)) sort.push(b);
    assert.ok(files(dir).length > 0, "nothing spilled");
    for (const _ of sort.finish()) break;
    assert.deepEqual(files(dir), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("externalSortOf() sorts in memory when the input fits one run", () => {
  const dir = `${Deno.makeTempDirSync({ prefix: "heddle-spill-test-" })}/never`;
  const q = compile("from input | sort {-amount}");
  const sort = externalSortOf(q, { runBytes: 1 << 30, dir, batchRows: 4096 })!;
  for (const b of batches(1000)) sort.push(b);
  const out = [...sort.finish()];
  assert.equal(sort.runs, 0);
  assert.deepEqual(out.map((t) => t.numRows), [4096, 1904]);
  assert.deepEqual(files(dir), []);
});

Deno.test("externalSortOf() is null for queries that do more than filter, derive, sort and select", () => {
  const opts = { runBytes: 1, dir: "/nonexistent", batchRows: 1 };
  for (
    const text of [
      "from input | select {amount}",
      "from input | sort {amount} | take 5",
      "from input | sort {amount} | select {qty}",
      "from input | sort {amount} | filter qty > 0",
      "from input | derive {s = sum amount} | sort {s}",
    ]
  ) {
    assert.equal(externalSortOf(compile(text), opts), null, text);
  }
});

/** `heddle run` of a sort over `rows` JSONL rows in `dir`, with extra Deno and CLI flags. */
async function runSort(dir: string, rows: number, deno: string[], cli: string[]) {
  const lines = Array.from(
    { length: rows },
    (_, k) => JSON.stringify({ id: k, amount: ((k * 7919) % 10_007) / 10, name: `m-${k % 97}` }),
  );
  await Deno.writeTextFile(`${dir}/in.jsonl`, lines.join("\n") + "\n");
  await Deno.writeTextFile(
    `${dir}/sort.he`,
    `import "fhub/file" file

workflow Sort {
  file.read { path: "in.jsonl", format: "jsonl" }: { id: int64, amount: float64, name: utf8 }
  | (from input | sort {-amount, name})
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...deno, `${ROOT}cli/main.ts`, "run", "sort.he", ...cli],
    cwd: dir,
    env: { TMPDIR: dir },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr).slice(-2000));
  const got = (await Deno.readTextFile(`${dir}/out.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l) as { id: number; amount: number; name: string });
  assert.equal(got.length, rows);
  assert.deepEqual(new Set(got.map((r) => r.id)).size, rows);
  for (let i = 1; i < got.length; i++) {
    const a = got[i - 1], b = got[i];
    const ordered = a.amount > b.amount ||
      (a.amount === b.amount && (a.name < b.name || (a.name === b.name && a.id < b.id)));
    assert.ok(ordered, `rows ${i - 1} and ${i} are out of order: ${lines[a.id]} ${lines[b.id]}`);
  }
  assert.deepEqual(files(spillDir(dir)), []);
}

Deno.test("heddle run sorts more rows than its memory budget holds, in order, leaving no spill file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "heddle-spill-run-" });
  try {
    await runSort(dir, 120_000, [], ["--memory-budget", "1000000"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Issue 11: every output batch of a blocking stage carried every input origin, and the file
// sink released them all at once (batches x origins references: 1.3 GiB after 10M rows). The
// fixed run needs under 64 MiB of heap here; the old one needed over 288 MiB.
Deno.test("heddle run's heap stays bounded when a sort emits thousands of batches into a file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "heddle-spill-run-" });
  try {
    await runSort(dir, 60_000, ["--v8-flags=--max-old-space-size=128"], [
      "--memory-budget",
      "4000000",
      "--batch-rows",
      "10",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("heddle run groups, distincts, windows and aggregates more rows than its memory budget, exactly as in memory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "heddle-spill-run-" });
  try {
    const lines = Array.from({ length: 80_000 }, (_, k) =>
      JSON.stringify({
        id: k,
        amount: ((k * 7919) % 10_007) / 10,
        name: k % 11 === 0 ? null : `m-${(k * 31) % 4_999}-é`,
      }));
    await Deno.writeTextFile(`${dir}/in.jsonl`, lines.join("\n") + "\n");
    await Deno.writeTextFile(
      `${dir}/group.he`,
      `import "fhub/file" file

workflow Group {
  file.read { path: "in.jsonl", format: "jsonl" }: { id: int64, amount: float64, name: utf8? }
  | (from input | filter amount > 5.0 | group {name} (aggregate {n = count this, total = sum amount, first = min id}))
  | file.write { path: "groups.jsonl", format: "jsonl" }
}

workflow Distinct {
  file.read { path: "in.jsonl", format: "jsonl" }: { id: int64, amount: float64, name: utf8? }
  | (from input | group {name} (sort {-amount} | take 1))
  | file.write { path: "distinct.jsonl", format: "jsonl" }
}

workflow Computed {
  file.read { path: "in.jsonl", format: "jsonl" }: { id: int64, amount: float64, name: utf8? }
  | (from input | derive {bucket = id % 3001, big = amount > 500.0} | group {bucket, big} (aggregate {n = count this, top = max name}))
  | file.write { path: "computed.jsonl", format: "jsonl" }
}

workflow Window {
  file.read { path: "in.jsonl", format: "jsonl" }: { id: int64, amount: float64, name: utf8? }
  | (from input | group {name} (sort {-amount, id} | window rows:-1..1 (derive {r = row_number this, s = sum amount})) | filter r <= 5)
  | file.write { path: "window.jsonl", format: "jsonl" }
}

workflow Whole {
  file.read { path: "in.jsonl", format: "jsonl" }: { id: int64, amount: float64, name: utf8? }
  | (from input | derive {total = sum amount, n = count this, top = max amount} | derive {share = amount / total})
  | file.write { path: "whole.jsonl", format: "jsonl" }
}

workflow Total {
  file.read { path: "in.jsonl", format: "jsonl" }: { id: int64, amount: float64, name: utf8? }
  | (from input | filter amount > 5.0 | aggregate {n = count this, total = sum amount, a = average amount, lo = min name, hi = max id})
  | file.write { path: "total.jsonl", format: "jsonl" }
}
`,
    );
    // Spill files seen while the run went on (they live from the first spill to the end).
    const seen = new Set<string>();
    const run = async (workflow: string, budget: string[]) => {
      const watch = setInterval(() => {
        for (const f of files(spillDir(dir))) seen.add(f.replace(/-\d+\.arrow$/, ""));
      }, 5);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}cli/main.ts`, "run", "group.he", "-w", workflow, ...budget],
        cwd: dir,
        env: { TMPDIR: dir },
        stdout: "piped",
        stderr: "piped",
      }).output().finally(() => clearInterval(watch));
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr).slice(-2000));
    };
    const cases = [
      ["Group", "groups.jsonl", 3_000, "heddle-part-"],
      ["Distinct", "distinct.jsonl", 3_000, "heddle-part-"],
      ["Computed", "computed.jsonl", 3_000, "heddle-part-"],
      ["Window", "window.jsonl", 3_000, "heddle-part-"],
      // A window over the whole input: every row gets the total of all of them.
      ["Whole", "whole.jsonl", 80_000, "heddle-rows-"],
      // Folded batch by batch: nothing to spill.
      ["Total", "total.jsonl", 1, null],
    ] as const;
    for (const [workflow, file, lines, prefix] of cases) {
      await run(workflow, []);
      assert.equal(seen.size, 0, "the unbounded run spilled");
      const free = await Deno.readTextFile(`${dir}/${file}`);
      await Deno.remove(`${dir}/${file}`);
      await run(workflow, ["--memory-budget", "1000000"]);
      const bounded = await Deno.readTextFile(`${dir}/${file}`);
      assert.ok(free.trim().split("\n").length >= lines, `${workflow}: ${free.slice(0, 200)}`);
      assert.equal(bounded, free, workflow);
      if (prefix) {
        assert.ok([...seen].some((f) => f.startsWith(prefix)), `${workflow} did not spill`);
      } else assert.equal(seen.size, 0, `${workflow} spilled`);
      if (workflow === "Whole") {
        // Before, a whole-input window was computed batch by batch (n = the batch's rows).
        const n = new Set(free.trim().split("\n").map((l) => JSON.parse(l).n));
        assert.deepEqual([...n], [80_000]);
      }
      seen.clear();
      assert.deepEqual(files(spillDir(dir)), []);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
