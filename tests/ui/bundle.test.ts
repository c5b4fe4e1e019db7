/**
 * The UI's assets are a committed, generated module (`runtime/ui/_assets.generated.ts`), so
 * the program serves them with nothing fetched at run time. This fails when someone edits
 * `runtime/ui/app/` without running `deno task ui:build`.
 */
import assert from "node:assert/strict";
import { GENERATED, generatedModule } from "../../runtime/ui/bundle.ts";

Deno.test("the committed UI bundle is what `deno task ui:build` makes of runtime/ui/app/", async () => {
  const committed = await Deno.readTextFile(GENERATED);
  assert.ok(committed === await generatedModule(), "stale: run `deno task ui:build`");
});
