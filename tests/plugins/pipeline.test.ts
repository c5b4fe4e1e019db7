/**
 * The data path through plugins: a million rows go from the worker (TypeScript) through a
 * Python step and a TypeScript step and come back intact, the reader's buffers are the
 * shared memory itself, and the bytes on the plugin socket do not grow with the data.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { assertSocketBytesFlat, EXAMPLES, PYTHONPATH, rig, transactions } from "./_fixtures.ts";

/** The fraud rule of examples/plugins/fraud-score, restated independently. */
function expectedScore(amount: number): number {
  const magnitude = (Math.log10(Math.max(amount, 1)) - 3) / 3;
  const base = Math.min(Math.max(magnitude, 0), 1) * 0.75;
  const bonus = amount >= 1000 && amount - Math.floor(amount / 1000) * 1000 === 0 ? 0.25 : 0;
  return Math.min(base + bonus, 1);
}

Deno.test("a million rows pass TypeScript -> Python -> TypeScript through two plugin steps intact", async () => {
  await using r = rig();
  const rows = 1_000_000;
  const source = transactions(rows);
  const input = r.registry.put(source, 1);
  const scored = await r.host.invoke("fraud-score/detect.process", { threshold: 0 }, input);
  ok(scored.ok, scored.ok ? "" : scored.error.message);
  deepEqual(scored.rowErrors, []);
  equal(scored.output.rows, rows);
  const enriched = await r.host.invoke("ts-enrich/enrich.cents", {}, scored.output);
  ok(enriched.ok, enriched.ok ? "" : enriched.error.message);
  equal(enriched.output.rows, rows);

  using lease = r.registry.open(enriched.output);
  deepEqual(lease.table.schema.fields.map((f) => f.name), [
    "user_id",
    "amount",
    "fraud_score",
    "amount_cents",
  ]);
  const sourceAmount = source.getChild("amount")!.toArray() as Float64Array;
  let row = 0;
  let mismatches = 0;
  for (const batch of lease.table.batches) {
    const userId = batch.getChild("user_id")!.toArray() as BigInt64Array;
    const amount = batch.getChild("amount")!.toArray() as Float64Array;
    const score = batch.getChild("fraud_score")!.toArray() as Float64Array;
    const cents = batch.getChild("amount_cents")!.toArray() as BigInt64Array;
    for (let i = 0; i < batch.numRows; i++, row++) {
      const a = sourceAmount[row];
      if (
        userId[i] !== BigInt(row) || amount[i] !== a ||
        Math.abs(score[i] - expectedScore(a)) > 1e-12 ||
        cents[i] !== BigInt(Math.round(a * 100))
      ) mismatches++;
    }
  }
  equal(row, rows);
  equal(mismatches, 0);
});

Deno.test("a consumer's Arrow buffers lie inside the mapped output segment", async () => {
  await using r = rig();
  const input = r.registry.put(transactions(10_000), 1);
  const scored = await r.host.invoke("fraud-score/detect.process", { threshold: 0 }, input);
  ok(scored.ok);
  using lease = r.registry.open(scored.output);
  const start = lease.bytes.byteOffset;
  const end = start + lease.bytes.byteLength;
  for (const column of ["user_id", "amount", "fraud_score"]) {
    for (const data of lease.table.getChild(column)!.data) {
      equal(data.values.buffer, lease.bytes.buffer, `${column} is not a view of the mapping`);
      ok(data.values.byteOffset >= start && data.values.byteOffset + data.values.byteLength <= end);
    }
  }
});

Deno.test("the bytes on the Python plugin socket stay small and constant as the batch grows 1000-fold", async () => {
  await assertSocketBytesFlat({
    command: ["python3", "-m", "fraud_score"],
    cwd: `${EXAMPLES}/fraud-score`,
    env: { PYTHONPATH },
    step: "fraud-score/detect.process",
    configJson: '{"threshold":0}',
    table: transactions,
  });
});
