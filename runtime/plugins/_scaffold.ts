/**
 * `heddle plugin new`: creates a plugin package (manifest, one sample step, a test) that a
 * worker can run as it is. The manifest is written from the same declaration the SDK reads,
 * and tests/plugins checks that the SDK regenerates it byte-equal in meaning; the scaffold
 * must never write into a directory that already exists.
 */

import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface ScaffoldOptions {
  lang: "python" | "typescript";
  /** The package name (`fraud-score`): lowercase letters, digits and dashes. */
  name: string;
  /** The directory the package folder is created in (default: the current directory). */
  dir?: string;
}

export type ScaffoldResult =
  | { ok: true; dir: string; files: string[] }
  | { ok: false; message: string };

const repo = fileURLToPath(new URL("../../", import.meta.url));

/** The sample step's manifest entry; both languages declare exactly this. */
const sampleStep = {
  doc: "Appends `doubled`: twice `value`.",
  role: "transform",
  config: [],
  slots: [],
  input: { fields: [{ name: "value", type: "float64", nullable: true }], open: true },
  output: { fields: [{ name: "doubled", type: "float64", nullable: true }], include_input: true },
};

function manifest(name: string, runtime: string, entry: string[]): string {
  return JSON.stringify(
    {
      heddle_manifest: 1,
      package: name,
      runtime,
      entry,
      modules: { [`${name}/transform`]: { resources: {}, steps: { double: sampleStep } } },
    },
    null,
    2,
  ) + "\n";
}

function pythonFiles(name: string): Record<string, string> {
  const pkg = name.replace(/-/g, "_");
  return {
    "heddle.manifest.json": manifest(name, "python", ["python3", "-m", pkg]),
    [`${pkg}/__init__.py`]:
      `"""The \`${name}\` Heddle plugin; each submodule is an import path \`${name}/<module>\`."""\n`,
    [`${pkg}/__main__.py`]:
      `"""Started by the worker as \`python3 -m ${pkg}\`."""\n\nfrom heddle_sdk import serve\n\nserve("${pkg}")\n`,
    [`${pkg}/transform.py`]: `"""\`${name}/transform\`: a sample step to replace with your own."""

import pyarrow as pa
import pyarrow.compute as pc

from heddle_sdk import input_plus, open_row, step


@step(
    name="double",
    input=open_row(pa.schema([pa.field("value", pa.float64())])),
    output=input_plus(pa.schema([pa.field("doubled", pa.float64())])),
    doc="Appends \`doubled\`: twice \`value\`.",
)
def double(batch: pa.RecordBatch) -> pa.RecordBatch:
    doubled = pc.multiply(batch.column("value"), 2.0)
    return pa.RecordBatch.from_arrays([doubled], names=["doubled"])
`,
    "tests/test_transform.py":
      `"""Runs the sample step on a small batch: \`python3 -m unittest discover tests\`."""

import unittest

import pyarrow as pa

from ${pkg}.transform import double


class DoubleTest(unittest.TestCase):
    def test_doubles_every_value_and_keeps_nulls(self):
        batch = pa.record_batch({"value": pa.array([1.5, None, -2.0])})
        self.assertEqual(double(batch).column("doubled").to_pylist(), [3.0, None, -4.0])


if __name__ == "__main__":
    unittest.main()
`,
  };
}

function typescriptFiles(name: string, target: string): Record<string, string> {
  const sdk = relative(target, join(repo, "sdk/typescript/mod.ts"));
  const imports = JSON.parse(Deno.readTextFileSync(join(repo, "deno.json"))).imports;
  const pick = ["apache-arrow", "@grpc/grpc-js", "@grpc/proto-loader"];
  return {
    "heddle.manifest.json": manifest(name, "typescript", ["deno", "run", "-A", "main.ts"]),
    "deno.json": JSON.stringify(
      { imports: Object.fromEntries(pick.map((key) => [key, imports[key]])) },
      null,
      2,
    ) + "\n",
    "main.ts":
      `/** The \`${name}\` Heddle plugin; started by the worker as \`deno run -A main.ts\`. */

import { definePlugin, serve } from "${sdk}";
import { double } from "./transform.ts";

export const plugin = definePlugin({ name: "${name}", entry: "main.ts", modules: { transform: [double] } });

if (import.meta.main) await serve(plugin);
`,
    "transform.ts": `/** \`${name}/transform\`: a sample step to replace with your own. */

import { Field, Float64, RecordBatch, Schema, vectorFromArray } from "apache-arrow";
import { defineStep, inputPlus, openRow } from "${sdk}";

export const double = defineStep({
  name: "double",
  doc: "Appends \`doubled\`: twice \`value\`.",
  input: openRow(new Schema([new Field("value", new Float64(), true)])),
  output: inputPlus(new Schema([new Field("doubled", new Float64(), true)])),
  run(batch) {
    const value = batch.getChild("value")!;
    const doubled = Array.from(value, (x) => (x === null ? null : x * 2));
    return new RecordBatch({ doubled: vectorFromArray(doubled, new Float64()).data[0] });
  },
});
`,
    "transform_test.ts": `import { equal } from "node:assert/strict";
import { Float64, RecordBatch, vectorFromArray } from "apache-arrow";
import { double } from "./transform.ts";

Deno.test("double appends twice the value and keeps nulls", async () => {
  const value = vectorFromArray([1.5, null, -2], new Float64());
  const out = await double.run(new RecordBatch({ value: value.data[0] }), {});
  equal(JSON.stringify([...(out as RecordBatch).getChild("doubled")!]), "[3,null,-4]");
});
`,
  };
}

/** Creates `<dir>/<name>/` for a new plugin package, or says why it cannot. */
export function scaffoldPlugin(options: ScaffoldOptions): ScaffoldResult {
  if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(options.name)) {
    return {
      ok: false,
      message: `plugin name \`${options.name}\` must be lowercase letters and digits, ` +
        "words joined by single dashes (like `fraud-score`)",
    };
  }
  const target = resolve(options.dir ?? Deno.cwd(), options.name);
  try {
    Deno.mkdirSync(target, { recursive: false });
  } catch (error) {
    const why = error instanceof Deno.errors.AlreadyExists ? "it already exists" : String(error);
    return { ok: false, message: `cannot create \`${target}\`: ${why}` };
  }
  const files = options.lang === "python"
    ? pythonFiles(options.name)
    : typescriptFiles(options.name, target);
  for (const [path, text] of Object.entries(files)) {
    Deno.mkdirSync(join(target, path, ".."), { recursive: true });
    Deno.writeTextFileSync(join(target, path), text);
  }
  return { ok: true, dir: target, files: Object.keys(files).sort() };
}
