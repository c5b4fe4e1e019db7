/**
 * Chains (operator fusion at the plugin protocol): the host sends several steps of one plugin
 * package in one invocation, the SDKs run each batch through all of them in-process, and row
 * and step errors name the step that failed and the row of the original input.
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { numbers, REPO, rig } from "./_fixtures.ts";
import type { InvokeResult } from "../../runtime/plugins/mod.ts";

const TEST_PLUGINS = `${REPO}tests/plugins/testdata`;

function column(r: InvokeResult, lease: { table: { getChild(n: string): unknown } }, n: string) {
  ok(r.ok);
  const child = lease.table.getChild(n) as Iterable<unknown> | null;
  ok(child, `no column ${n}`);
  return [...child].map((v) => v === null ? null : Number(v));
}

Deno.test("a TypeScript chain runs both steps in one invocation and maps errors to input rows", async () => {
  await using r = rig();
  const result = await r.host.invokeChain([
    { step: "faulty/steps.run", config: { fail_rows: [1] } },
    { step: "faulty/steps.double", config: { fail_n: [3] } },
  ], r.registry.put(numbers(6), 1));
  ok(result.ok, result.ok ? "" : result.error.message);
  using lease = r.registry.open(result.output);
  deepEqual(lease.table.schema.fields.map((f) => f.name), ["n", "ok", "doubled"]);
  deepEqual(column(result, lease, "n"), [0, 2, 4, 5]);
  deepEqual(column(result, lease, "doubled"), [0, 4, 8, 10]);
  deepEqual(
    result.rowErrors.map((e) => [e.row, e.stepIndex]),
    [[1, 0], [3, 1]],
    "row 3 of the input is row 2 of the second step's input, and is reported as 3",
  );
  deepEqual(r.host.plugins().map((p) => p.invocations), [1]);
});

Deno.test("a Python chain runs both steps in one invocation and maps errors to input rows", async () => {
  await using r = rig({ roots: [TEST_PLUGINS] });
  const result = await r.host.invokeChain([
    { step: "chain-py/steps.add_one", config: { fail_n: [2] } },
    { step: "chain-py/steps.square", config: { fail_n: [4] } },
  ], r.registry.put(numbers(6), 1));
  ok(result.ok, result.ok ? "" : result.error.message);
  using lease = r.registry.open(result.output);
  deepEqual(column(result, lease, "n"), [0, 1, 3, 5]);
  deepEqual(column(result, lease, "squared"), [1, 4, 16, 36]);
  deepEqual(result.rowErrors.map((e) => [e.row, e.stepIndex]), [[2, 0], [4, 1]]);
  deepEqual(r.host.plugins().map((p) => p.invocations), [1]);
});

Deno.test("a step that throws in the middle of a chain is a step error naming that step", async () => {
  await using ts = rig();
  const tsResult = await ts.host.invokeChain([
    { step: "faulty/steps.run", config: {} },
    { step: "faulty/steps.double", config: { throw_n: [2] } },
  ], ts.registry.put(numbers(4), 1));
  ok(!tsResult.ok);
  equal(tsResult.error.code, "step-failed");
  equal(tsResult.error.step, "faulty/steps.double");
  equal(tsResult.error.details.stepIndex, 1);
  match(tsResult.error.message, /n = 2 throws on purpose/);

  await using py = rig({ roots: [TEST_PLUGINS] });
  const pyResult = await py.host.invokeChain([
    { step: "chain-py/steps.add_one", config: {} },
    { step: "chain-py/steps.square", config: { raise_n: [1] } },
  ], py.registry.put(numbers(4), 1));
  ok(!pyResult.ok);
  equal(pyResult.error.step, "chain-py/steps.square");
  equal(pyResult.error.details.stepIndex, 1);
  equal(pyResult.error.details.stepCode, "USER_CODE");
  match(pyResult.error.message, /n = 1 raises on purpose/);
});

Deno.test("a chain across two plugin packages is refused before any process starts", async () => {
  await using r = rig({ roots: [`${REPO}examples/plugins`, TEST_PLUGINS] });
  const result = await r.host.invokeChain([
    { step: "faulty/steps.run", config: {} },
    { step: "chain-py/steps.add_one", config: {} },
  ], r.registry.put(numbers(2), 1));
  ok(!result.ok);
  equal(result.error.code, "unknown-step");
  match(result.error.message, /one plugin process/);
  deepEqual(r.host.plugins().map((p) => p.state), []);
});
