/**
 * The docs stay true: every `he` code block in the README and the language reference
 * checks clean (or, when marked `he,err`, fails), and every diagnostic code the compiler
 * can emit is documented in docs/diagnostics.md.
 */
import assert from "node:assert/strict";
import { check, IR_CODES, RESOLVE_CODES, SQL_CODES, TYPE_CODES } from "../compiler/mod.ts";
import { SYNTAX_CODE_TABLE } from "../compiler/syntax/mod.ts";

const root = new URL("../", import.meta.url).pathname;
const heddlePath = `${root}examples/plugins`;

function blocks(markdown: string): { info: string; code: string; line: number }[] {
  const found = [];
  const re = /^```(he[^\n]*)\n([\s\S]*?)^```/gm;
  for (const m of markdown.matchAll(re)) {
    found.push({
      info: m[1].trim(),
      code: m[2],
      line: markdown.slice(0, m.index).split("\n").length,
    });
  }
  return found;
}

for (const doc of ["README.md", "docs/language.md"]) {
  Deno.test(`the he examples in ${doc} check as they claim`, async () => {
    const text = await Deno.readTextFile(root + doc);
    const examples = blocks(text);
    assert.ok(examples.length > 0, `${doc} has he examples`);
    for (const { info, code, line } of examples) {
      const errors = check(code, `${root}examples/${doc}.he`, { heddlePath, snapshot: null })
        .diagnostics.filter((d) => d.severity === "error");
      if (info.includes("err")) assert.ok(errors.length > 0, `${doc}:${line} should fail`);
      else {
        assert.deepEqual(errors.map((e) => `${e.code} ${e.message}`), [], `${doc}:${line}`);
      }
    }
  });
}

Deno.test("every diagnostic code is documented in docs/diagnostics.md", async () => {
  const doc = await Deno.readTextFile(`${root}docs/diagnostics.md`);
  const codes = [
    ...SYNTAX_CODE_TABLE.map((c) => c.code),
    ...[RESOLVE_CODES, TYPE_CODES, SQL_CODES, IR_CODES].flatMap((table) =>
      Object.values(table).map((c) => (c as { code: string }).code)
    ),
  ];
  assert.ok(codes.length > 40);
  const missing = codes.filter((code) => !doc.includes(code));
  assert.deepEqual(missing, []);
});
