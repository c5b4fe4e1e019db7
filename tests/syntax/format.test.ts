/**
 * The formatter over the whole ok corpus: idempotent, tree-preserving (spans aside, PRQL
 * compared line by line), and comment-preserving. It must never compare against
 * hand-written expected output that could drift: the properties are what matter.
 */
import assert from "node:assert/strict";
import { format, parse } from "../../compiler/syntax/mod.ts";
import { stripSpans } from "./_fixtures.ts";
import { corpus } from "../_expect.ts";

for (const { name, source } of corpus("ok")) {
  Deno.test(`format() of ok/${name} is idempotent and keeps the tree and comments`, async (t) => {
    const once = format(source);
    assert.deepEqual(once.diagnostics, []);
    assert.equal(format(once.value).value, once.value);
    const before = parse(source).value;
    const after = parse(once.value).value;
    assert.deepEqual(stripSpans(after.items), stripSpans(before.items));
    assert.deepEqual(
      after.comments.map((c) => c.text.trim()),
      before.comments.map((c) => c.text.trim()),
    );
    await t.assertSnapshot(once.value);
  });
}

Deno.test("format() returns a file with syntax errors unchanged", () => {
  const broken = "resource r = a.b {\n  x: \n";
  const out = format(broken);
  assert.equal(out.value, broken);
  assert.ok(out.diagnostics.length > 0);
});

Deno.test("format() puts each stage of a multi-stage pipeline on its own line", () => {
  const out = format("workflow W {\n  a | b | c > d\n}\n").value;
  assert.equal(out, "workflow W {\n  a\n  | b\n  | c\n  > d\n}\n");
});

/** The triple-quoted strings of every PRQL block in a program, in source order. */
function tripleQuoted(source: string): string[] {
  return parse(source).value.items.flatMap((item) =>
    item.kind === "Workflow" || item.kind === "Handler"
      ? item.body.flatMap((st) => st.pipeline.stages)
        .flatMap((s) =>
          s.kind === "Prql" ? s.text.match(/"""[^]*?"""|\'\'\'[^]*?\'\'\'/g) ?? [] : []
        )
      : []
  );
}

for (const { name, source } of corpus("ok")) {
  Deno.test(`format() of ok/${name} keeps triple-quoted PRQL strings byte for byte`, () => {
    assert.deepEqual(tripleQuoted(format(source).value), tripleQuoted(source));
  });
}

Deno.test("format() re-indents PRQL code around a multi-line string but not inside it", () => {
  const src = "workflow W {\n  a\n  | (\n        from input\n" +
    '        derive s = """x\n  y  \n\n\tz"""\n        select {s}\n  )\n}\n';
  const out = format(src).value;
  assert.equal(
    out,
    "workflow W {\n  a\n  | (\n    from input\n" +
      '    derive s = """x\n  y  \n\n\tz"""\n    select {s}\n  )\n}\n',
  );
  assert.equal(format(out).value, out);
});
