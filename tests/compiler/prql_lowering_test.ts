/**
 * PRQL blocks are lowered many per prql-js call (compiler/types/_prql_lower.ts) because each
 * call costs prql-js's standard library load. Batching must be invisible: every program gives
 * the same diagnostics, stage types and IR as when each block is lowered alone, and a check
 * makes a number of prql-js calls that grows with blocks / batch size, not with blocks. It
 * must never compare timings: the calls are counted.
 */
import assert from "node:assert/strict";
import { check, irToText, prqlc } from "../../compiler/mod.ts";
import { BATCH, forgetLowered, lowerByShape, lowerPrql } from "../../compiler/types/_prql_lower.ts";
import type { PrqlStage } from "../../compiler/syntax/mod.ts";
import { corpus } from "../_expect.ts";
import { generateProgram } from "../../bench/parse.ts";

const pluginRoot = new URL("../../examples/plugins/", import.meta.url).pathname;

/**
 * The generated program with every block outside the subset lowered without prql-js
 * (`_prql_resolve.ts` knows no function calls), so that its lowering by shape and in batches
 * is what a check does.
 */
function prqlJsBlocks(lines: number): string {
  return generateProgram(lines).replaceAll(
    "    select {user_id,",
    "    derive {whole = math.abs amount}\n    select {user_id,",
  );
}

function blocks(source: string, path: string): string[] {
  const ast = check(source, path, { modulePath: [pluginRoot] }).value.ast;
  const out: string[] = [];
  for (const item of ast.items) {
    if (item.kind !== "Workflow" && item.kind !== "Handler") continue;
    for (const st of item.body) {
      for (const s of st.pipeline.stages) if (s.kind === "Prql") out.push((s as PrqlStage).text);
    }
  }
  return out;
}

/** What a check tells: diagnostics, the row type of every stage, and the optimised IR. */
function outcome(source: string, path: string): unknown {
  const r = check(source, path, { modulePath: [pluginRoot] });
  return {
    diagnostics: r.diagnostics.map((d) => `${d.code} ${d.span.start}-${d.span.end} ${d.message}`),
    stages: [...r.value.typed?.stages.values() ?? []],
    ir: r.value.optimised ? irToText(r.value.optimised) : null,
  };
}

function programs(): Array<{ name: string; path: string; source: string }> {
  const examples = [...Deno.readDirSync(new URL("../../examples/", import.meta.url))]
    .filter((e) => e.name.endsWith(".he"))
    .map((e) => {
      const path = new URL(`../../examples/${e.name}`, import.meta.url).pathname;
      return { name: e.name, path, source: Deno.readTextFileSync(path) };
    });
  return [
    ...corpus("ok"),
    ...corpus("err/contracts").filter((f) => f.source.includes("from input")),
    ...examples,
    { name: "generated", path: "/tmp/generated.he", source: generateProgram(1_500) },
    { name: "generated for prql-js", path: "/tmp/generated.he", source: prqlJsBlocks(1_500) },
  ].filter((p) => p.source.includes("from "));
}

/** Blocks of one shape (`_prql_shape.ts`): the same query with other literals, some wrong. */
function shapes(): string {
  const literals = ["1", "25", "-3", "1_000", '"x"', '"a b"', "2.5", "true", '""'];
  const workflows = literals.flatMap((v, k) => [
    `workflow S${k} {\n  file.read { path: "in.csv", format: "csv" }: { amount: float64, ` +
    `label: utf8 }\n  | (\n    from input\n    filter amount > ${v} && label != ${v}\n` +
    `    derive extra = amount + ${v}\n  )\n  | file.write { path: "o${k}.csv", format: "csv" }\n}`,
  ]);
  return `import "fhub/file" file\n${workflows.join("\n")}\n`;
}

Deno.test("batched lowering by shape gives every program exactly what prql-js gives each block", () => {
  const all = [...programs(), { name: "shapes", path: "/tmp/shapes.he", source: shapes() }];
  assert.ok(all.length >= 15, `${all.length} programs`);
  try {
    for (const { name, path, source } of all) {
      lowerByShape(true);
      const batched = outcome(source, path);
      // Each block's own text, one prql-js lowering each: the reference.
      lowerByShape(false);
      for (const text of blocks(source, path)) lowerPrql(text);
      const alone = outcome(source, path);
      assert.deepEqual(batched, alone, name);
      // By shape one block at a time, as the language server lowers an edited block.
      lowerByShape(true);
      for (const text of blocks(source, path)) lowerPrql(text);
      assert.deepEqual(outcome(source, path), alone, `${name}, one block at a time`);
    }
  } finally {
    lowerByShape(true);
  }
  // The shapes program has type errors where a literal's kind does not fit.
  const errors = (outcome(shapes(), "/tmp/shapes.he") as { diagnostics: string[] }).diagnostics;
  assert.ok(errors.length > 0);
});

Deno.test("blocks that differ only in literal operands are lowered once", () => {
  const source = prqlJsBlocks(1_500);
  forgetLowered();
  const before = prqlc.calls.plToRq;
  check(source, "/tmp/g.he", { snapshot: null });
  assert.equal(prqlc.calls.plToRq - before, 1, "one shape, one lowering");
  // A new threshold typed into one block: no lowering at all.
  const edited = source.replace("filter amount > 7 ", "filter amount > 7123 ");
  assert.notEqual(edited, source);
  const r = check(edited, "/tmp/g.he", { snapshot: null });
  assert.ok(r.value.optimised);
  assert.equal(prqlc.calls.plToRq - before, 1);
});

Deno.test("a cold check lowers 60 distinct blocks in a few prql-js calls, and a warm one in none", () => {
  const source = prqlJsBlocks(1_500);
  const n = new Set(blocks(source, "/tmp/g.he")).size;
  assert.ok(n >= 50, `${n} blocks`);
  forgetLowered();
  const before = prqlc.calls;
  const r = check(source, "/tmp/g.he", { snapshot: null });
  assert.ok(r.value.optimised);
  const cold = prqlc.calls;
  const lowered = cold.plToRq - before.plToRq;
  assert.ok(lowered <= Math.ceil(n / BATCH) + 1, `${lowered} pl_to_rq calls for ${n} blocks`);
  assert.equal(cold.compile, before.compile, "SQL is never generated to type a block");
  assert.equal(cold.rqToSql, before.rqToSql);
  check(source, "/tmp/g.he", { snapshot: null });
  assert.deepEqual(prqlc.calls, cold, "a warm check makes no prql-js call");
});

Deno.test("one bad block in a batch is reported alone, at its place, and the rest stay batched", () => {
  const good = (k: number) =>
    `workflow W${k} {\n  file.read { path: "in.csv", format: "csv" }\n  | (\n    from input\n` +
    `    filter amount > ${k}\n  )\n  | file.write { path: "o${k}.csv", format: "csv" }\n}`;
  const bad =
    `workflow Bad {\n  file.read { path: "in.csv", format: "csv" }\n  | (\n    from input\n` +
    `    select {amount}\n    filter quantity > 1\n  )\n  | file.write { path: "b.csv", format: "csv" }\n}`;
  const source = `import "fhub/file" file\n${
    [...Array.from({ length: 40 }, (_, k) => good(k)), bad].join("\n")
  }\n`;
  forgetLowered();
  const before = prqlc.calls.plToRq;
  const r = check(source, "/tmp/b.he", { snapshot: null });
  const calls = prqlc.calls.plToRq - before;
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  assert.equal(errors.length, 1, errors.map((d) => d.message).join("\n"));
  assert.equal(errors[0].code, "HE0201");
  assert.equal(source.slice(errors[0].span.start, errors[0].span.end), "quantity");
  // Halving finds the bad block in about 2 log2(41) extra calls, far from one per block.
  assert.ok(calls <= 16, `${calls} pl_to_rq calls`);
});
