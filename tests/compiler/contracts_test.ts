/**
 * The contract corpora beyond the per-program goldens of tests/golden.test.ts: the
 * contract-error corpus stays broad, and the shipped example checks with its own manifest
 * and snapshot. It must never relax a corpus check: the per-program expectations live in the
 * golden test, which matches them exactly.
 */
import assert from "node:assert/strict";
import { check } from "../../compiler/mod.ts";
import { corpus } from "../_expect.ts";
import { generateProgram } from "../../bench/parse.ts";

Deno.test("the contract-error corpus holds at least 40 programs", () => {
  const n = corpus("err/contracts").length;
  assert.ok(n >= 40, `only ${n} programs`);
});

Deno.test("check() accepts examples/fraud_detection.he with its manifest and snapshot", () => {
  const file = new URL("../../examples/fraud_detection.he", import.meta.url).pathname;
  const r = check(Deno.readTextFileSync(file), file);
  const loud = r.diagnostics.filter((d) => d.severity !== "info");
  assert.deepEqual(loud.map((d) => `${d.code} ${d.message}`), []);
});

Deno.test("the ok corpus's plugin manifest for the seed is the example's", () => {
  const read = (p: string) => JSON.parse(Deno.readTextFileSync(new URL(p, import.meta.url)));
  const manifest = "plugins/fraud-score/heddle.manifest.json";
  assert.deepEqual(read(`../testdata/ok/${manifest}`), read(`../../examples/${manifest}`));
  const snapshot = "fraud_detection.schema.json";
  assert.deepEqual(read(`../testdata/ok/${snapshot}`), read(`../../examples/${snapshot}`));
});

Deno.test("check() passes the benchmark's generated program through every phase", () => {
  const r = check(generateProgram(500), "/tmp/generated.he", { snapshot: null });
  const loud = r.diagnostics.filter((d) => d.severity !== "info");
  assert.deepEqual(loud.map((d) => `${d.code} ${d.message}`), []);
  assert.ok(r.value.optimised);
  assert.ok(r.value.optimised.graphs.filter((g) => g.kind === "workflow").length >= 10);
});
