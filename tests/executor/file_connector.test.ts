/**
 * `fhub/file` on its own, through the connector interfaces: round trips in every format,
 * CSV quoting, typing by the compiler's columns, and the atomic rename of written files.
 */
import assert from "node:assert/strict";
import {
  builtinConnectors,
  type ConnectorContext,
  rowsOf,
  type Sink,
  type Source,
  type SourceBatch,
} from "../../runtime/connectors/mod.ts";

const connectors = builtinConnectors();

function ctx(dir: string, config: Record<string, unknown>, extra: Partial<ConnectorContext> = {}) {
  return {
    config,
    resources: {},
    schema: null,
    batchRows: 3,
    resumeAfter: null,
    baseDir: dir,
    workflow: "T",
    ...extra,
  };
}

async function readAll(dir: string, config: Record<string, unknown>, extra = {}) {
  const f = connectors.get("fhub/file.read")!;
  assert.equal(f.role, "source");
  const source = await f.open(ctx(dir, config, extra)) as Source;
  const batches: SourceBatch[] = [];
  for await (const b of source.batches(new AbortController().signal)) batches.push(b);
  await source.close();
  return { source, batches, rows: batches.flatMap((b) => rowsOf(b.table)) };
}

async function writeAll(dir: string, config: Record<string, unknown>, batches: SourceBatch[]) {
  const sink = await connectors.get("fhub/file.write")!.open(ctx(dir, config)) as Sink;
  for (const b of batches) await sink.write(b.table, new AbortController().signal);
  return sink;
}

Deno.test("file.read and file.write round-trip rows through csv, jsonl and arrow", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const text =
      'id,name,score\n1,"Smith, Ann",1.5\n2,"say ""hi""",2\n3,"two\nlines",\n4,plain,4.25\n';
    Deno.writeTextFileSync(`${dir}/in.csv`, text);
    const input = await readAll(dir, { path: "in.csv", format: "csv" });
    assert.deepEqual(input.rows, [
      { id: 1, name: "Smith, Ann", score: 1.5 },
      { id: 2, name: 'say "hi"', score: 2 },
      { id: 3, name: "two\nlines", score: null },
      { id: 4, name: "plain", score: 4.25 },
    ]);
    assert.deepEqual(input.batches.map((b) => b.position), [3, 4]);
    for (const format of ["csv", "jsonl", "arrow"]) {
      const sink = await writeAll(dir, { path: `out.${format}`, format }, input.batches);
      await sink.flush();
      const back = await readAll(dir, { path: `out.${format}`, format });
      assert.deepEqual(back.rows, input.rows, format);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("file.read types columns the compiler pinned and reports rows that do not fit", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(
      `${dir}/in.jsonl`,
      '{"a": 1, "b": "x"}\n{"a": "one"}\nnot json\n{"a": 3}\n',
    );
    const { batches, rows } = await readAll(dir, { path: "in.jsonl", format: "jsonl" }, {
      schema: [{ name: "a", type: { kind: "primitive", name: "float64" }, nullable: false }],
    });
    assert.deepEqual(rows, [{ a: 1, b: "x" }, { a: 3, b: null }]);
    assert.equal(String(batches[0].table.schema.fields[0].type), "Float64");
    const errors = batches.flatMap((b) => b.errors);
    assert.deepEqual(errors.map((e) => e.record), [1, 2]);
    assert.match(errors[0].message, /record 2: column `a`: expected Float64, found text: .*"one"/);
    assert.match(errors[1].message, /record 3: invalid JSON/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("file.write shows the file only after flush and leaves nothing after abort", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/in.jsonl`, '{"a": 1}\n{"a": 2}\n');
    const { batches } = await readAll(dir, { path: "in.jsonl", format: "jsonl" });
    const kept = await writeAll(dir, { path: "kept.jsonl", format: "jsonl" }, batches);
    assert.throws(() => Deno.statSync(`${dir}/kept.jsonl`));
    await kept.flush();
    assert.equal(Deno.readTextFileSync(`${dir}/kept.jsonl`), '{"a":1}\n{"a":2}\n');
    const dropped = await writeAll(dir, { path: "dropped.jsonl", format: "jsonl" }, batches);
    await dropped.abort();
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "in.jsonl",
      "kept.jsonl",
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
