/**
 * The golden corpus across every compiler phase. Each `ok/` program parses and checks with
 * the real built-in modules, the plugin manifests under `ok/plugins/` and its own
 * `<name>.schema.json`, without a single error or warning; its tree, optimised IR and the
 * optimiser's decisions are snapshotted. Each `err/` (syntax) and `err/contracts/` program
 * reports exactly the diagnostics written inline under it, and its rendered diagnostics are
 * snapshotted. It must never update expectations by itself: snapshots change only with
 * `deno test -A -u tests/golden.test.ts`, and the diff is reviewed like code.
 */
import assert from "node:assert/strict";
import { check, format, irToText, parse } from "../compiler/mod.ts";
import { renderHuman } from "../compiler/diagnostics/mod.ts";
import { corpus, expectations, mismatches } from "./_expect.ts";

const repo = new URL("../", import.meta.url).pathname;
const pluginRoot = new URL("../examples/plugins/", import.meta.url).pathname;
const seed = Deno.readTextFileSync(new URL("./testdata/ok/fraud_detection.he", import.meta.url));
// A verbatim copy of the seed design document (see tests/testdata/README.md), kept inside the
// repository so that the test runs in any checkout.
const overview = Deno.readTextFileSync(new URL("./testdata/heddle-overview.txt", import.meta.url));

Deno.test("the seed fixture is the overview's program byte for byte", () => {
  const start = overview.indexOf('import "fhub/kafka" kafka');
  assert.equal(overview.slice(start, start + seed.length), seed);
  const example = Deno.readTextFileSync(new URL("../examples/fraud_detection.he", import.meta.url));
  assert.equal(example, seed);
});

for (const { name, path, source } of corpus("ok")) {
  Deno.test(`ok/${name} passes every phase and its tree and IR match the snapshot`, async (t) => {
    const parsed = parse(source, name);
    assert.deepEqual(parsed.diagnostics, []);
    assert.ok(parsed.value.items.every((i) => i.kind !== "ErrorItem"));
    await t.assertSnapshot(parsed.value);

    const r = check(source, path);
    const loud = r.diagnostics.filter((d) => d.severity !== "info");
    assert.deepEqual(loud.map((d) => `${d.code} ${d.message}`), []);
    const optimised = r.value.optimised;
    assert.ok(optimised, "every phase ran");
    await t.assertSnapshot({
      ir: irToText(optimised),
      decisions: optimised.decisions,
      notes: r.diagnostics.map((d) => `${d.severity}[${d.code}] ${d.message}`),
    });
  });

  Deno.test(`format() of ok/${name} leaves the optimised IR unchanged`, () => {
    const before = check(source, path).value.optimised;
    const after = check(format(source).value, path).value.optimised;
    assert.ok(before && after);
    assert.equal(irToText(after), irToText(before));
  });
}

for (const { name, source } of corpus("err")) {
  Deno.test(`parse() reports exactly the inline expectations of err/${name}`, async (t) => {
    const { value, diagnostics } = parse(source, name);
    assert.ok(expectations(source).length > 0, "an err fixture must carry expectations");
    assert.deepEqual(mismatches(source, diagnostics), []);
    await t.assertSnapshot({
      tree: value,
      rendered: renderHuman(diagnostics, source, name, { color: false }),
    });
  });
}

for (const { name, path, source } of corpus("err/contracts")) {
  Deno.test(`check() reports exactly the inline expectations of err/contracts/${name}`, async (t) => {
    const r = check(source, path, { modulePath: [pluginRoot], snapshot: null });
    assert.ok(expectations(source).length > 0, "an err fixture must carry expectations");
    assert.deepEqual(mismatches(source, r.diagnostics), []);
    // Rendered against the real path so that frames show; the snapshot holds no checkout path.
    const rendered = renderHuman(r.diagnostics, source, path, { color: false });
    await t.assertSnapshot(rendered.replaceAll(path, name).replaceAll(repo, "<repo>/"));
  });
}
