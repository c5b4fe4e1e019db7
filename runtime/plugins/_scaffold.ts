/**
 * `heddle plugin new`: creates a plugin package (manifest, one sample step, a test) that a
 * worker can run as it is. The manifest is written from the same declaration the SDK reads,
 * and tests/plugins checks that the SDK regenerates it byte-equal in meaning; the scaffold
 * must never write into a directory that already exists.
 */

import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { pluginAssets } from "./_assets.ts";

export interface ScaffoldOptions {
  lang: "python" | "typescript" | "go" | "rust";
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

function manifest(name: string, runtime: string, entry: string[], build?: string[]): string {
  return JSON.stringify(
    {
      heddle_manifest: 1,
      package: name,
      runtime,
      ...(build ? { build } : {}),
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

/**
 * The TypeScript scaffold imports the SDK by its package name, `@heddle/sdk`, mapped in its
 * own `deno.json` to the worker's copy of the SDK, so it runs from any directory.
 */
function typescriptFiles(name: string): Record<string, string> {
  const imports = JSON.parse(Deno.readTextFileSync(join(repo, "deno.json"))).imports;
  const pick = ["apache-arrow", "@grpc/grpc-js", "@grpc/proto-loader"];
  const sdk = pluginAssets().typescriptSdk;
  return {
    "heddle.manifest.json": manifest(name, "typescript", ["deno", "run", "-A", "main.ts"]),
    "deno.json": JSON.stringify(
      {
        imports: {
          "@heddle/sdk": sdk,
          "@heddle/sdk/manifest": sdk.replace(/mod\.ts$/, "manifest.ts"),
          ...Object.fromEntries(pick.map((key) => [key, imports[key]])),
        },
      },
      null,
      2,
    ) + "\n",
    "main.ts":
      `/** The \`${name}\` Heddle plugin; started by the worker as \`deno run -A main.ts\`. */

import { definePlugin, serve } from "@heddle/sdk";
import { double } from "./transform.ts";

export const plugin = definePlugin({ name: "${name}", entry: "main.ts", modules: { transform: [double] } });

if (import.meta.main) await serve(plugin);
`,
    "transform.ts": `/** \`${name}/transform\`: a sample step to replace with your own. */

import { Field, Float64, RecordBatch, Schema, vectorFromArray } from "apache-arrow";
import { defineStep, inputPlus, openRow } from "@heddle/sdk";

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

/**
 * The Go scaffold builds against the worker's copy of the Go SDK (`replace`), and lists the
 * SDK's own requirements so that `go build` needs no `go mod tidy` first.
 */
function goFiles(name: string): Record<string, string> {
  const sdk = pluginAssets().goSdk;
  const sdkMod = Deno.readTextFileSync(`${sdk}/go.mod`);
  // The SDK's requirements, indirect here but for Arrow, which the step imports itself.
  const requires = sdkMod.slice(sdkMod.indexOf("require")).replace(
    /^(\t(?!github\.com\/apache\/arrow-go)\S+ \S+)$/gm,
    "$1 // indirect",
  );
  return {
    "heddle.manifest.json": manifest(name, "go", ["{binary}"], [
      "go",
      "build",
      "-o",
      "{binary}",
      ".",
    ]),
    "go.mod":
      `module example.com/${name}\n\ngo 1.26.0\n\nrequire heddle.dev/sdk v0.0.0\n\n${requires}\n` +
      `replace heddle.dev/sdk => ${sdk}\n`,
    "go.sum": Deno.readTextFileSync(`${sdk}/go.sum`),
    "main.go":
      `// Command ${name} is a Heddle plugin; the worker builds it with \`go build\` on first use.
package main

import heddle "heddle.dev/sdk"

func main() {
\theddle.Main(heddle.Plugin{
\t\tPackage: "${name}",
\t\tModules: map[string][]heddle.Step{"${name}/transform": {Double}},
\t})
}
`,
    "transform.go": `package main

// \`${name}/transform\`: a sample step to replace with your own.

import (
\t"github.com/apache/arrow-go/v18/arrow"
\t"github.com/apache/arrow-go/v18/arrow/array"
\t"github.com/apache/arrow-go/v18/arrow/memory"

\theddle "heddle.dev/sdk"
)

var doubled = arrow.Field{Name: "doubled", Type: arrow.PrimitiveTypes.Float64, Nullable: true}

// Double appends \`doubled\`: twice \`value\` (null where \`value\` is null).
var Double = heddle.Step{
\tName:   "double",
\tDoc:    "Appends \`doubled\`: twice \`value\`.",
\tInput:  heddle.OpenRow(arrow.Field{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true}),
\tOutput: heddle.InputPlus(doubled),
\tRun: func(batch arrow.RecordBatch, _ map[string]any) (heddle.Output, error) {
\t\tvalue := batch.Column(batch.Schema().FieldIndices("value")[0]).(*array.Float64)
\t\tb := array.NewFloat64Builder(memory.DefaultAllocator)
\t\tfor i := 0; i < value.Len(); i++ {
\t\t\tif value.IsNull(i) {
\t\t\t\tb.AppendNull()
\t\t\t} else {
\t\t\t\tb.Append(value.Value(i) * 2)
\t\t\t}
\t\t}
\t\tout := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{doubled}, nil), []arrow.Array{b.NewArray()}, int64(value.Len()))
\t\treturn heddle.Output{Batch: out}, nil
\t},
}
`,
    "transform_test.go": `package main

import (
\t"fmt"
\t"testing"

\t"github.com/apache/arrow-go/v18/arrow"
\t"github.com/apache/arrow-go/v18/arrow/array"
\t"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestDoubleAppendsTwiceTheValueAndKeepsNulls(t *testing.T) {
\tb := array.NewFloat64Builder(memory.DefaultAllocator)
\tb.AppendValues([]float64{1.5, 0, -2}, []bool{true, false, true})
\tfield := arrow.Field{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true}
\tbatch := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{field}, nil), []arrow.Array{b.NewArray()}, 3)
\tout, err := Double.Run(batch, nil)
\tif err != nil {
\t\tt.Fatal(err)
\t}
\tif got := fmt.Sprint(out.Batch.Column(0)); got != "[3 (null) -4]" {
\t\tt.Fatalf("doubled %s", got)
\t}
}
`,
  };
}

/** The Rust scaffold depends on the worker's copy of the Rust SDK by path. */
function rustFiles(name: string): Record<string, string> {
  const sdk = pluginAssets().rustSdk;
  const sdkToml = Deno.readTextFileSync(`${sdk}/Cargo.toml`);
  const arrow = sdkToml.match(/^arrow-array = "([^"]+)"/m)?.[1] ?? "*";
  const build = `t="\${CARGO_TARGET_DIR:-target}" && cargo build --release --quiet --bin ${name} ` +
    `--target-dir "$t" && cp "$t/release/${name}" "$0"`;
  return {
    "heddle.manifest.json": manifest(name, "rust", ["{binary}"], ["sh", "-c", build, "{binary}"]),
    "Cargo.toml": `[package]
name = "${name}"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
heddle-sdk = { path = "${sdk}" }
arrow-array = "${arrow}"
arrow-schema = "${arrow}"
`,
    "src/main.rs":
      `//! The \`${name}\` Heddle plugin; the worker builds it with \`cargo build\` on first use.

use std::sync::Arc;

use arrow_array::{Array, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use heddle_sdk::{Output, Plugin, Row, Step};

fn doubled() -> Field {
    Field::new("doubled", DataType::Float64, true)
}

/// \`${name}/transform.double\`: appends \`doubled\`, twice \`value\` (null where it is null).
pub fn double() -> Step {
    Step::new("double")
        .doc("Appends \`doubled\`: twice \`value\`.")
        .input(Row::open(vec![Field::new("value", DataType::Float64, true)]))
        .output(Row::input_plus(vec![doubled()]))
        .run(|batch, _config| {
            let value = batch.column_by_name("value").expect("the SDK checked the input");
            let value = value.as_any().downcast_ref::<Float64Array>().expect("float64");
            let out: Float64Array = value.iter().map(|v| v.map(|x| x * 2.0)).collect();
            let schema = Arc::new(Schema::new(vec![doubled()]));
            Ok(Output::aligned(RecordBatch::try_new(schema, vec![Arc::new(out)])?))
        })
}

fn main() {
    heddle_sdk::main(Plugin::new("${name}").module("${name}/transform", vec![double()]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_appends_twice_the_value_and_keeps_nulls() {
        let value = Float64Array::from(vec![Some(1.5), None, Some(-2.0)]);
        let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Float64, true)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(value)]).unwrap();
        let config = Default::default();
        let step = double();
        let (out, _errors) = step.apply(&batch, &config).unwrap();
        let doubled = out.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(doubled.iter().collect::<Vec<_>>(), vec![Some(3.0), None, Some(-4.0)]);
    }
}
`,
  };
}

const FILES = {
  python: pythonFiles,
  typescript: typescriptFiles,
  go: goFiles,
  rust: rustFiles,
} as const;

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
  const files = FILES[options.lang](options.name);
  for (const [path, text] of Object.entries(files)) {
    Deno.mkdirSync(join(target, path, ".."), { recursive: true });
    Deno.writeTextFileSync(join(target, path), text);
  }
  return { ok: true, dir: target, files: Object.keys(files).sort() };
}
