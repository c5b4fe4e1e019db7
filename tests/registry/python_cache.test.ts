/**
 * The Python SDK's mapping cache (sdk/python/heddle_sdk/_shm.py, docs/plugins.md "Mapping
 * cache") against a real pooling registry: a later handle with the same segment id is read
 * through the same mapping and sees the new object, the cache stays within 16 mappings, and
 * the mapping of a file the registry removed is let go.
 */
import assert from "node:assert/strict";
import { tableFromArrays } from "apache-arrow";
import { type ObjectHandle, Registry } from "../../runtime/registry/mod.ts";
import { forget, freshPlace, leftovers } from "./_fixture.ts";

function numbers(n: number, seed: number) {
  return tableFromArrays({ x: Float64Array.from({ length: n }, (_, i) => i * seed) });
}

/** The sum of `numbers(n, seed)`'s column, as the reader must find it. */
const sumOf = (n: number, seed: number) => (seed * n * (n - 1)) / 2;

/** A Python process answering one command at a time (tests/registry/_mapping_cache.py). */
function pythonReader() {
  const child = new Deno.Command("python3", {
    args: [new URL("./_mapping_cache.py", import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  const ask = async (command: unknown) => {
    await writer.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
    while (!pending.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("the Python reader exited");
      pending += value;
    }
    const at = pending.indexOf("\n");
    const line = pending.slice(0, at);
    pending = pending.slice(at + 1);
    return JSON.parse(line) as { sum?: number; base?: number; cached: number };
  };
  return {
    read: (handle: ObjectHandle) => ask({ op: "read", handle }),
    sweep: () => ask({ op: "sweep" }),
    async [Symbol.asyncDispose]() {
      await writer.close();
      await lines.cancel();
      await child.status;
    },
  };
}

Deno.test("the Python SDK reads a reused segment through its cached mapping and lets removed files go", async () => {
  const place = freshPlace();
  const registry = new Registry({ pool: true, ...place });
  try {
    await using reader = pythonReader();
    const first = registry.put(numbers(10_000, 1), 1);
    const a = await reader.read(first);
    assert.equal(a.sum, sumOf(10_000, 1));
    registry.release(first.id);

    const again = registry.put(numbers(10_000, 3), 1);
    assert.equal(again.segmentId, first.segmentId, "the registry reused the file");
    assert.notEqual(again.segment, first.segment);
    const b = await reader.read(again);
    assert.equal(b.base, a.base, "the second handle is read through the same mapping");
    assert.equal(b.sum, sumOf(10_000, 3), "and sees the new object");
    assert.equal(b.cached, 1);

    // Twenty live segments: the cache keeps at most 16 idle mappings.
    const many = Array.from({ length: 20 }, (_, i) => registry.put(numbers(1_000, i + 2), 1));
    for (const [i, handle] of many.entries()) {
      assert.equal((await reader.read(handle)).sum, sumOf(1_000, i + 2));
    }
    assert.equal((await reader.sweep()).cached, 16);

    // Closing the registry removes every file: their mappings must go.
    registry.release(again.id);
    for (const handle of many) registry.release(handle.id);
    registry.close();
    assert.equal((await reader.sweep()).cached, 0, "mappings of removed files were kept");
  } finally {
    registry.close();
    assert.deepEqual(leftovers(place), []);
    forget(place);
  }
});
