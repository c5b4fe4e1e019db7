/**
 * The memory budget with real plugin processes: an object handed to a plugin must still be
 * where its handle says when the plugin maps it, however small the budget. Issue 16 found
 * that at `--memory-budget 64KiB` objects were spilled between `put` and the plugin's read
 * ("segment … does not exist"), so every batch failed and was retried row by row; that a
 * budget of 0 sent valid rows to the handler; and that `99999999999999999999` crashed.
 */

import assert from "node:assert/strict";
import { tableFromArrays } from "apache-arrow";
import { PluginHost } from "../../runtime/plugins/mod.ts";
import { Registry, RegistryError } from "../../runtime/registry/mod.ts";
import { heddle } from "../_cli.ts";
import { type RunEvent, runWorkflow } from "../../runtime/executor/mod.ts";
import { compile, EXAMPLE_PLUGINS } from "../executor/_fixtures.ts";
import { forget, freshPlace, leftovers } from "./_fixture.ts";

Deno.test("objects under a tiny budget reach the plugin: spilled, never pulled from under it", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "heddle-budget-" });
  const place = freshPlace();
  const registry = new Registry({ memoryBudget: 1024, ...place });
  const plugins = new PluginHost({
    registry,
    search: { programDir: dir, modulePath: [EXAMPLE_PLUGINS] },
  });
  try {
    const rows = 400;
    Deno.writeTextFileSync(
      `${dir}/in.jsonl`,
      Array.from({ length: rows }, (_, n) => JSON.stringify({ n })).join("\n"),
    );
    const ir = compile(
      `import "fhub/file" file
import "faulty/steps" faulty

workflow Budget {
  file.read { path: "in.jsonl", format: "jsonl" }
  | faulty.double {}
  | faulty.double {}
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`,
      dir,
    );
    const events: RunEvent[] = [];
    let spilled = 0;
    const watched = {
      put: (...args: Parameters<Registry["put"]>) => {
        const handle = registry.put(...args);
        spilled = Math.max(spilled, registry.stats().bytesSpilled);
        return handle;
      },
      open: (...args: Parameters<Registry["open"]>) => registry.open(...args),
      release: (id: string) => registry.release(id),
    };
    const summary = await runWorkflow(ir, {
      registry: watched,
      plugins,
      batchRows: 20,
      onEvent: (e) => events.push(e),
    });
    assert.equal(summary.status, "completed", summary.error?.message);
    const failed = events.filter((e) =>
      e.type === "attempt-failed" || e.type === "rows-quarantined"
    );
    assert.deepEqual(failed, [], "no attempt failed");
    assert.ok(spilled > 0, "the budget made the registry spill");
    const out = Deno.readTextFileSync(`${dir}/out.jsonl`).split("\n").filter((l) => l);
    assert.equal(out.length, rows);
    assert.deepEqual(
      out.map((l) => JSON.parse(l).n).sort((a, b) => a - b),
      Array.from({ length: rows }, (_, n) => n),
    );
  } finally {
    await plugins.close();
    registry.close();
    Deno.removeSync(dir, { recursive: true });
  }
  assert.deepEqual(leftovers(place), []);
  forget(place);
});

Deno.test("put() returns where the object is after the budget spilled it, not the removed name", () => {
  const place = freshPlace();
  const registry = new Registry({ memoryBudget: 64, ...place });
  try {
    const handle = registry.put(tableFromArrays({ v: new Float64Array(100) }), 1);
    assert.equal(registry.state(handle.id), "spilled");
    assert.deepEqual(handle, registry.handle(handle.id));
    assert.ok(handle.segment.startsWith(`${place.spillDir}/`), handle.segment);
    registry.release(handle.id);
  } finally {
    registry.close();
  }
  assert.deepEqual(leftovers(place), []);
  forget(place);
});

Deno.test("the registry refuses a budget of 0 or beyond 1 PiB with the value it was given", () => {
  for (const memoryBudget of [0, -1, 1.5, 2 ** 50 + 1, 99999999999999999999]) {
    assert.throws(
      () => new Registry({ memoryBudget, ...freshPlace() }),
      (e) =>
        e instanceof RegistryError && e.code === "invalid-input" &&
        e.message.includes("from 1 to 2^50 (1 PiB)") && e.message.includes(String(memoryBudget)),
    );
  }
});

Deno.test("heddle run refuses --memory-budget 0 and absurd sizes with exit 2, before reading the program", async () => {
  for (const size of ["0", "0KiB", "99999999999999999999", "2000000GiB"]) {
    const result = await heddle(["run", "missing.he", "--memory-budget", size]);
    assert.equal(result.code, 2, `${size}: ${result.stderr}`);
    assert.match(result.stderr, new RegExp(`from 1 byte to 1PiB .*found \`${size}\``));
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  }
});
