import { benchE2e } from "../e2e.ts";
const r = await benchE2e({ events: Number(Deno.args[0]), log: console.error });
console.log(JSON.stringify(r, null, 1));
