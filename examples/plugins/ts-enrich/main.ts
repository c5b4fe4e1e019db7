/**
 * `ts-enrich/enrich`: the TypeScript plugin of the quickstart and of examples/polyglot.he.
 * Step `cents` appends each row's amount in whole cents, and step `risk` a score from the
 * flags and distances that the polyglot chain's Python and Go steps added; each is one pass
 * over the shared-memory columns (no copy of the input). Started by a worker as `deno run -A main.ts`; it must stay dependency-free
 * beyond the SDK so that the quickstart runs offline.
 */

import { Bool, Field, Float64, Int64, makeData, RecordBatch, Schema, Struct } from "apache-arrow";
import { definePlugin, defineStep, inputPlus, openRow, serve } from "@heddle/sdk";

const amounts = new Schema([new Field("amount", new Float64(), true)]);
const cents = new Schema([new Field("amount_cents", new Int64(), true)]);

/** Appends `amount_cents` (null where `amount` is null), rounding half away from zero. */
export const centsStep = defineStep({
  name: "cents",
  doc: "Appends `amount_cents`: the amount in whole cents.",
  input: openRow(amounts),
  output: inputPlus(cents),
  run(batch) {
    const amount = batch.getChild("amount")!;
    const values = new BigInt64Array(batch.numRows);
    const valid = new Uint8Array(Math.ceil(batch.numRows / 8));
    for (let i = 0; i < batch.numRows; i++) {
      const x = amount.get(i);
      if (x === null) continue;
      values[i] = BigInt(Math.sign(x) * Math.round(Math.abs(x) * 100));
      valid[i >> 3] |= 1 << (i & 7);
    }
    const nulls = amount.nullCount;
    const data = makeData({
      type: new Int64(),
      length: batch.numRows,
      data: values,
      nullBitmap: nulls > 0 ? valid : undefined,
      nullCount: nulls,
    });
    const struct = makeData({
      type: new Struct(cents.fields),
      length: batch.numRows,
      children: [data],
    });
    return new RecordBatch(cents, struct);
  },
});

const riskInputs = new Schema([
  new Field("is_large", new Bool(), true),
  new Field("km_from_home", new Float64(), false),
]);
const risk = new Schema([new Field("risk", new Float64(), false)]);

/** Risk in [0, 1]: 0.5 for a large payment, plus up to 0.5 growing with the distance from home. */
export function riskOf(isLarge: boolean | null, km: number): number {
  return (isLarge ? 0.5 : 0) + Math.min(km / 2000, 0.5);
}

export const riskStep = defineStep({
  name: "risk",
  doc: "Appends `risk`: 0.5 for a large payment plus up to 0.5 for the distance from home.",
  input: openRow(riskInputs),
  output: inputPlus(risk),
  run(batch) {
    const large = batch.getChild("is_large")!;
    const km = batch.getChild("km_from_home")!.toArray() as Float64Array;
    const values = Float64Array.from(km, (d, i) => riskOf(large.get(i), d));
    const data = makeData({ type: new Float64(), length: batch.numRows, data: values });
    const struct = makeData({
      type: new Struct(risk.fields),
      length: batch.numRows,
      children: [data],
    });
    return new RecordBatch(risk, struct);
  },
});

export const plugin = definePlugin({
  name: "ts-enrich",
  entry: "main.ts",
  modules: { enrich: [centsStep, riskStep] },
});

if (import.meta.main) await serve(plugin);
