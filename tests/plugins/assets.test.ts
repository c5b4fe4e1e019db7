/**
 * The files plugin processes need by path (the protocol and the Python SDK) are copied to a
 * cache keyed by their content, so that a compiled binary, whose own files other processes
 * cannot see, hands out real paths.
 */
import assert from "node:assert/strict";
import { pluginAssets } from "../../runtime/plugins/mod.ts";
import { TYPESCRIPT_SDK_DIRS } from "../../runtime/plugins/_assets.ts";

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

Deno.test("the copied TypeScript SDK holds every module its graph reaches, and it loads", async () => {
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "sdk/typescript/mod.ts"],
    cwd: new URL(".", root).pathname,
  }).output();
  assert.ok(info.success, new TextDecoder().decode(info.stderr));
  const graph = JSON.parse(new TextDecoder().decode(info.stdout)) as {
    modules: { specifier: string }[];
  };
  const local = graph.modules.map((m) => m.specifier).filter((s) => s.startsWith(root.href))
    .map((s) => s.slice(root.href.length));
  const folders = new Set(local.map((path) => path.slice(0, path.lastIndexOf("/"))));
  assert.deepEqual([...folders].filter((f) => !TYPESCRIPT_SDK_DIRS.includes(f)), []);
  const cache = await Deno.makeTempDir();
  try {
    const copy = pluginAssets(cache).typescriptSdk.replace(/sdk\/typescript\/mod\.ts$/, "");
    for (const path of local) {
      assert.equal(
        await Deno.readTextFile(copy + path),
        await Deno.readTextFile(new URL(path, root)),
      );
    }
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});
