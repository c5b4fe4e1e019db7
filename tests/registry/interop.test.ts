/**
 * Python must read what Deno writes and Deno must adopt what Python writes, zero-copy and
 * with the same schema fingerprint. These tests run the real python3 with pyarrow on real
 * segments, following the recipe in docs/registry.md (`_interop.py`).
 */

import assert from "node:assert/strict";
import {
  Bool,
  DateDay,
  Field,
  Float64,
  Int32,
  Int64,
  List,
  Struct,
  Table,
  TimestampMillisecond,
  Utf8,
  vectorFromArray,
} from "apache-arrow";
import type { ObjectHandle } from "../../runtime/registry/mod.ts";
import { withRegistry } from "./_fixture.ts";

const script = new URL("./_interop.py", import.meta.url).pathname;

async function python(...args: string[]): Promise<unknown> {
  const output = await new Deno.Command("python3", { args: [script, ...args] }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `python3 failed: ${stderr}`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

const day = 24 * 3600 * 1000;
const ids = [1, null, 3];
const bigs = [10n, 20n, null];
const scores = [0.25, null, -8];
const names = ["ada", "grace", null];
const flags = [true, false, null];
const days = [new Date(0), null, new Date(19_000 * day)];
const stamps = [1_700_000_000_000, 5, null];
const lists = [[1, 2], null, []];
const records = [{ x: 1.5, y: "a" }, null, { x: null, y: "c" }];

function denoTable(): Table {
  return new Table({
    id: vectorFromArray(ids, new Int32()),
    big: vectorFromArray(bigs, new Int64()),
    score: vectorFromArray(scores, new Float64()),
    name: vectorFromArray(names, new Utf8()),
    flag: vectorFromArray(flags, new Bool()),
    day: vectorFromArray(days, new DateDay()),
    at: vectorFromArray(stamps, new TimestampMillisecond("UTC")),
    list: vectorFromArray(lists, new List(new Field("item", new Int32(), true))),
    record: vectorFromArray(
      records,
      new Struct([new Field("x", new Float64(), true), new Field("y", new Utf8(), true)]),
    ),
  });
}

/** What pyarrow's to_pylist() gives for `denoTable()`, after `_interop.py`'s isoformat. */
function expectedPythonRows(): unknown[] {
  return ids.map((_, i) => ({
    id: ids[i],
    big: bigs[i] === null ? null : Number(bigs[i]),
    score: scores[i],
    name: names[i],
    flag: flags[i],
    day: days[i]?.toISOString().slice(0, 10) ?? null,
    at: stamps[i] === null ? null : new Date(stamps[i]!).toISOString().replace("Z", "+00:00"),
    list: lists[i],
    record: records[i],
  }));
}

function checkPythonRead(result: unknown, handle: ObjectHandle): void {
  const read = result as { fingerprint: string; zeroCopy: boolean; rows: unknown[] };
  assert.equal(read.fingerprint, handle.schemaFingerprint, "Python computes the same fingerprint");
  assert.equal(read.zeroCopy, true, "pyarrow's column buffer lies inside the mapping");
  assert.deepEqual(read.rows, expectedPythonRows());
}

Deno.test("python3 reads a segment written by Deno, zero-copy, with the same fingerprint", async () => {
  await withRegistry({}, async (registry) => {
    const handle = registry.put(denoTable(), 1);
    const result = await python(
      "read",
      handle.segment,
      String(handle.offset),
      String(handle.length),
    );
    checkPythonRead(result, handle);
  });
});

Deno.test("python3 reads a spilled object from its spill file", async () => {
  await withRegistry({ memoryBudget: 1 }, async (registry) => {
    const { id } = registry.put(denoTable(), 1);
    assert.equal(registry.state(id), "spilled");
    const handle = registry.handle(id);
    checkPythonRead(
      await python("read", handle.segment, String(handle.offset), String(handle.length)),
      handle,
    );
  });
});

Deno.test("Deno adopts and reads a segment that python3 wrote in place", async () => {
  await withRegistry({}, async (registry, place) => {
    const name = `/${place.prefix}-${Deno.pid}-py-1`;
    const written = await python("write", name) as ObjectHandle;
    const handle = registry.adopt(written, 1);
    using lease = registry.open(handle);
    assert.deepEqual(
      lease.table.toArray().map((row) => row.toJSON()).map((row) => ({
        ...row,
        tags: row.tags === null ? null : Array.from(row.tags),
      })),
      [
        { id: 1n, name: "ada", score: 0.5, ok: true, tags: ["x"] },
        { id: 2n, name: null, score: 1.5, ok: null, tags: [] },
        { id: null, name: "grace", score: null, ok: false, tags: null },
      ],
    );
    const values = lease.table.getChild("score")!.data[0].values;
    assert.equal(values.buffer, lease.bytes.buffer, "read zero-copy from Python's segment");
  });
});
