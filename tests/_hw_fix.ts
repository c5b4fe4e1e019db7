import { check } from "../compiler/mod.ts";
import { corpus, mismatches, observed } from "./_expect.ts";
const pluginRoot = new URL("../examples/plugins/", import.meta.url).pathname;
const run = (f: { path: string }, src: string) =>
  check(src, f.path, { modulePath: [pluginRoot], snapshot: null }).diagnostics;
for (const f of corpus("err/contracts")) {
  let lines = f.source.split("\n");
  const std = new Set(lines.slice(0, 8));
  let src = f.source;
  let header: number[] = [];
  do {
    header = run(f, src).map((d) => observed(src, d)).filter((o) =>
      o.code === "HE0123" && std.has(src.split("\n")[o.line - 1]) && /^(import|resource) `\w+` is never used$/.test(o.message)
    ).map((o) => o.line);
    lines = src.split("\n").filter((_, i) => !header.includes(i + 1));
    src = lines.join("\n");
  } while (header.length > 0);
  const extra = mismatches(src, run(f, src)).filter((m) => m.startsWith("unexpected") && / warning\[/.test(m));
  const adds = run(f, src).map((d) => observed(src, d)).filter((o) =>
    o.severity === "warning" && extra.some((m) => m.includes(`${o.line}:${o.column}+${o.width} `))
  ).sort((a, b) => b.line - a.line || b.column - a.column);
  lines = src.split("\n");
  for (const o of adds) {
    let at = o.line; // insert after the target and its existing expectation lines
    while (at < lines.length && /^\s*\/\/\s*\^/.test(lines[at])) at++;
    lines.splice(at, 0, " ".repeat(o.column - 3) + "//" + "^".repeat(o.width) + ` warning[${o.code}]: ${o.message}`);
  }
  src = lines.join("\n");
  if (src !== f.source) { Deno.writeTextFileSync(f.path, src); console.log("rewrote", f.name, header, adds.length); }
}
