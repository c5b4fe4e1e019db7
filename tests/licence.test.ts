/**
 * The licence is stated once in README.md and LICENSE; every package manifest must say the
 * same SPDX id, because a manifest is what registries and tools show (issue 16 found the
 * Python SDK saying GPL-3.0-or-later and deno.json saying nothing).
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);
const read = (path: string) => Deno.readTextFileSync(new URL(path, root));

Deno.test("every manifest states the README's licence, GPL-3.0-only", () => {
  assert.match(read("README.md"), /^GPL-3\.0-only/m);
  assert.equal(JSON.parse(read("deno.json")).license, "GPL-3.0-only");
  assert.match(read("sdk/python/pyproject.toml"), /^license = \{ text = "GPL-3\.0-only" \}$/m);
});
