/**
 * The files plugin processes need by path (the protocol and the Python SDK) are copied to a
 * cache keyed by their content, so that a compiled binary, whose own files other processes
 * cannot see, hands out real paths.
 */
import assert from "node:assert/strict";
import { pluginAssets } from "../../runtime/plugins/mod.ts";

const root = new URL("../../", import.meta.url);

Deno.test("pluginAssets() copies the protocol and the Python SDK once into the cache", async () => {
  const cache = await Deno.makeTempDir();
  const assets = pluginAssets(cache);
  assert.equal(
    await Deno.readTextFile(assets.protoPath),
    await Deno.readTextFile(new URL("proto/plugin.proto", root)),
  );
  for (const entry of Deno.readDirSync(new URL("sdk/python/heddle_sdk", root))) {
    if (!entry.name.endsWith(".py")) continue;
    assert.equal(
      await Deno.readTextFile(`${assets.pythonPath}/heddle_sdk/${entry.name}`),
      await Deno.readTextFile(new URL(`sdk/python/heddle_sdk/${entry.name}`, root)),
    );
  }
  assert.ok(assets.protoPath.startsWith(cache + "/"));
  assert.deepEqual(pluginAssets(cache), assets, "the same paths on every call");
  const entries = [...Deno.readDirSync(cache)].map((e) => e.name);
  assert.equal(entries.length, 1, "no staging directory is left behind");
  await Deno.remove(cache, { recursive: true });
});
