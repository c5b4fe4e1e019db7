/**
 * Everything read from shared memory is validated: missing, truncated, corrupted and
 * mislabelled objects must come back as a `RegistryError` with the right code, never as
 * an apache-arrow exception, a crash or silently wrong data. The bytes are damaged the way
 * a buggy or dying writer would damage them: through the /dev/shm file.
 */

import assert from "node:assert/strict";
import {
  Dictionary,
  Field,
  Float64,
  Int32,
  List,
  makeData,
  makeVector,
  Struct,
  Table,
  tableFromArrays,
  TimestampMicrosecond,
  Utf8,
  vectorFromArray,
} from "apache-arrow";
import {
  type ObjectHandle,
  openHandle,
  RegistryError,
  type RegistryErrorCode,
  SHM_DIR,
  writeSegment,
} from "../../runtime/registry/mod.ts";
import { freshPlace, leftovers, withRegistry } from "./_fixture.ts";

function sample() {
  return tableFromArrays({ n: Int32Array.from([1, 2, 3, 4]), s: ["a", "b", null, "d"] });
}

function shmFile(handle: ObjectHandle): string {
  return `${SHM_DIR}/${handle.segment.slice(1)}`;
}

/** Overwrites bytes of a segment at `at` (relative to the stream start). */
function patch(handle: ObjectHandle, at: number, bytes: number[]): void {
  using file = Deno.openSync(shmFile(handle), { write: true });
  file.seekSync(handle.offset + at, Deno.SeekMode.Start);
  file.writeSync(Uint8Array.from(bytes));
}

function check(open: () => unknown, code: RegistryErrorCode, mentions: string): void {
  assert.throws(open, (error) => {
    assert.ok(error instanceof RegistryError, `expected a RegistryError, got ${error}`);
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.includes(mentions), `"${error.message}" lacks "${mentions}"`);
    return true;
  });
}

Deno.test("open() of an object whose segment vanished reports missing", async () => {
  await withRegistry({}, (registry) => {
    const handle = registry.put(sample(), 1);
    Deno.removeSync(shmFile(handle));
    check(() => registry.open(handle), "missing", handle.segment);
    check(() => openHandle(handle), "missing", "does not exist");
  });
});

Deno.test("open() of a segment shorter than its handle reports truncated", async () => {
  await withRegistry({}, (registry) => {
    const handle = registry.put(sample(), 1);
    Deno.truncateSync(shmFile(handle), handle.length - 100);
    check(() => registry.open(handle), "truncated", `needs ${handle.length}`);
    Deno.truncateSync(shmFile(handle), 0);
    check(() => registry.open(handle), "truncated", "holds 0 bytes");
  });
});

Deno.test("a stream cut inside a message reports truncated before apache-arrow reads it", async () => {
  await withRegistry({}, (registry) => {
    const handle = registry.put(sample(), 1);
    for (const cut of [4, 12, handle.length - 30]) {
      check(() => openHandle({ ...handle, length: cut }), "truncated", "is truncated");
    }
  });
});

Deno.test("a damaged message prefix or body length reports corrupt or truncated", async () => {
  await withRegistry({}, (registry) => {
    const marker = registry.put(sample(), 1);
    patch(marker, 0, [0x12, 0x34, 0x56, 0x78]);
    check(() => registry.open(marker), "corrupt", "does not start with 0xFFFFFFFF");
    const length = registry.put(sample(), 1);
    patch(length, 4, [0xff, 0xff, 0xff, 0x7f]);
    check(() => registry.open(length), "truncated", "metadata bytes");
  });
});

Deno.test("a handle with the wrong fingerprint reports schema-mismatch", async () => {
  await withRegistry({}, (registry) => {
    const handle = registry.put(sample(), 1);
    const other = registry.put(tableFromArrays({ n: ["not", "ints"] }), 1);
    const wrong = { ...handle, schemaFingerprint: other.schemaFingerprint };
    check(() => openHandle(wrong), "schema-mismatch", other.schemaFingerprint);
  });
});

Deno.test("a handle with the wrong row count reports corrupt", async () => {
  await withRegistry({}, (registry) => {
    const handle = registry.put(sample(), 1);
    check(() => openHandle({ ...handle, rows: 5 }), "corrupt", "holds 4 rows");
  });
});

Deno.test("a malformed handle reports invalid-input", () => {
  const handle = {
    id: "x",
    segment: "/nowhere",
    offset: -1,
    length: 10,
    schemaFingerprint: "0".repeat(64),
    rows: 0,
  };
  check(() => openHandle(handle), "invalid-input", "malformed object handle");
});

/** Dictionaries, lists, structs and time zones exercise every metadata table. */
function nested(): Table {
  return new Table({
    d: vectorFromArray(["a", "b", "a", null], new Dictionary(new Utf8(), new Int32())),
    l: vectorFromArray([[1], [], null, [2, 3]], new List(new Field("item", new Int32(), true))),
    s: vectorFromArray(
      [{ x: 1, y: "q" }, null, { x: 2, y: null }, { x: 3, y: "r" }],
      new Struct([new Field("x", new Float64(), true), new Field("y", new Utf8(), true)]),
    ),
    ts: vectorFromArray([1, 2, 3, null], new TimestampMicrosecond("Europe/Paris")),
  });
}

Deno.test("every single damaged byte gives valid data or a RegistryError, never a crash", async () => {
  await withRegistry({}, (registry) => {
    const original = registry.put(nested(), 1);
    const pristine = Deno.readFileSync(shmFile(original));
    const outcomes = new Map<string, number>();
    for (const mask of [0xa5, 0xff, 0x01]) {
      for (let at = 0; at < original.length; at++) {
        patch(original, at, [pristine[at] ^ mask]);
        let outcome = "ok";
        try {
          openHandle(original).release();
        } catch (error) {
          assert.ok(error instanceof RegistryError, `byte ${at} ^ ${mask}: ${error}`);
          outcome = error.code;
        }
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        patch(original, at, [pristine[at]]);
      }
    }
    assert.ok((outcomes.get("corrupt") ?? 0) > 0, "some damage is detected as corrupt");
    assert.ok((outcomes.get("truncated") ?? 0) > 0, "some damage is detected as truncated");
    assert.ok((outcomes.get("schema-mismatch") ?? 0) > 0, "some damage changes the schema");
  });
});

Deno.test("adopt() of a damaged segment throws corrupt and removes the segment", async () => {
  await withRegistry({}, (registry, place) => {
    const written = writeSegment(`/${place.prefix}-${Deno.pid}-plugin-7`, sample());
    patch(written, 0, [0, 0, 0, 0]);
    check(() => registry.adopt(written, 1), "corrupt", written.segment);
    assert.deepEqual(leftovers(place), []);
    assert.equal(registry.stats().objects, 0);
  });
});

Deno.test("adopt() of a segment that does not exist reports missing", async () => {
  await withRegistry({}, (registry) => {
    const { prefix } = freshPlace();
    const ghost = {
      id: "",
      segment: `/${prefix}-${Deno.pid}-plugin-1`,
      offset: 0,
      length: 100,
      schemaFingerprint: "a".repeat(64),
      rows: 1,
    };
    check(() => registry.adopt(ghost, 1), "missing", ghost.segment);
  });
});

/** A one-column table whose text column has exactly these offsets and bytes. */
function rawText(offsets: number[], bytes: number[]): Table {
  const data = makeData({
    type: new Utf8(),
    length: offsets.length - 1,
    nullCount: 0,
    valueOffsets: Int32Array.from(offsets),
    data: Uint8Array.from(bytes),
  });
  return new Table({ s: makeVector(data) });
}

Deno.test("adopt() checks every offset, string and dictionary index, not only the buffer sizes", async () => {
  const abcd = [...new TextEncoder().encode("abcd")];
  const cases: [string, Table, string][] = [
    ["offsets that go back", rawText([0, 3, 1, 4], abcd), "breaks the order"],
    ["bytes that are not UTF-8", rawText([0, 1, 2], [0x61, 0xff]), "not valid UTF-8"],
    // "é" is 0xc3 0xa9: a value starting at its second byte cuts the character in two.
    [
      "a value cut inside a character",
      rawText([0, 1, 3], [0xc3, 0xa9, 0x61]),
      "inside a character",
    ],
    [
      "a dictionary index past the dictionary",
      new Table({
        d: makeVector(makeData({
          type: new Dictionary(new Utf8(), new Int32()),
          length: 2,
          nullCount: 0,
          data: Int32Array.from([0, 5]),
          dictionary: vectorFromArray(["x", "y"], new Utf8()),
        })),
      }),
      "entry 5 of a 2-entry dictionary",
    ],
  ];
  await withRegistry({}, (registry, place) => {
    for (const [i, [what, table, mentions]] of cases.entries()) {
      const written = writeSegment(`/${place.prefix}-${Deno.pid}-plugin-${i}`, table);
      // The constant-time checks of a reader pass: only the complete check finds it.
      openHandle(written).release();
      check(() => registry.adopt(written, 1), "corrupt", mentions);
      assert.deepEqual(leftovers(place), [], `${what}: the segment is removed`);
    }
    // The same shapes with valid values are adopted.
    const good = writeSegment(
      `/${place.prefix}-${Deno.pid}-plugin-9`,
      rawText([0, 2, 3], [0xc3, 0xa9, 0x61]),
    );
    registry.release(registry.adopt(good, 1).id);
    assert.equal(registry.stats().objects, 0);
  });
});
