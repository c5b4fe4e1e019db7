import { benchMemory } from "../memory.ts";
const r = await benchMemory({ rows: Number(Deno.args[0]), budget: Number(Deno.args[1]) * 1024 * 1024, log: console.error });
console.log(JSON.stringify(r.rows));
