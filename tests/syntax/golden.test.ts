/**
 * The golden corpus: every `ok/` program parses without diagnostics, every `err/` program
 * reports exactly the diagnostics written inline next to the offending text, and the trees
 * and rendered diagnostics are snapshotted for review. It must never update expectations by
 * itself: snapshots change only with `deno test -A -u tests/syntax/`.
 */
import assert from "node:assert/strict";
import { parse } from "../../compiler/syntax/mod.ts";
import { renderHuman } from "../../compiler/diagnostics/mod.ts";
import { corpus, expectations, observed } from "./_fixtures.ts";

const seed = Deno.readTextFileSync(new URL("../testdata/ok/fraud_detection.he", import.meta.url));
const overview = Deno.readTextFileSync("/work/shared/seed/heddle-overview.txt");

Deno.test("the seed fixture is the overview's program byte for byte", () => {
  const start = overview.indexOf('import "fhub/kafka" kafka');
  assert.equal(overview.slice(start, start + seed.length), seed);
  const example = Deno.readTextFileSync(
    new URL("../../examples/fraud_detection.he", import.meta.url),
  );
  assert.equal(example, seed);
});

for (const { name, source } of corpus("ok")) {
  Deno.test(`parse() accepts ok/${name} and its tree matches the snapshot`, async (t) => {
    const { value, diagnostics } = parse(source, name);
    assert.deepEqual(diagnostics, []);
    assert.ok(value.items.every((i) => i.kind !== "ErrorItem"));
    await t.assertSnapshot(value);
  });
}

for (const { name, source } of corpus("err")) {
  Deno.test(`parse() reports exactly the inline expectations of err/${name}`, async (t) => {
    const { value, diagnostics } = parse(source, name);
    const wanted = expectations(source);
    assert.ok(wanted.length > 0, "an err fixture must carry expectations");
    const got = diagnostics.map((d) => observed(source, d));
    for (const w of wanted) {
      const hit = got.find((g) =>
        g.line === w.line && g.column === w.column &&
        g.width === w.width && g.code === w.code && g.message.includes(w.message)
      );
      assert.ok(hit, `missing ${JSON.stringify(w)}; got ${JSON.stringify(got, null, 1)}`);
    }
    assert.equal(got.length, wanted.length, `unexpected extra diagnostics: ${JSON.stringify(got)}`);
    await t.assertSnapshot({
      tree: value,
      rendered: renderHuman(diagnostics, source, name, { color: false }),
    });
  });
}
