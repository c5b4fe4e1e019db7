/**
 * Compiled plugins (Go, Rust): the worker builds a package on first use, caches the binary
 * by the content of its sources, starts the cached binary afterwards without building, and
 * reports a build failure with the compiler's own words. The Go SDK's manifest is what the
 * committed one says, and its inputs are read zero-copy (its own `go test` checks addresses).
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { Field, Float64, makeData, RecordBatch, Schema, Struct, Table } from "apache-arrow";
import { buildCacheRoot, scaffoldPlugin } from "../../runtime/plugins/mod.ts";
import { provision } from "../../runtime/plugins/_build.ts";
import { EXAMPLES, rig, valueTable } from "./_fixtures.ts";

const GEO = `${EXAMPLES}/geo`;
const hasGo = await new Deno.Command("go", { args: ["version"] }).output().then(
  (o) => o.success,
  () => false,
);

function coordinates(rows: [number | null, number, number, number][]): Table {
  const names = ["lat", "lon", "home_lat", "home_lon"];
  const fields = names.map((n) => new Field(n, new Float64(), true));
  const children = names.map((_, c) => {
    const values = new Float64Array(rows.length);
    const valid = new Uint8Array(Math.ceil(rows.length / 8));
    rows.forEach((row, i) => {
      if (row[c] === null) return;
      values[i] = row[c]!;
      valid[i >> 3] |= 1 << (i & 7);
    });
    const nulls = rows.filter((r) => r[c] === null).length;
    return makeData({
      type: new Float64(),
      length: rows.length,
      data: values,
      nullBitmap: nulls ? valid : undefined,
      nullCount: nulls,
    });
  });
  const schema = new Schema(fields);
  const struct = makeData({ type: new Struct(fields), length: rows.length, children });
  return new Table(schema, new RecordBatch(schema, struct));
}

async function copyPackage(from: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "heddle-compiled-" });
  for await (const entry of Deno.readDir(from)) {
    if (entry.isFile) await Deno.copyFile(`${from}/${entry.name}`, `${dir}/${entry.name}`);
  }
  // The copy sits elsewhere, so its `replace` must point at the SDK by absolute path.
  const goMod = await Deno.readTextFile(`${dir}/go.mod`);
  await Deno.writeTextFile(
    `${dir}/go.mod`,
    goMod.replace("../../../sdk/go", new URL("../../sdk/go", import.meta.url).pathname),
  );
  return dir;
}

Deno.test({
  name: "the Go SDK regenerates the committed geo manifest exactly",
  ignore: !hasGo,
  async fn() {
    const out = await new Deno.Command("go", { args: ["run", ".", "manifest"], cwd: GEO }).output();
    ok(out.success, new TextDecoder().decode(out.stderr));
    deepEqual(
      JSON.parse(new TextDecoder().decode(out.stdout)),
      JSON.parse(await Deno.readTextFile(`${GEO}/heddle.manifest.json`)),
    );
  },
});

Deno.test({
  name: "a Go step is built on first use, runs over shared memory and reports row errors",
  ignore: !hasGo,
  async fn() {
    await using r = rig();
    const input = r.registry.put(
      coordinates([
        [52.52, 13.405, 48.8566, 2.3522],
        [null, 0, 0, 0],
        [10, 20, 10, 20],
        [91, 0, 0, 0],
      ]),
      1,
    );
    const result = await r.host.invoke("geo/distance.haversine", {}, input, {
      timeoutMs: 600_000,
    });
    ok(result.ok, result.ok ? "" : result.error.message);
    deepEqual(result.rowErrors.map((e) => [e.row, e.message]), [
      [1, "a coordinate is missing"],
      [3, "a coordinate is out of range"],
    ]);
    using lease = r.registry.open(result.output);
    const table = lease.table;
    const km = table.getChild("km_from_home")!.toArray() as Float64Array;
    equal(km.length, 2);
    ok(Math.abs(km[0] - 877.5) < 2, `Berlin-Paris ${km[0]} km`);
    equal(km[1], 0);
    deepEqual(table.schema.fields.map((f) => f.name), [
      "lat",
      "lon",
      "home_lat",
      "home_lon",
      "km_from_home",
    ]);
  },
});

Deno.test({
  name: "a second start uses the cached binary; a changed source builds anew",
  ignore: !hasGo,
  async fn() {
    const cache = await Deno.makeTempDir({ prefix: "heddle-build-cache-" });
    const dir = await copyPackage(GEO);
    try {
      const manifest = JSON.parse(await Deno.readTextFile(`${dir}/heddle.manifest.json`));
      const spec = { dir, name: "geo", build: manifest.build, entry: manifest.entry };
      const first = await provision(spec, cache);
      ok(first.ok && first.built, first.ok ? "not built" : first.message);
      const inode = (await Deno.stat(first.binary)).ino;
      const second = await provision(spec, cache);
      ok(second.ok && !second.built, "the second start built again");
      equal(second.binary, first.binary);
      equal((await Deno.stat(second.binary)).ino, inode);
      await Deno.writeTextFile(`${dir}/extra.go`, "package main\n\nconst unused = 1\n");
      const changed = await provision(spec, cache);
      ok(changed.ok && changed.built, "a changed source did not rebuild");
      ok(changed.binary !== first.binary);
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(cache, { recursive: true });
    }
  },
});

Deno.test({
  name: "a build failure names the package and quotes the compiler, and leaves no binary",
  ignore: !hasGo,
  async fn() {
    const cache = await Deno.makeTempDir({ prefix: "heddle-build-cache-" });
    const dir = await copyPackage(GEO);
    try {
      await Deno.writeTextFile(`${dir}/broken.go`, "package main\n\nfunc broken() { return 1 }\n");
      const manifest = JSON.parse(await Deno.readTextFile(`${dir}/heddle.manifest.json`));
      const result = await provision(
        { dir, name: "geo", build: manifest.build, entry: manifest.entry },
        cache,
      );
      ok(!result.ok);
      ok(result.message.startsWith("cannot build plugin `geo`"), result.message);
      ok(result.message.includes("broken.go:3"), result.message);
      ok(result.message.includes("too many return values"), result.message);
      const left = [];
      for await (const key of Deno.readDir(cache)) {
        for await (const f of Deno.readDir(`${cache}/${key.name}`)) left.push(f.name);
      }
      deepEqual(left, []);
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(cache, { recursive: true });
    }
  },
});

Deno.test({
  name: "a missing toolchain is a clear start failure, not a crash",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const result = await provision({
        dir,
        name: "nothing",
        build: ["heddle-no-such-compiler", "{binary}"],
        entry: ["{binary}"],
      }, dir + "/cache");
      ok(!result.ok);
      ok(result.message.includes("is its toolchain installed?"), result.message);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const hasCargo = await new Deno.Command("cargo", { args: ["--version"] }).output().then(
  (o) => o.success,
  () => false,
);

const SCAFFOLDS = [
  { lang: "go", available: hasGo, test: ["go", "test", "./..."], manifest: ["go", "run", "."] },
  {
    lang: "rust",
    available: hasCargo,
    test: ["cargo", "test", "--release", "--quiet"],
    manifest: ["cargo", "run", "--release", "--quiet", "--"],
  },
] as const;

async function succeed(words: readonly string[], cwd: string): Promise<string> {
  const [command, ...args] = words;
  // The scaffold's own `cargo test` shares the worker's target directory, so Arrow and tonic
  // are compiled once per machine, not once per test package.
  const env = {
    CARGO_TARGET_DIR: Deno.env.get("CARGO_TARGET_DIR") ?? `${buildCacheRoot()}/cargo-target`,
  };
  const out = await new Deno.Command(command, { args, cwd, env }).output();
  const text = new TextDecoder().decode(out.stdout);
  ok(out.success, new TextDecoder().decode(out.stderr) + text);
  return text;
}

for (const { lang, available, test, manifest: printManifest } of SCAFFOLDS) {
  Deno.test({
    name:
      `scaffoldPlugin creates a ${lang} plugin outside the repository whose test passes and a host runs`,
    ignore: !available,
    async fn() {
      const parent = await Deno.makeTempDir({ prefix: "heddle-scaffold-" });
      try {
        const made = scaffoldPlugin({ lang, name: `demo-${lang}`, dir: parent });
        ok(made.ok, made.ok ? "" : made.message);
        const manifest = JSON.parse(await Deno.readTextFile(`${made.dir}/heddle.manifest.json`));
        equal(manifest.runtime, lang);
        await succeed(test, made.dir);
        // The SDK, reading the scaffold's code, declares exactly what the scaffold wrote.
        deepEqual(JSON.parse(await succeed([...printManifest, "manifest"], made.dir)), manifest);
        await using r = rig({ roots: [parent] });
        const result = await r.host.invoke(
          `demo-${lang}/transform.double`,
          {},
          r.registry.put(valueTable([1.5, null, -2]), 1),
          { timeoutMs: 900_000 },
        );
        ok(result.ok, result.ok ? "" : result.error.message);
        using lease = r.registry.open(result.output);
        deepEqual([...lease.table.getChild("doubled")!], [3, null, -4]);
      } finally {
        await Deno.remove(parent, { recursive: true });
      }
    },
  });
}
