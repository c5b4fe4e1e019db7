/**
 * The contract-error corpus and the clean corpus: every program in
 * tests/testdata/err/contracts/ must produce exactly the diagnostics written inline under
 * it, and every program in tests/testdata/ok/ must check without errors.
 */
import assert from "node:assert/strict";
import { check } from "../../compiler/mod.ts";
import { mismatches } from "./_expect.ts";

const root = new URL("../testdata/", import.meta.url);
const pluginRoot = new URL("../../examples/plugins/", import.meta.url).pathname;

function programs(dir: string): string[] {
  const path = new URL(dir, root);
  return [...Deno.readDirSync(path)].filter((e) => e.name.endsWith(".he")).map((e) =>
    new URL(e.name, path).pathname
  ).sort();
}

const errFiles = programs("err/contracts/");

Deno.test("the contract-error corpus holds at least 40 programs", () => {
  assert.ok(errFiles.length >= 40, `only ${errFiles.length} programs`);
});

for (const file of errFiles) {
  const name = file.split("/").at(-1);
  Deno.test(`check() reports the inline-expected diagnostics of err/contracts/${name}`, () => {
    const source = Deno.readTextFileSync(file);
    const r = check(source, file, { modulePath: [pluginRoot], snapshot: null });
    assert.deepEqual(mismatches(source, r.diagnostics), []);
  });
}

// The syntax corpus in ok/ exercises grammar with made-up modules; only programs meant to
// satisfy contracts are checked here.
for (
  const file of [
    ...programs("contracts/ok/"),
    new URL("../../examples/fraud_detection.he", import.meta.url).pathname,
  ]
) {
  const name = file.split("/").at(-1);
  Deno.test(`check() accepts ok/${name} without errors`, () => {
    const source = Deno.readTextFileSync(file);
    const snapshot = Deno.readTextFileSync(
      new URL("../../examples/fraud_detection.schema.json", import.meta.url),
    );
    const r = check(source, file, { modulePath: [pluginRoot], snapshot });
    const errors = r.diagnostics.filter((d) => d.severity === "error");
    assert.deepEqual(errors.map((d) => `${d.code} ${d.message}`), []);
  });
}
