/**
 * The IR and optimiser on the seed program and on small programs: what is fused, what is
 * batched, and that every renderer shows the graph.
 */
import assert from "node:assert/strict";
import {
  batchQuery,
  check,
  type Ir,
  irToDot,
  irToJson,
  irToMermaid,
  irToText,
} from "../../compiler/mod.ts";

const seedFile = new URL("../../examples/fraud_detection.he", import.meta.url).pathname;

function checkSeed() {
  return check(Deno.readTextFileSync(seedFile), seedFile);
}

function workflow(ir: Ir) {
  return ir.graphs.find((g) => g.kind === "workflow")!;
}

Deno.test("check() accepts the seed program with its manifest and snapshot", () => {
  const r = checkSeed();
  assert.deepEqual(r.diagnostics.filter((d) => d.severity !== "info").map((d) => d.message), []);
  assert.ok(r.value.optimised);
});

Deno.test("the seed's PRQL blocks around the plugin step stay unfused", () => {
  const wf = workflow(checkSeed().value.optimised!);
  const kinds = wf.stages.map((s) => s.kind);
  assert.deepEqual(kinds, ["source", "prql", "call", "lookup-join", "call", "sink"]);
  assert.equal(wf.stages[2].module, "fraud-score/detect");
  assert.equal(wf.stages[2].runtime, "python");
});

Deno.test("the seed's two joins become batched lookups with array parameters", () => {
  const ir = checkSeed().value.optimised!;
  const join = workflow(ir).stages.find((s) => s.kind === "lookup-join")!;
  assert.deepEqual(join.lookup!.map((l) => [l.step, l.dialect]), [
    ["fetch_user_data", "postgres"],
    ["fetch_risk_profile", "clickhouse"],
  ]);
  assert.match(join.lookup![0].query, /id = ANY\(@user_id\)/);
  assert.match(join.lookup![1].query, /user_id IN \{user_id:Array\(Int64\)\}/);
  assert.equal(ir.decisions.filter((d) => d.kind === "lookup-batching").length, 2);
});

Deno.test("inference pins the open Kafka row through PRQL to the plugin's contract", () => {
  const wf = workflow(checkSeed().value.optimised!);
  const source = wf.stages[0].output!;
  const amount = source.fields.find((f) => f.name === "amount");
  assert.equal(amount?.type, "float64");
  assert.equal(source.open, true);
  const audit = wf.stages[4].output!.fields.map((f) => f.name);
  assert.ok(audit.includes("completion") && audit.includes("velocity_score"));
});

Deno.test("adjacent PRQL blocks are fused into one query with a recorded decision", () => {
  const src = `import "fhub/file" file
workflow W {
  file.read { path: "in.csv", format: "csv" }
  | (
    from input
    filter amount > 10
  )
  | (
    from input
    select {amount}
  )
  | file.write { path: "out.csv", format: "csv" }
}
`;
  const r = check(src, "/tmp/w.he", { snapshot: null });
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === "error"), []);
  const wf = workflow(r.value.optimised!);
  assert.deepEqual(wf.stages.map((s) => s.kind), ["source", "prql", "sink"]);
  assert.equal(wf.stages[1].fusedFrom.length, 2);
  assert.ok(r.value.optimised!.decisions.some((d) => d.kind === "fusion"));
  // One pipeline: the second block's transforms follow the first's.
  assert.equal((wf.stages[1].prql!.match(/\bfrom\b/g) ?? []).length, 1);
  assert.match(wf.stages[1].prql!, /select \{amount\}\s*$/);
});

Deno.test("batchQuery() rewrites an equality parameter per dialect and refuses otherwise", () => {
  assert.equal(
    batchQuery("SELECT a FROM t WHERE id = @k", "postgres", "k"),
    "SELECT a FROM t WHERE id = ANY(@k)",
  );
  assert.equal(
    batchQuery("SELECT a FROM t WHERE t.id = @k", "clickhouse", "k", "String"),
    "SELECT a FROM t WHERE t.id IN {k:Array(String)}",
  );
  assert.equal(batchQuery("SELECT a FROM t WHERE id > @k", "postgres", "k"), null);
});

Deno.test("every IR renderer names the plugin step and the lookups", () => {
  const ir = checkSeed().value.optimised!;
  assert.match(irToText(ir), /fraud-score\/detect\.process \[python\]/);
  assert.equal(JSON.parse(irToJson(ir)).version, 1);
  assert.match(irToDot(ir), /digraph heddle/);
  assert.match(irToDot(ir), /fetch_user_data/);
  assert.match(irToMermaid(ir), /graph LR/);
});

Deno.test("without a snapshot the query types stay open and a warning says so", () => {
  const r = check(Deno.readTextFileSync(seedFile), seedFile, { snapshot: null });
  const warnings = r.diagnostics.filter((d) => d.code === "HE0301");
  assert.equal(warnings.length, 2);
  assert.ok(warnings.every((d) => d.severity === "warning"));
});
