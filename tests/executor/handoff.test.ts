/**
 * How batches move between stages: in-process stages hand tables over directly (no
 * shared-memory segment), a plugin consumer still receives a registry object, a table that
 * views a registry object stays readable downstream after its own stage is done, and a
 * blocking stage keeps its input in the registry, where the memory budget spills it. Every
 * test uses the real registry (observed through a counting wrapper) and checks that nothing
 * is left in /dev/shm or the spill directory.
 */
import assert from "node:assert/strict";
import { PluginHost } from "../../runtime/plugins/mod.ts";
import { type ObjectHandle, Registry } from "../../runtime/registry/mod.ts";
import { type BatchRegistry, runWorkflow } from "../../runtime/executor/mod.ts";
import { compile, EXAMPLE_PLUGINS, ownSegments } from "./_fixtures.ts";

function readJsonl(path: string): Record<string, unknown>[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

/** The real registry, counting puts and sampling its stats after each one. */
function observed(registry: Registry) {
  const seen = { puts: 0, maxInMemory: 0, maxSpilled: 0 };
  const batches: BatchRegistry = {
    put: (data, consumers) => {
      const handle = registry.put(data, consumers);
      seen.puts++;
      const stats = registry.stats();
      seen.maxInMemory = Math.max(seen.maxInMemory, stats.bytesInMemory);
      seen.maxSpilled = Math.max(seen.maxSpilled, stats.bytesSpilled);
      return handle;
    },
    open: (handle) => registry.open(handle),
    release: (id) => registry.release(id),
  };
  return { seen, batches };
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "heddle-exec-handoff-" });
  try {
    await body(dir);
    assert.deepEqual(ownSegments(), [], "registry segments left after the run");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("in-process stages hand batches over without putting anything in the registry", async () => {
  await withDir(async (dir) => {
    const lines = Array.from({ length: 250 }, (_, i) => JSON.stringify({ id: i, amount: i / 2 }));
    lines.splice(40, 0, "{not json");
    Deno.writeTextFileSync(`${dir}/in.jsonl`, lines.join("\n") + "\n");
    const ir = compile(
      `import "fhub/file" file

handler bad {
  *
  | file.write { path: "bad.jsonl", format: "jsonl" }
}

workflow Chain ? bad {
  file.read { path: "in.jsonl", format: "jsonl" }: { id: int64, amount: float64 }
  | (from input | filter id >= 10) ? bad
  | (from input | derive {twice = amount * 2.0}) ? bad
  | (from input | select {id, twice}) ? bad
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`,
      dir,
    );
    using registry = new Registry();
    const { seen, batches } = observed(registry);
    const summary = await runWorkflow(ir, { registry: batches, batchRows: 32 });
    assert.equal(summary.status, "completed", summary.error?.message);
    const out = readJsonl(`${dir}/out.jsonl`);
    assert.deepEqual(out.map((r) => r.id), Array.from({ length: 240 }, (_, i) => i + 10));
    assert.deepEqual(out.map((r) => r.twice), out.map((r) => Number(r.id)));
    assert.equal(readJsonl(`${dir}/bad.jsonl`).length, 1, "the malformed line reached the handler");
    assert.equal(seen.puts, 0, "no stage put a batch into shared memory");
    assert.equal(registry.stats().objects, 0);
  });
});

Deno.test("a plugin consumer gets a registry object and its output flows on to in-process stages", async () => {
  await withDir(async (dir) => {
    Deno.writeTextFileSync(
      `${dir}/in.jsonl`,
      Array.from({ length: 30 }, (_, n) => JSON.stringify({ n })).join("\n") + "\n",
    );
    const ir = compile(
      `import "fhub/file" file
import "faulty/steps" faulty

workflow ToPlugin {
  file.read { path: "in.jsonl", format: "jsonl" }: { n: int64 }
  | (from input | filter n >= 5)
  | faulty.double {}
  | (from input | select {doubled, n})
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`,
      dir,
    );
    using registry = new Registry();
    const { seen, batches } = observed(registry);
    const host = new PluginHost({
      registry,
      search: { programDir: dir, modulePath: [EXAMPLE_PLUGINS] },
    });
    const inputs: { handle: ObjectHandle; state: string; inShm: boolean }[] = [];
    try {
      const summary = await runWorkflow(ir, {
        registry: batches,
        batchRows: 8,
        plugins: {
          invokeChain: (chain, input, options) => {
            inputs.push({
              handle: input,
              state: registry.state(input.id),
              inShm: ownSegments().includes(input.segment.slice(1)),
            });
            return host.invokeChain(chain, input, options);
          },
        },
      });
      assert.equal(summary.status, "completed", summary.error?.message);
    } finally {
      await host.close();
    }
    assert.equal(inputs.length, 4, "one invocation per batch");
    for (const i of inputs) {
      assert.equal(i.state, "resident", "the plugin's input is a live registry object");
      assert.ok(i.inShm, `${i.handle.segment} is a shared-memory segment`);
    }
    assert.equal(seen.puts, 4, "only the batches for the plugin were put");
    // The projection after the plugin views the plugin's output object: the rows must still
    // be intact when the sink writes them, after the projection's stage released its input.
    const out = readJsonl(`${dir}/out.jsonl`);
    assert.deepEqual(out.map((r) => r.n), Array.from({ length: 25 }, (_, i) => i + 5));
    assert.deepEqual(out.map((r) => r.doubled), out.map((r) => 2 * Number(r.n)));
    assert.equal(registry.stats().objects, 0);
  });
});

Deno.test("a blocking stage over the memory budget spills its input and still sorts every row", async () => {
  await withDir(async (dir) => {
    const ids = Array.from({ length: 3000 }, (_, i) => (i * 7919) % 3000);
    Deno.writeTextFileSync(
      `${dir}/in.jsonl`,
      ids.map((id) => JSON.stringify({ id, tag: `t-${id % 13}` })).join("\n") + "\n",
    );
    const ir = compile(
      `import "fhub/file" file

handler bad {
  *
  | file.write { path: "bad.jsonl", format: "jsonl" }
}

workflow Sorted {
  file.read { path: "in.jsonl", format: "jsonl" }: { id: int64, tag: utf8 }
  | (from input | filter id >= 0) ? bad
  | (from input | sort {-id}) ? bad
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`,
      dir,
    );
    const spillDir = `${dir}/spill`;
    const budget = 16 * 1024;
    using registry = new Registry({ memoryBudget: budget, spillDir });
    const { seen, batches } = observed(registry);
    const summary = await runWorkflow(ir, { registry: batches, batchRows: 100 });
    assert.equal(summary.status, "completed", summary.error?.message);
    assert.equal(seen.puts, 30, "each collected batch became a registry object");
    assert.ok(seen.maxSpilled > 0, "objects over the budget were spilled");
    assert.ok(seen.maxInMemory <= budget, `${seen.maxInMemory} bytes in memory, over the budget`);
    const out = readJsonl(`${dir}/out.jsonl`);
    assert.deepEqual(out.map((r) => r.id), [...ids].sort((a, b) => b - a));
    assert.deepEqual(out.map((r) => r.tag), out.map((r) => `t-${Number(r.id) % 13}`));
    assert.equal(summary.stages["Sorted.3"]?.batches, 30, "the sorted rows went on in batches");
    assert.deepEqual(registry.stats(), {
      bytesInMemory: 0,
      bytesSpilled: 0,
      bytesPooled: 0,
      objects: 0,
    });
    assert.deepEqual([...Deno.readDirSync(spillDir)], [], "no spill file outlives the run");
  });
});
