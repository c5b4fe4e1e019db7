/**
 * Operator fusion of plugin steps in the optimiser: which adjacent calls become one chain,
 * what the chain records (each call's op, step, config and the schema between calls), why
 * fusion is refused, and how `heddle inspect --ir` shows it.
 */
import assert from "node:assert/strict";
import { check, type Ir, irToText } from "../../compiler/mod.ts";

const PLUGINS = new URL("../../examples/plugins", import.meta.url).pathname;

function optimised(body: string, extra = ""): Ir {
  const source = `import "faulty/steps" faulty
import "fhub/file" file
${extra}
workflow W {
  file.read { path: "in.jsonl", format: "jsonl" }
  ${body}
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`;
  const r = check(source, "/tmp/fusion.he", { modulePath: [PLUGINS] });
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === "error").map((d) => d.message), []);
  return r.value.optimised!;
}

const calls = (ir: Ir) =>
  ir.graphs.find((g) => g.name === "W")!.stages.filter((s) => s.runtime === "typescript");

Deno.test("adjacent steps of one plugin fuse into a chain that keeps every call's op and config", () => {
  const ir = optimised(`| faulty.run { fail_rows: [1] }
  | faulty.double { fail_n: [3] }
  | faulty.run { fail_rows: [] }`);
  const [stage] = calls(ir);
  assert.equal(calls(ir).length, 1);
  assert.deepEqual(stage.calls!.map((c) => [c.op, c.config]), [
    ["run", { fail_rows: [1] }],
    ["double", { fail_n: [3] }],
    ["run", { fail_rows: [] }],
  ]);
  assert.equal(stage.op, "run", "the first call is the stage's own");
  assert.deepEqual(stage.calls![0].config, stage.config);
  assert.deepEqual(stage.calls![1].input, stage.calls![0].output, "schemas link the calls");
  assert.deepEqual(stage.output, stage.calls![2].output);
  assert.deepEqual(stage.fusedFrom.length, 3);
  const explained = ir.decisions.filter((d) => d.kind === "fusion").map((d) => d.explanation);
  assert.equal(explained.length, 2);
  assert.match(explained[1], /faulty\/steps\.run, faulty\/steps\.double and faulty\/steps\.run/);
  assert.match(explained[1], /through 3 steps/);
});

Deno.test("steps with different retry policies or handlers stay separate, with the reason", () => {
  const retried = optimised(`| faulty.run {} retry { attempts: 2 }
  | faulty.double {}`);
  assert.equal(calls(retried).length, 2);
  assert.match(retried.decisions[0].explanation, /retry policies differ/);

  const handled = optimised(
    `| faulty.run {} ? h
  | faulty.double {}`,
    `handler h {\n  * | file.write { path: "f.jsonl", format: "jsonl" }\n}`,
  );
  assert.equal(calls(handled).length, 2);
  assert.match(
    handled.decisions.find((d) => d.kind === "fusion")!.explanation,
    /different handlers/,
  );

  const same = optimised(`| faulty.run {} retry { attempts: 2 }
  | faulty.double {} retry { attempts: 2 }`);
  assert.equal(calls(same).length, 1, "equal retry policies fuse");
});

Deno.test("irToText shows a fused stage's chain, one line per call", () => {
  const text = irToText(optimised(`| faulty.run {}
  | faulty.double {}`));
  assert.match(text, /call faulty\/steps\.run \+ faulty\/steps\.double \[typescript\]/);
  assert.match(text, /chain 1\/2 faulty\/steps\.run \{n: int64, ok: bool, \.\.\}/);
  assert.match(
    text,
    /chain 2\/2 faulty\/steps\.double \{n: int64, ok: bool, doubled: int64, \.\.\}/,
  );
});
