/**
 * Behaviour of the registry within one process: round trips of many Arrow types, the
 * zero-copy guarantee, consumer counts and leases, spilling under a budget, and adoption of
 * segments written outside the registry. Every test runs in its own name prefix and checks
 * that nothing is left in /dev/shm or the spill directory.
 */

import assert from "node:assert/strict";
import {
  Bool,
  DateDay,
  DateMillisecond,
  Field,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  Int8,
  List,
  Null,
  Schema,
  Struct,
  Table,
  tableFromArrays,
  TimestampMicrosecond,
  TimestampMillisecond,
  Uint16,
  Uint32,
  Uint64,
  Uint8,
  Utf8,
  vectorFromArray,
} from "apache-arrow";
import {
  type Lease,
  type ObjectHandle,
  RegistryError,
  schemaFingerprint,
  SHM_DIR,
  writeSegment,
} from "../../runtime/registry/mod.ts";
import { leftovers, plain, withRegistry } from "./_fixture.ts";

function manyTypes(): Table {
  const day = 24 * 3600 * 1000;
  const items = new Field("item", new Int32(), true);
  const inner = [new Field("x", new Float64(), true), new Field("tag", new Utf8(), true)];
  return new Table({
    i8: vectorFromArray([1, -2, null, 127], new Int8()),
    i16: vectorFromArray([300, null, -300, 0], new Int16()),
    i32: vectorFromArray([1, 2, 3, null], new Int32()),
    i64: vectorFromArray([1n, -(2n ** 62n), null, 4n], new Int64()),
    u8: vectorFromArray([0, 255, 1, null], new Uint8()),
    u16: vectorFromArray([0, 65535, null, 2], new Uint16()),
    u32: vectorFromArray([null, 4294967295, 7, 8], new Uint32()),
    u64: vectorFromArray([2n ** 63n, null, 0n, 1n], new Uint64()),
    f32: vectorFromArray([1.5, null, -0.25, 3], new Float32()),
    f64: vectorFromArray([Math.PI, -1e300, null, Number.NaN], new Float64()),
    text: vectorFromArray(["alpha", null, "", "ünïcødé ✓"], new Utf8()),
    flag: vectorFromArray([true, false, null, true], new Bool()),
    nothing: vectorFromArray([null, null, null, null], new Null()),
    day: vectorFromArray([new Date(0), new Date(19000 * day), null, new Date(-day)], new DateDay()),
    ms: vectorFromArray([new Date(1), null, new Date(2e12), new Date(0)], new DateMillisecond()),
    ts: vectorFromArray([1_700_000_000_000, null, 0, 1], new TimestampMillisecond()),
    tsUtc: vectorFromArray([5, 6, null, 8], new TimestampMicrosecond("UTC")),
    list: vectorFromArray([[1, 2], [], null, [null, 4]], new List(items)),
    record: vectorFromArray(
      [{ x: 1.5, tag: "a" }, null, { x: null, tag: "c" }, { x: 4, tag: null }],
      new Struct(inner),
    ),
  });
}

function readBack(lease: Lease): unknown {
  return plain(lease.table.toArray());
}

Deno.test("put() then open() returns every Arrow type unchanged", async () => {
  await withRegistry({}, (registry) => {
    const table = manyTypes();
    const handle = registry.put(table, 1);
    assert.equal(handle.rows, 4);
    assert.equal(handle.schemaFingerprint, schemaFingerprint(table.schema));
    using lease = registry.open(handle);
    assert.deepEqual(readBack(lease), plain(table.toArray()));
    assert.equal(
      schemaFingerprint(lease.table.schema),
      schemaFingerprint(table.schema),
      "the schema read back has the same canonical text",
    );
  });
});

Deno.test("put() accepts record batches and keeps them as separate batches", async () => {
  await withRegistry({}, (registry) => {
    const first = tableFromArrays({ n: Int32Array.from([1, 2]) }).batches[0];
    const second = tableFromArrays({ n: Int32Array.from([3, 4, 5]) }).batches[0];
    const handle = registry.put([first, second], 1);
    assert.equal(handle.rows, 5);
    using lease = registry.open(handle);
    assert.equal(lease.table.batches.length, 2);
    assert.deepEqual(Array.from(lease.table.getChild("n")!), [1, 2, 3, 4, 5]);
  });
});

Deno.test("open() gives column buffers that are views over the mapped segment", async () => {
  await withRegistry({}, (registry) => {
    const handle = registry.put(manyTypes(), 1);
    using lease = registry.open(handle);
    const mapped = lease.bytes.buffer;
    assert.equal(mapped.byteLength, handle.length, "the mapping spans the segment");
    for (const name of ["i32", "i64", "f64", "text", "flag", "ts"]) {
      const data = lease.table.getChild(name)!.data[0];
      assert.equal(data.values.buffer, mapped, `column ${name} is not a view of the mapping`);
      assert.ok(data.values.byteOffset + data.values.byteLength <= mapped.byteLength);
    }
    const validity = lease.table.getChild("i32")!.data[0].nullBitmap;
    assert.equal(validity.buffer, mapped, "validity bitmaps are views too");
  });
});

Deno.test("put() rejects empty batch lists and mixed schemas with invalid-input", async () => {
  await withRegistry({}, (registry) => {
    const ints = tableFromArrays({ n: Int32Array.from([1]) }).batches[0];
    const strings = tableFromArrays({ n: ["x"] }).batches[0];
    assert.throws(
      () => registry.put([], 1),
      (error) => error instanceof RegistryError && error.code === "invalid-input",
    );
    assert.throws(
      () => registry.put([ints, strings], 1),
      (error) => error instanceof RegistryError && error.code === "invalid-input",
    );
    assert.throws(
      () => registry.put(new Table({ n: vectorFromArray([1]) }), 0),
      (error) => error instanceof RegistryError && error.code === "invalid-input",
    );
    assert.equal(registry.stats().objects, 0);
  });
});

Deno.test("release() frees an object only when its last consumer is done", async () => {
  await withRegistry({}, (registry, place) => {
    const handle = registry.put(tableFromArrays({ n: Int32Array.from([1, 2, 3]) }), 2);
    const file = `${SHM_DIR}/${handle.segment.slice(1)}`;
    assert.ok(Deno.statSync(file).isFile);
    registry.release(handle.id);
    assert.equal(registry.state(handle.id), "resident");
    assert.ok(Deno.statSync(file).isFile, "one consumer is still pending");
    registry.release(handle.id);
    assert.equal(registry.state(handle.id), "freed");
    assert.throws(() => Deno.statSync(file), Deno.errors.NotFound);
    assert.deepEqual(leftovers(place), []);
    assert.deepEqual(registry.stats(), {
      bytesInMemory: 0,
      bytesSpilled: 0,
      bytesPooled: 0,
      objects: 0,
    });
    assert.throws(
      () => registry.open(handle),
      (error) => error instanceof RegistryError && error.code === "unknown-object",
    );
  });
});

Deno.test("a lease keeps data readable after the last consumer released the object", async () => {
  await withRegistry({}, (registry, place) => {
    const handle = registry.put(tableFromArrays({ n: Float64Array.from([1.5, 2.5]) }), 1);
    const lease = registry.open(handle);
    registry.release(handle.id);
    assert.equal(registry.state(handle.id), "draining");
    assert.deepEqual(leftovers(place), [], "the name is gone at once");
    assert.deepEqual(Array.from(lease.table.getChild("n")!), [1.5, 2.5]);
    assert.equal(registry.stats().objects, 0);
    assert.ok(registry.stats().bytesInMemory > 0, "mapped memory is still counted");
    lease.release();
    assert.equal(registry.state(handle.id), "freed");
    assert.equal(registry.stats().bytesInMemory, 0);
  });
});

Deno.test("stats() counts bytes in memory and objects", async () => {
  await withRegistry({}, (registry) => {
    const a = registry.put(tableFromArrays({ n: Int32Array.from([1]) }), 1);
    const b = registry.put(tableFromArrays({ s: ["x", "yy"] }), 1);
    assert.deepEqual(registry.stats(), {
      bytesInMemory: a.length + b.length,
      bytesSpilled: 0,
      bytesPooled: 0,
      objects: 2,
    });
  });
});

function column(size: number, seed: number): Table {
  return tableFromArrays({ v: Float64Array.from({ length: size }, (_, i) => i * seed) });
}

Deno.test("over budget, the least recently used objects spill and read back intact", async () => {
  const size = 1000;
  const probe = await measure(column(size, 1));
  await withRegistry({ memoryBudget: probe * 2 + probe / 2 }, (registry, place) => {
    const handles = [1, 2, 3, 4].map((seed) => registry.put(column(size, seed), 1));
    assert.equal(registry.state(handles[0].id), "spilled");
    assert.equal(registry.state(handles[1].id), "spilled");
    assert.equal(registry.state(handles[2].id), "resident");
    assert.equal(registry.state(handles[3].id), "resident");
    const stats = registry.stats();
    assert.ok(stats.bytesInMemory <= registry.memoryBudget);
    assert.equal(stats.bytesSpilled, handles[0].length + handles[1].length);
    const spilled = registry.handle(handles[0].id);
    assert.ok(spilled.segment.startsWith(place.spillDir), "a spilled handle names its file");
    assert.ok(Deno.statSync(spilled.segment).isFile);
    for (const [i, handle] of handles.entries()) {
      using lease = registry.open(handle);
      assert.deepEqual(
        Array.from(lease.table.getChild("v")!),
        Array.from(column(size, i + 1).getChild("v")!),
      );
    }
    {
      using lease = registry.open(handles[0]);
      const values = lease.table.getChild("v")!.data[0].values;
      assert.equal(values.buffer, lease.bytes.buffer, "spilled objects are read zero-copy too");
    }
    for (const handle of handles) registry.release(handle.id);
    assert.deepEqual(leftovers(place), [], "spill files go with their last consumer");
    assert.deepEqual(registry.stats(), {
      bytesInMemory: 0,
      bytesSpilled: 0,
      bytesPooled: 0,
      objects: 0,
    });
  });
});

Deno.test("objects with a lease are not spilled; open() makes an object recently used", async () => {
  const size = 1000;
  const probe = await measure(column(size, 1));
  await withRegistry({ memoryBudget: probe * 2 + probe / 2 }, (registry) => {
    const a = registry.put(column(size, 1), 1);
    const b = registry.put(column(size, 2), 1);
    const lease = registry.open(a);
    registry.put(column(size, 3), 1);
    assert.equal(registry.state(a.id), "resident", "a is leased");
    assert.equal(registry.state(b.id), "spilled");
    lease.release();
    registry.open(a).release();
    registry.put(column(size, 4), 1);
    assert.equal(registry.state(a.id), "resident", "a was used more recently than the third");
  });
});

Deno.test("adopt() takes ownership of a segment written outside the registry", async () => {
  await withRegistry({}, (registry, place) => {
    const name = `/${place.prefix}-${Deno.pid}-plugin-1`;
    const written = writeSegment(name, tableFromArrays({ s: ["a", "b", "c"] }));
    const handle = registry.adopt(written, 1);
    assert.equal(handle.segment, name);
    assert.equal(handle.id, name.slice(1));
    {
      using lease = registry.open(handle.id);
      assert.deepEqual(Array.from(lease.table.getChild("s")!), ["a", "b", "c"]);
    }
    assert.throws(
      () => registry.adopt(written, 1),
      (error) => error instanceof RegistryError && error.code === "invalid-input",
    );
    registry.release(handle.id);
    assert.deepEqual(leftovers(place), []);
  });
});

Deno.test("close() removes every segment and spill file and refuses further use", async () => {
  const probe = await measure(column(100, 1));
  await withRegistry({ memoryBudget: probe }, (registry, place) => {
    for (const seed of [1, 2, 3]) registry.put(column(100, seed), 3);
    assert.equal(leftovers(place).length, 3);
    registry.close();
    assert.deepEqual(leftovers(place), []);
    assert.throws(
      () => registry.put(column(1, 1), 1),
      (error) => error instanceof RegistryError && error.code === "closed",
    );
  });
});

/** The stream length of a table, measured by storing it once. */
async function measure(table: Table): Promise<number> {
  let length = 0;
  await withRegistry({}, (registry) => {
    const handle: ObjectHandle = registry.put(table, 1);
    length = handle.length;
  });
  return length;
}

Deno.test("a table with no batches round-trips with its schema", async () => {
  await withRegistry({}, (registry) => {
    const empty = new Table(new Schema([new Field("n", new Int32(), true)]));
    const handle = registry.put(empty, 1);
    using lease = registry.open(handle);
    assert.equal(lease.table.numRows, 0);
    assert.equal(lease.table.schema.fields[0].name, "n");
  });
});

Deno.test("memory freed by release() and by spilling counts again toward the budget", async () => {
  const size = 1000;
  const probe = await measure(column(size, 1));
  await withRegistry({ memoryBudget: probe * 3 + probe / 2 }, (registry, place) => {
    const first = [1, 2, 3, 4, 5].map((seed) => registry.put(column(size, seed), 1));
    assert.deepEqual(
      first.map((h) => registry.state(h.id)),
      ["spilled", "spilled", "resident", "resident", "resident"],
    );
    for (const handle of first) registry.release(handle.id);
    const second = [6, 7, 8].map((seed) => registry.put(column(size, seed), 1));
    assert.deepEqual(
      second.map((h) => registry.state(h.id)),
      ["resident", "resident", "resident"],
      "released and spilled bytes no longer count as resident",
    );
    assert.equal(registry.stats().bytesInMemory, second.reduce((n, h) => n + h.length, 0));
    for (const handle of second) registry.release(handle.id);
    assert.deepEqual(leftovers(place), []);
  });
});
