import { check } from "../../compiler/mod.ts";
const r = check(Deno.readTextFileSync(Deno.args[0]), Deno.args[0]);
console.log(JSON.stringify(r.diagnostics.map(d=>d.code + " " + d.message), null, 1));
for (const g of r.value.optimised?.graphs ?? []) for (const s of g.stages) console.log(s.id, s.kind, s.module, s.op, s.step, JSON.stringify(s.inputs.map(i=>i.from)), JSON.stringify(s.output?.fields.map(f=>f.name+":"+f.type)));
