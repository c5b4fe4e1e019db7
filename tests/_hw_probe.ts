import { check, parse } from "../compiler/mod.ts";
import { corpus, mismatches } from "./_expect.ts";
const pluginRoot = new URL("../examples/plugins/", import.meta.url).pathname;
for (const f of corpus("err/contracts")) {
  const r = check(f.source, f.path, { modulePath: [pluginRoot], snapshot: null });
  const m = mismatches(f.source, r.diagnostics);
  if (m.length) console.log(f.name, m);
}
for (const f of corpus("err")) {
  const m = mismatches(f.source, parse(f.source, f.name).diagnostics);
  if (m.length) console.log(f.name, m);
}
