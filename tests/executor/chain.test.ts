/**
 * Operator fusion end to end: adjacent steps of one plugin package (TypeScript and Python)
 * compile to one stage, run as one plugin invocation per batch, produce the output of every
 * step, and send a row that a later step rejects to the handler as the original input row
 * with `_error_step` naming that step. Steps with different retry policies stay apart.
 */
import assert from "node:assert/strict";
import { PluginHost } from "../../runtime/plugins/mod.ts";
import { Registry } from "../../runtime/registry/mod.ts";
import { type RunEvent, runWorkflow } from "../../runtime/executor/mod.ts";
import type { Ir } from "../../compiler/ir/mod.ts";
import { compile, EXAMPLE_PLUGINS, ownSegments, TEST_PLUGINS } from "./_fixtures.ts";

const MODULE_PATH = [EXAMPLE_PLUGINS, TEST_PLUGINS];

function readJsonl(path: string): Record<string, unknown>[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

/** Runs `program` over rows n = 0..9 in batches of 5; returns what the run wrote and did. */
async function runChained(program: string) {
  const dir = Deno.makeTempDirSync({ prefix: "heddle-exec-chain-" });
  const registry = new Registry();
  const host = new PluginHost({ registry, search: { programDir: dir, modulePath: MODULE_PATH } });
  try {
    Deno.writeTextFileSync(
      `${dir}/in.jsonl`,
      Array.from({ length: 10 }, (_, n) => JSON.stringify({ n })).join("\n"),
    );
    const ir = compile(program, dir, MODULE_PATH);
    const events: RunEvent[] = [];
    const summary = await runWorkflow(ir, {
      registry,
      plugins: host,
      batchRows: 5,
      onEvent: (e) => events.push(e),
    });
    assert.equal(summary.status, "completed", summary.error?.message);
    assert.deepEqual(ownSegments(), [], "registry segments left after the run");
    const failedFile = `${dir}/failed.jsonl`;
    return {
      ir,
      events,
      out: readJsonl(`${dir}/out.jsonl`),
      failed: Deno.statSync(failedFile).isFile ? readJsonl(failedFile) : [],
      invocations: host.plugins().reduce((n, p) => n + p.invocations, 0),
    };
  } finally {
    await host.close();
    registry.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

const program = (steps: string) =>
  `import "fhub/file" file
import "faulty/steps" faulty
import "chain-py/steps" py

handler failed {
  *
  | file.write { path: "failed.jsonl", format: "jsonl" }
}

workflow Chained {
  file.read { path: "in.jsonl", format: "jsonl" }
  ${steps}
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`;

function pluginStages(ir: Ir) {
  return ir.graphs.find((g) => g.name === "Chained")!.stages.filter((s) =>
    s.kind === "call" && s.runtime !== "builtin"
  );
}

Deno.test("two adjacent TypeScript steps run as one invocation per batch with both outputs", async () => {
  const r = await runChained(program(`| faulty.run { fail_rows: [1] } ? failed
  | faulty.double { fail_n: [3] } ? failed`));
  const stages = pluginStages(r.ir);
  assert.equal(stages.length, 1, "the two steps are one stage");
  assert.deepEqual(stages[0].calls?.map((c) => c.op), ["run", "double"]);
  assert.equal(r.invocations, 2, "one invocation for each of the two batches");
  assert.deepEqual(r.out.map((row) => row.n), [0, 2, 4, 5, 7, 8, 9]);
  assert.ok(r.out.every((row) => row.ok === true && row.doubled === 2 * (row.n as number)));
  // Row 1 of each batch fails in `run`; n = 3 fails in `double`, where it is row 2.
  assert.deepEqual(r.failed.map((row) => [row.n, row._error_step]), [
    [1, "faulty/steps.run"],
    [3, "faulty/steps.double"],
    [6, "faulty/steps.run"],
  ]);
  assert.ok(r.failed.every((row) => !("ok" in row) && !("doubled" in row)), "original rows");
});

Deno.test("two adjacent Python steps run as one invocation per batch with both outputs", async () => {
  const r = await runChained(program(`| py.add_one { fail_n: [2] } ? failed
  | py.square { fail_n: [8] } ? failed`));
  assert.equal(pluginStages(r.ir).length, 1);
  assert.equal(r.invocations, 2);
  assert.deepEqual(r.out.map((row) => row.n), [0, 1, 3, 4, 5, 6, 7, 9]);
  assert.ok(r.out.every((row) => row.squared === ((row.n as number) + 1) ** 2));
  assert.deepEqual(r.failed.map((row) => [row.n, row._error_step]), [
    [2, "chain-py/steps.add_one"],
    [8, "chain-py/steps.square"],
  ]);
  assert.ok(r.failed.every((row) => !("plus" in row)), "the handler gets the original rows");
});

Deno.test("a row that makes the second step of a chain throw is isolated and names that step", async () => {
  const r = await runChained(program(`| faulty.run {} ? failed retry { attempts: 1 }
  | faulty.double { throw_n: [7] } ? failed retry { attempts: 1 }`));
  assert.equal(pluginStages(r.ir).length, 1, "equal retry policies fuse");
  assert.deepEqual(r.out.map((row) => row.n), [0, 1, 2, 3, 4, 5, 6, 8, 9]);
  assert.deepEqual(r.failed.map((row) => row.n), [7]);
  assert.equal(r.failed[0]._error_step, "faulty/steps.double");
  assert.match(String(r.failed[0]._error_message), /n = 7 throws on purpose/);
  const splits = r.events.filter((e) => e.type === "attempt-failed");
  assert.ok(splits.length > 1, "the failing batch was split to isolate the row");
});

Deno.test("adjacent steps with different retry policies are not fused and say why", async () => {
  const r = await runChained(program(`| faulty.run {} ? failed retry { attempts: 2 }
  | faulty.double {} ? failed`));
  const stages = pluginStages(r.ir);
  assert.equal(stages.length, 2);
  assert.ok(stages.every((s) => s.calls === null));
  const decision = r.ir.decisions.find((d) => d.kind === "fusion");
  assert.match(decision?.explanation ?? "", /stay separate .*retry policies differ/);
  assert.equal(r.invocations, 4, "one invocation per step per batch");
  assert.ok(r.out.every((row) => row.ok === true && row.doubled === 2 * (row.n as number)));
});
