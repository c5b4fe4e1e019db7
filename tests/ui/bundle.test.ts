/**
 * The UI's assets are a committed, generated module (`runtime/ui/_assets.generated.ts`), so
 * the program serves them with nothing fetched at run time. This fails when someone edits
 * `runtime/ui/app/` without running `deno task ui:build`; and the server must serve only
 * what is compiled into the program, so that a `deno compile`d binary serves the same.
 */
import assert from "node:assert/strict";
import { GENERATED, generatedModule } from "../../runtime/ui/bundle.ts";

Deno.test("the committed UI bundle is what `deno task ui:build` makes of runtime/ui/app/", async () => {
  const committed = await Deno.readTextFile(GENERATED);
  assert.ok(committed === await generatedModule(), "stale: run `deno task ui:build`");
});

Deno.test("the UI server reads no file and fetches nothing at run time (works when compiled)", async () => {
  const dir = new URL("../../runtime/ui/", import.meta.url);
  const served = [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.startsWith("_"));
  assert.ok(served.some((e) => e.name === "_assets.generated.ts"));
  // The generated module is the browser's code (which does fetch its API), held as strings.
  for (const { name } of served.filter((e) => e.name !== "_assets.generated.ts")) {
    const text = await Deno.readTextFile(new URL(name, dir));
    assert.doesNotMatch(text, /Deno\.(read|open|stat)|import\.meta\.url|fetch\(/, name);
  }
});
