import { benchStages } from "../stages.ts";
const [stages, rows, batchRows] = Deno.args.map(Number);
const r = await benchStages({ stages, rows, batchRows, runs: 3, log: console.error });
console.log(JSON.stringify(r.rows, null, 1));
