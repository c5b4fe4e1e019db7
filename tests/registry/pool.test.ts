/**
 * The segment pool: a released segment is renamed out of reach and reused by the next put
 * that fits, so the producer writes into pages it already touched (counted here as minor
 * page faults, not time); the reused object reads back its own data under a new name, pooled
 * bytes yield to the memory budget, and nothing is left after close.
 */
import assert from "node:assert/strict";
import { tableFromArrays } from "apache-arrow";
import { RegistryError, SHM_DIR, writeSegment } from "../../runtime/registry/mod.ts";
import { leftovers, withRegistry } from "./_fixture.ts";

function numbers(n: number, seed: number) {
  return tableFromArrays({
    x: Float64Array.from({ length: n }, (_, i) => i * seed),
    k: Int32Array.from({ length: n }, (_, i) => (i + seed) % 97),
  });
}

/** Minor page faults of this process so far (/proc/self/stat field 10). */
function minorFaults(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]);
}

Deno.test("a released segment is reused by the next put under a new name, with its own data", async () => {
  await withRegistry({ pool: true }, (registry, place) => {
    const first = registry.put(numbers(50_000, 3), 1);
    registry.release(first.id);
    assert.ok(registry.stats().bytesPooled >= first.length);
    // Out of reach under its old name: a stale handle finds nothing.
    assert.throws(() => registry.open(first), RegistryError);
    assert.throws(() => Deno.statSync(`${SHM_DIR}${first.segment}`), Deno.errors.NotFound);
    const second = registry.put(numbers(50_000, 7), 2);
    assert.notEqual(second.segment, first.segment);
    assert.equal(registry.stats().bytesPooled, 0, "the pooled segment was taken");
    using lease = registry.open(second);
    assert.equal(lease.table.getChild("x")!.get(49_999), 49_999 * 7);
    assert.equal(lease.table.getChild("k")!.get(10), (10 + 7) % 97);
    assert.equal(leftovers(place).length, 1, "one segment: the reused one");
    registry.release(second.id);
    registry.release(second.id);
  });
});

Deno.test("a reused segment shows a consumer nothing of the object it held before", async () => {
  await withRegistry({ pool: true }, (registry) => {
    // The first object is all 0xAB bytes in its values; the second, smaller one fits its
    // segment (at least half the size), so it is written into it.
    const secret = new Float64Array(new Uint8Array(800_000).fill(0xab).buffer);
    const first = registry.put(tableFromArrays({ x: secret }), 1);
    registry.release(first.id);
    const second = registry.put(numbers(40_000, 7), 1);
    assert.equal(registry.stats().bytesPooled, 0, "the pooled segment was reused");
    assert.ok(second.length < first.length);
    // What a consumer that maps the whole segment (as openSegment does) can read.
    const seen = Deno.readFileSync(`${SHM_DIR}${second.segment}`);
    assert.ok(seen.length >= first.length, "the segment is the first object's");
    const tail = seen.subarray(second.offset + second.length);
    assert.equal(tail.findIndex((b) => b !== 0), -1, "bytes past the object are zero");
    let run = 0, longest = 0;
    for (const b of seen) longest = Math.max(longest, run = b === 0xab ? run + 1 : 0);
    assert.ok(longest < 16, `a run of ${longest} bytes of the previous object is visible`);
    using lease = registry.open(second);
    assert.equal(lease.table.getChild("x")!.get(39_999), 39_999 * 7);
    registry.release(second.id);
  });
});

Deno.test("a put into a pooled segment touches no new pages; a fresh one faults them all in", async () => {
  await withRegistry({ pool: true }, (registry) => {
    const table = numbers(4_000_000, 5); // 48 MB: ~12,000 pages of 4 KiB
    const fresh0 = minorFaults();
    const a = registry.put(table, 1);
    const fresh = minorFaults() - fresh0;
    registry.release(a.id);
    const reused0 = minorFaults();
    const b = registry.put(table, 1);
    const reused = minorFaults() - reused0;
    registry.release(b.id);
    assert.ok(fresh > a.length / 4096 / 2, `a fresh put faulted only ${fresh} pages`);
    assert.ok(reused < fresh / 10, `the reusing put faulted ${reused} pages (fresh: ${fresh})`);
  });
});

Deno.test("pooled segments give way to the memory budget and go at close", async () => {
  await withRegistry({ memoryBudget: 3_000_000, pool: true }, (registry) => {
    const a = registry.put(numbers(100_000, 1), 1); // 1.2 MB
    registry.release(a.id);
    assert.ok(registry.stats().bytesPooled > 0);
    // A bigger object (no fit) needs the room: the pooled segment is dropped, nothing spills.
    const b = registry.put(numbers(200_000, 2), 1); // 2.4 MB
    assert.equal(registry.stats().bytesPooled, 0);
    assert.equal(registry.stats().bytesSpilled, 0);
    registry.release(b.id);
    assert.ok(registry.stats().bytesPooled > 0);
  });
});

Deno.test("without the pool option a released segment is removed at once", async () => {
  await withRegistry({}, (registry, place) => {
    const a = registry.put(numbers(10_000, 1), 1);
    registry.release(a.id);
    assert.equal(registry.stats().bytesPooled, 0);
    assert.deepEqual(leftovers(place), []);
  });
});

Deno.test("a segment's id stays with its file through the pool; unpooled, spilled and adopted objects have none", async () => {
  await withRegistry({ pool: true }, (registry, place) => {
    const first = registry.put(numbers(10_000, 1), 1);
    const other = registry.put(numbers(10_000, 2), 1);
    assert.match(first.segmentId ?? "", /^[0-9a-f]{32}$/);
    assert.notEqual(first.segmentId, other.segmentId, "two files, two ids");
    registry.release(first.id);
    const reused = registry.put(numbers(10_000, 3), 1);
    assert.notEqual(reused.segment, first.segment);
    assert.equal(reused.segmentId, first.segmentId, "the pooled file keeps its id");
    // A plugin claiming the id of a live segment must not make readers reuse that mapping.
    const name = `/${place.prefix}-${Deno.pid}-plugin-1`;
    const written = writeSegment(name, numbers(10, 4));
    const adopted = registry.adopt({ ...written, segmentId: other.segmentId }, 1);
    assert.equal(adopted.segmentId, undefined);
    registry.release(adopted.id);
    registry.release(other.id);
    registry.release(reused.id);
  });
  await withRegistry({}, (registry) => {
    const unpooled = registry.put(numbers(1_000, 6), 1);
    assert.equal(unpooled.segmentId, undefined, "without the pool no file is reused");
    registry.release(unpooled.id);
  });
  await withRegistry({ memoryBudget: 1, pool: true }, (registry) => {
    const spilled = registry.put(numbers(1_000, 5), 1);
    assert.ok(!spilled.segment.startsWith("/heddle"), "budget 1 spills at once");
    assert.equal(spilled.segmentId, undefined);
    registry.release(spilled.id);
  });
});
