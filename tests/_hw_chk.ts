import { check } from "../compiler/mod.ts";
import { renderHuman } from "../compiler/diagnostics/mod.ts";
for (const f of Deno.args) {
  const src = Deno.readTextFileSync(f);
  const r = check(src, f);
  console.log("==", f, r.value.optimised ? "OPT" : "stopped");
  console.log(renderHuman(r.diagnostics, src, f, { color: false }));
}
