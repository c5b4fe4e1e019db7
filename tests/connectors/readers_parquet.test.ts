/**
 * `format: "parquet"` for `fhub/file`: round trips through the sink and the source, files
 * exchanged with pyarrow both ways (row groups, dictionary-encoded strings, projection), and
 * the refusals: a declared type the file does not have, a column it does not have.
 */
import assert from "node:assert/strict";
import { ConnectorError } from "../../runtime/connectors/mod.ts";
import { inTempDir, openSink, readFile } from "./_readers.ts";

async function python(code: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("python3", { args: ["-c", code, ...args] }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

const LINES = [
  '{"id": 9007199254740993, "name": "Zoë", "amount": 1.25}',
  '{"id": -3, "name": null, "amount": 2.5}',
  '{"id": 7, "name": "a,\\"b\\"", "amount": null}',
];

Deno.test("parquet written by the sink reads back exactly, and pyarrow reads the same", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/in.jsonl`, LINES.join("\n") + "\n");
    const input = await readFile(dir, { path: "in.jsonl", format: "jsonl" });
    const sink = await openSink(dir, { path: "out.parquet", format: "parquet" });
    for (const b of input.batches) await sink.write(b.table, new AbortController().signal);
    await sink.flush();
    const back = await readFile(dir, { path: "out.parquet", format: "parquet" }, { batchRows: 2 });
    assert.deepEqual(back.rows, input.rows);
    assert.deepEqual(back.types, { id: "Int64", name: "Utf8", amount: "Float64" });
    const seen = await python(
      `import json, sys, pyarrow.parquet as pq
print(json.dumps({k: [str(x) if isinstance(x, int) else x for x in v]
                  for k, v in pq.read_table(sys.argv[1]).to_pydict().items()}))`,
      `${dir}/out.parquet`,
    );
    assert.deepEqual(JSON.parse(seen), {
      id: ["9007199254740993", "-3", "7"],
      name: ["Zoë", null, 'a,"b"'],
      amount: [1.25, 2.5, null],
    });
  });
});

Deno.test("a pyarrow parquet file is read by row group, projected, strings undictionaried", async () => {
  await inTempDir(async (dir) => {
    await python(
      `import sys, pyarrow as pa, pyarrow.parquet as pq
n = 10000
t = pa.table({"k": pa.array(range(n), pa.int32()),
              "city": pa.array([["Oslo", "Lyon", None][i % 3] for i in range(n)]).dictionary_encode(),
              "big": pa.array([2**62 + i for i in range(n)], pa.int64())})
pq.write_table(t, sys.argv[1], row_group_size=3000)`,
      `${dir}/py.parquet`,
    );
    const all = await readFile(dir, { path: "py.parquet", format: "parquet" }, { batchRows: 1024 });
    assert.deepEqual(all.types, { k: "Int32", city: "Utf8", big: "Int64" });
    assert.equal(all.rows.length, 10000);
    assert.deepEqual(all.rows[9999], { k: 9999, city: "Oslo", big: 2n ** 62n + 9999n });
    assert.deepEqual(all.rows.slice(0, 3).map((r) => r.city), ["Oslo", "Lyon", null]);
    assert.ok(all.batches.every((b) => b.table.numRows <= 1024));
    assert.deepEqual(all.batches.map((b) => b.position).at(-1), 10000);

    const some = await readFile(dir, { path: "py.parquet", format: "parquet", columns: ["big"] }, {
      resumeAfter: 9998,
    });
    assert.deepEqual(some.rows, [{ big: 2n ** 62n + 9998n }, { big: 2n ** 62n + 9999n }]);

    await assert.rejects(
      readFile(dir, { path: "py.parquet", format: "parquet" }, {
        schema: [{ name: "k", type: { kind: "primitive", name: "int64" }, nullable: false }],
      }),
      (e: unknown) =>
        e instanceof ConnectorError &&
        /column `k` of `.*py\.parquet` is Int32, the step declares Int64/.test(e.message),
    );
    await assert.rejects(
      readFile(dir, { path: "py.parquet", format: "parquet", columns: ["nope"] }),
      /has no column `nope`/,
    );
    await Deno.writeTextFile(`${dir}/bad.parquet`, "not parquet");
    await assert.rejects(
      readFile(dir, { path: "bad.parquet", format: "parquet" }),
      /cannot read Parquet file `.*bad\.parquet`/,
    );
  });
});
