/**
 * `ts-enrich/enrich`: the TypeScript plugin of the quickstart. Step `cents` appends each
 * row's amount in whole cents, computed in one pass over the shared-memory column (no copy
 * of the input). Started by a worker as `deno run -A main.ts`; it must stay dependency-free
 * beyond the SDK so that the quickstart runs offline.
 */

import { Field, Float64, Int64, makeData, RecordBatch, Schema, Struct } from "apache-arrow";
import {
  definePlugin,
  defineStep,
  inputPlus,
  openRow,
  serve,
} from "../../../sdk/typescript/mod.ts";

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

export const plugin = definePlugin({
  name: "ts-enrich",
  entry: "main.ts",
  modules: { enrich: [centsStep] },
});

if (import.meta.main) await serve(plugin);
