/**
 * The SDKs: they regenerate the committed manifests exactly, they read inputs zero-copy, the
 * Python fingerprint equals the registry's, and `scaffoldPlugin` creates packages that the
 * SDKs accept and a host can run.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { Field, Float64, makeData, RecordBatch, Schema, Struct, tableFromIPC } from "apache-arrow";
import { scaffoldPlugin } from "../../runtime/plugins/mod.ts";
import { schemaFingerprint, segmentName } from "../../runtime/registry/mod.ts";
import { definePlugin, defineStep, invokeStep } from "../../sdk/typescript/mod.ts";
import { EXAMPLES, PYTHONPATH, REPO, rig, transactions, valueTable } from "./_fixtures.ts";

async function run(command: string, args: string[], cwd: string): Promise<string> {
  const out = await new Deno.Command(command, { args, cwd, env: { PYTHONPATH } }).output();
  const text = new TextDecoder().decode(out.stdout);
  ok(out.success, `${command} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  return text;
}

const pythonManifest = (dir: string, pkg: string) =>
  run("python3", ["-m", "heddle_sdk", "manifest", pkg], dir).then(JSON.parse);
const typescriptManifest = (dir: string) =>
  run(Deno.execPath(), [
    "run",
    "-A",
    "--config",
    `${REPO}deno.json`,
    `${REPO}sdk/typescript/manifest.ts`,
    "main.ts",
  ], dir)
    .then(JSON.parse);
const committed = (dir: string) => JSON.parse(Deno.readTextFileSync(`${dir}/heddle.manifest.json`));

Deno.test("the Python SDK regenerates the committed fraud-score manifest exactly", async () => {
  const dir = `${EXAMPLES}/fraud-score`;
  deepEqual(await pythonManifest(dir, "fraud_score"), committed(dir));
});

Deno.test("the TypeScript SDK regenerates the committed ts-enrich and faulty manifests exactly", async () => {
  for (const name of ["ts-enrich", "faulty"]) {
    const dir = `${EXAMPLES}/${name}`;
    deepEqual(await typescriptManifest(dir), committed(dir), name);
  }
});

Deno.test("Python's schema fingerprint equals the registry's for every kind of column", async () => {
  const script = `
import sys, pyarrow as pa
from heddle_sdk._fingerprint import schema_fingerprint
schema = pa.schema([
  pa.field("i", pa.int64(), False), ("u8", pa.uint8()), ("f", pa.float32()), ("s", pa.string()),
  ("ls", pa.large_string()), ("b", pa.binary()), ("flag", pa.bool_()), ("d", pa.date32()),
  ("t", pa.timestamp("us", "UTC")), ("t2", pa.timestamp("ns")), ("dec", pa.decimal128(10, 2)),
  ("l", pa.list_(pa.field("x", pa.float64(), False))), ("st", pa.struct([("a", pa.int32()), pa.field("é", pa.utf8(), False)])),
  ("m", pa.map_(pa.string(), pa.int64())), ("dict", pa.dictionary(pa.int32(), pa.string())),
  ("fsb", pa.binary(4)), ("dur", pa.duration("ms")), ("tm", pa.time64("us")),
])
with pa.OSFile(sys.argv[1], "wb") as f, pa.ipc.new_stream(f, schema):
    pass
print(schema_fingerprint(schema))
`;
  const file = Deno.makeTempFileSync({ suffix: ".arrows" });
  const printed = (await run("python3", ["-c", script, file], REPO)).trim();
  const schema = tableFromIPC(Deno.readFileSync(file)).schema;
  equal(printed, schemaFingerprint(schema));
  Deno.removeSync(file);
});

Deno.test("the Python SDK maps its input zero-copy: column buffers are inside the segment's mapping", async () => {
  await using r = rig();
  const handle = r.registry.put(transactions(1000), 1);
  const script = `
import json, sys
from heddle_sdk._shm import MappedInput
h = json.loads(sys.argv[1])
mapped = MappedInput(h["segment"], h["offset"], h["length"])
start, end = mapped.buffer.address, mapped.buffer.address + mapped.buffer.size
table = mapped.reader().read_all()
inside = all(start <= buf.address and buf.address + buf.size <= end
             for column in table.columns for chunk in column.chunks for buf in chunk.buffers() if buf)
print(json.dumps({"inside": inside, "rows": table.num_rows}))
`;
  const report = JSON.parse(await run("python3", ["-c", script, JSON.stringify(handle)], REPO));
  deepEqual(report, { inside: true, rows: 1000 });
});

Deno.test("a TypeScript step receives its input as views of the shared-memory segment", async () => {
  await using r = rig();
  const handle = r.registry.put(transactions(1000), 1);
  const segmentBytes = Deno.statSync(`/dev/shm${handle.segment}`).size;
  const seen: number[] = [];
  const probe = defineStep({
    name: "probe",
    input: new Schema([
      new Field("user_id", transactions(0).schema.fields[0].type, false),
      new Field("amount", new Float64(), false),
    ]),
    output: new Schema([new Field("amount", new Float64(), false)]),
    run(batch) {
      // A copy would own a buffer of exactly the column's size; a view shares the mapping.
      seen.push(batch.getChild("amount")!.data[0].values.buffer.byteLength);
      const fields = [new Field("amount", new Float64(), false)];
      return new RecordBatch(
        new Schema(fields),
        makeData({
          type: new Struct(fields),
          length: batch.numRows,
          children: [batch.getChild("amount")!.data[0]],
        }),
      );
    },
  });
  const plugin = definePlugin({ name: "probe", entry: "main.ts", modules: { m: [probe] } });
  const outputSegment = segmentName(r.registry.ownerPid, 1, {
    tag: "probe",
    prefix: r.registry.prefix,
  });
  const response = await invokeStep(plugin, {
    step: "probe/m.probe",
    configJson: "{}",
    input: handle,
    outputSegment,
    invocationId: "t",
  });
  ok(response.result === "ok");
  r.registry.adopt(response.ok.output!, 1);
  deepEqual(seen, [segmentBytes]);
});

Deno.test("scaffoldPlugin creates a Python plugin whose manifest the SDK regenerates and a host runs", async () => {
  const parent = Deno.makeTempDirSync({ prefix: "heddle-scaffold-" });
  const made = scaffoldPlugin({ lang: "python", name: "demo-py", dir: parent });
  ok(made.ok);
  ok(made.files.includes("tests/test_transform.py"));
  deepEqual(await pythonManifest(made.dir, "demo_py"), committed(made.dir));
  await run("python3", ["-m", "unittest", "discover", "tests"], made.dir);
  await using r = rig({ roots: [parent] });
  const input = r.registry.put(valueTable([1.5, 2]), 1);
  const result = await r.host.invoke("demo-py/transform.double", {}, input);
  ok(result.ok, result.ok ? "" : result.error.message);
  using lease = r.registry.open(result.output);
  deepEqual([...lease.table.getChild("doubled")!], [3, 4]);
  Deno.removeSync(parent, { recursive: true });
});

Deno.test("scaffoldPlugin creates a TypeScript plugin whose manifest and test pass, and a host runs it", async () => {
  const parent = Deno.makeTempDirSync({ prefix: "heddle-scaffold-" });
  const made = scaffoldPlugin({ lang: "typescript", name: "demo-ts", dir: parent });
  ok(made.ok);
  const manifest = JSON.parse(
    await run(
      Deno.execPath(),
      ["run", "-A", `${REPO}sdk/typescript/manifest.ts`, "main.ts"],
      made.dir,
    ),
  );
  deepEqual(manifest, committed(made.dir));
  await run(Deno.execPath(), ["test", "-A", "--quiet", "transform_test.ts"], made.dir);
  await using r = rig({ roots: [parent] });
  const result = await r.host.invoke(
    "demo-ts/transform.double",
    {},
    r.registry.put(valueTable([0.25, -1]), 1),
  );
  ok(result.ok, result.ok ? "" : result.error.message);
  using lease = r.registry.open(result.output);
  deepEqual([...lease.table.getChild("doubled")!], [0.5, -2]);
  Deno.removeSync(parent, { recursive: true });
});

Deno.test("scaffoldPlugin refuses bad names and existing directories", () => {
  const parent = Deno.makeTempDirSync({ prefix: "heddle-scaffold-" });
  equal(scaffoldPlugin({ lang: "python", name: "Bad_Name", dir: parent }).ok, false);
  ok(scaffoldPlugin({ lang: "python", name: "twice", dir: parent }).ok);
  const again = scaffoldPlugin({ lang: "typescript", name: "twice", dir: parent });
  ok(!again.ok && again.message.includes("already exists"));
  Deno.removeSync(parent, { recursive: true });
});
