/**
 * Stage placement: how a run's IR splits into stage groups, where the groups go, what a
 * worker's part of the run looks like, and two workers running the quickstart with its
 * groups spread over them, batches moving between them over Arrow Flight, with the same
 * rows as one worker.
 */
import assert from "node:assert/strict";
import { compileSource } from "../../cli/_compile.ts";
import type { Ir } from "../../compiler/ir/mod.ts";
import { ControlPlane } from "../../runtime/control/mod.ts";
import { partition, place, stageGroups } from "../../runtime/control/_placement.ts";
import { serveFlight } from "../../runtime/dataplane/mod.ts";
import { TEST_CREDENTIALS } from "./_fixtures.ts";
import { Worker } from "../../runtime/worker/mod.ts";
import { ControlError, type WorkerInfo } from "../../runtime/protocol/mod.ts";
import { quickstartCopy, quickstartEnv } from "../_quickstart.ts";

const examples = new URL("../../examples/", import.meta.url).pathname;

function irOf(file: string): Ir {
  const { value, diagnostics } = compileSource(Deno.readTextFileSync(file), file);
  assert.ok(value.optimised, JSON.stringify(diagnostics));
  return value.optimised;
}

const worker = (id: string, runtimes?: string[]): WorkerInfo => ({
  id,
  address: "",
  host: id,
  runtimes,
  labels: [],
  flightAddress: `${id}:1`,
});

Deno.test("stage groups keep in-process hand-offs together and split at plugin stages", () => {
  const groups = stageGroups(irOf(`${examples}quickstart.he`), "Quickstart");
  assert.deepEqual(groups.map((g) => [g.stages, g.requires]), [
    [["Quickstart.0", "Quickstart.1"], []],
    [["Quickstart.2"], ["typescript"]],
    [["Quickstart.3"], []],
    [["Quickstart.4", "Quickstart.5"], []],
    [["Quickstart.6", "Quickstart.7", "Quickstart.8"], []],
    [["rejected.0", "rejected.1"], []],
  ]);
  const fraud = stageGroups(irOf(`${examples}fraud_detection.he`), "FraudDetection");
  const python = fraud.filter((g) => g.requires.includes("python"));
  assert.equal(python.length, 1);
  assert.equal(python[0].stages.length, 1);
});

Deno.test("placement puts a group only where its runtime is, and says which group fits nowhere", () => {
  const ir = irOf(`${examples}fraud_detection.he`);
  const placed = place(ir, "FraudDetection", [
    worker("a", ["typescript"]),
    worker("b", ["python"]),
  ]);
  const python = placed.groups.find((g) => g.requires.includes("python"))!;
  assert.equal(python.worker, "b");
  assert.ok(placed.stages.every((s) => s.worker === "a" || s.worker === "b"));
  assert.ok(placed.edges.some((e) => e.crossesHosts));
  assert.throws(
    () => place(ir, "FraudDetection", [worker("a", ["typescript"]), worker("c", [])]),
    (e: Error) => {
      assert.match(
        e.message,
        /no worker can run group g\d+ \(FraudDetection\.\d+\) needs `python`/,
      );
      assert.match(e.message, /a: typescript; c: no runtimes/);
      return true;
    },
  );
  // Labels count as what a worker offers.
  const labelled = { ...worker("c", []), labels: ["python"] };
  assert.ok(place(ir, "FraudDetection", [labelled]).groups.every((g) => g.worker === "c"));
});

Deno.test("one worker gets the whole IR back: no Flight stage on one host", () => {
  const ir = irOf(`${examples}quickstart.he`);
  const placed = place(ir, "Quickstart", [worker("only")]);
  assert.ok(placed.edges.every((e) => !e.crossesHosts));
  const parts = partition(ir, placed, { runId: "r", flight: new Map() });
  const stages = parts.get("only")!.graphs.flatMap((g) => g.stages);
  assert.ok(stages.every((s) => s.module !== "heddle/flight"));
  assert.equal(stages.length, ir.graphs.flatMap((g) => g.stages).length);
});

Deno.test("a worker's part stands in for remote producers and sends to remote consumers", () => {
  const ir = irOf(`${examples}quickstart.he`);
  const placed = place(ir, "Quickstart", [worker("a"), worker("b")]);
  const parts = partition(ir, placed, {
    runId: "r",
    flight: new Map([["a", "10.0.0.1:1"], ["b", "10.0.0.2:1"]]),
  });
  const where = new Map(placed.stages.map((s) => [s.id, s.worker]));
  for (const [id, part] of parts) {
    const stages = part.graphs.flatMap((g) => g.stages);
    const ids = new Set(stages.map((s) => s.id));
    for (const s of stages) {
      for (const input of s.inputs) assert.ok(ids.has(input.from), `${id}: ${input.from}`);
      if (s.module === "heddle/flight" && s.op === "receive") {
        // A stand-in reads from the worker that owns the producer.
        const producer = s.id.split("~")[0];
        const from = s.id.includes("~from~") ? s.id.split("~from~")[1] : where.get(producer)!;
        assert.equal(s.config.peer, from === "a" ? "10.0.0.1:1" : "10.0.0.2:1");
        assert.equal(s.config.consumer, id);
      } else if (s.kind === "handler-input" && where.get(s.id) !== id) {
        // A handler's `*` on a worker that does not run the handler sends its rows there.
        const sender = stages.find((x) => x.id === `${s.id}~flight`)!;
        assert.deepEqual(sender.config.consumers, [where.get(s.id)]);
      } else if (s.module !== "heddle/flight") {
        assert.equal(where.get(s.id), id, `${s.id} runs where it was placed`);
      }
    }
  }
  // Every edge that crosses hosts has a sender on its producer's worker.
  for (const e of placed.edges.filter((e) => e.crossesHosts && e.kind === "data")) {
    const sender = parts.get(where.get(e.from)!)!.graphs.flatMap((g) => g.stages)
      .find((s) => s.id === `${e.from}~flight`);
    assert.ok(sender, `${e.from} sends`);
    assert.ok((sender.config.consumers as string[]).includes(where.get(e.to)!));
  }
});

/** The outputs in `dir` (`data/out/*`, `*.jsonl`), lines sorted (row order may differ). */
async function outputs(dir: string): Promise<Record<string, string[]>> {
  const found: Record<string, string[]> = {};
  const files = [];
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".jsonl")) files.push(e.name);
  try {
    for await (const e of Deno.readDir(`${dir}/data/out`)) files.push(`data/out/${e.name}`);
  } catch {
    // Not the quickstart.
  }
  for (const name of files) {
    const text = await Deno.readTextFile(`${dir}/${name}`);
    // Error messages name the copy's directory, which differs between runs.
    found[name] = text.replaceAll(dir, "DIR").split("\n").filter((l) => l !== "").sort();
  }
  return found;
}

/** Runs `workflow` of `dir/file` on `workers` in-process workers, each with its own Flight. */
async function runSpread(
  dir: string,
  file: string,
  workflow: string,
  workers: number,
  runtimes?: string[][],
) {
  const control = new ControlPlane({
    database: ":memory:",
    heddlePath: quickstartEnv.HEDDLE_PATH,
    readCallerFiles: true,
  });
  const nodes = [];
  for (let i = 0; i < workers; i++) {
    const w = new Worker({
      id: `w${i}`,
      heddlePath: quickstartEnv.HEDDLE_PATH,
      flightCredentials: TEST_CREDENTIALS,
    });
    const flight = await serveFlight(w.dataPlane, "127.0.0.1:0", TEST_CREDENTIALS);
    nodes.push({ w, flight });
    control.attachWorker({
      id: w.id,
      address: "in-process",
      host: "here",
      runtimes: runtimes?.[i] ?? ["typescript"],
      flightAddress: flight.address,
    }, w);
  }
  try {
    const path = `${dir}/${file}`;
    const deployed = await control.deploy({
      file: path,
      source: await Deno.readTextFile(path),
      overrides: [],
    });
    assert.ok(deployed.ok, JSON.stringify(deployed.diagnostics));
    const run = await control.startRun(workflow);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = await Promise.race([
      control.watch(run.id, () => {}),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("the run never ended")), 120_000);
      }),
    ]).finally(() => clearTimeout(timer));
    const sent = nodes.map((n) => n.w.dataPlane.stats().bytesSent);
    return { done, dir, out: await outputs(dir), sent };
  } finally {
    for (const n of nodes) {
      await n.w.close();
      await n.flight.close();
    }
    control.close();
  }
}

async function runQuickstart(workers: number, runtimes?: string[][]) {
  return runSpread(await quickstartCopy(), "quickstart.he", "Quickstart", workers, runtimes);
}

Deno.test("two workers run the quickstart's groups between them, with the rows of one worker", async () => {
  const one = await runQuickstart(1);
  const two = await runQuickstart(2);
  try {
    assert.equal(one.done.status, "succeeded", one.done.error);
    assert.equal(two.done.status, "succeeded", two.done.error);
    assert.deepEqual(two.out, one.out);
    assert.ok(Object.keys(one.out).length >= 3);
    const placement = JSON.parse(two.done.summaryJson).placement;
    assert.deepEqual(
      new Set(placement.groups.map((g: { worker: string }) => g.worker)),
      new Set(["w0", "w1"]),
    );
    assert.equal(two.done.worker, "w0,w1");
    // Batches crossed between the workers over Flight, in both directions.
    assert.ok(two.sent.every((bytes) => bytes > 0), JSON.stringify(two.sent));
    assert.deepEqual(one.sent, [0]);
    // Every stage reports once, from its own worker.
    const stages = JSON.parse(two.done.summaryJson).stages;
    assert.deepEqual(
      Object.keys(stages).sort(),
      Object.keys(JSON.parse(one.done.summaryJson).stages).sort(),
    );
  } finally {
    await Deno.remove(one.dir, { recursive: true });
    await Deno.remove(two.dir, { recursive: true });
  }
});

Deno.test("a run whose plugin runtime no worker has fails before it starts", async () => {
  await assert.rejects(
    () => runQuickstart(2, [["python"], []]),
    (e: Error) => {
      assert.ok(e instanceof ControlError && e.code === "invalid", String(e));
      assert.match(e.message, /needs `typescript`/);
      return true;
    },
  );
});

Deno.test("handlers on different workers, failing into each other's hosts, end the run", async () => {
  // A step handler on one worker and the workflow's handler on the other: each worker's
  // part sends failed rows to the other's, which once made every part wait for the other.
  const program = (dir: string) =>
    Deno.writeTextFile(
      `${dir}/numbers.he`,
      [
        'import "fhub/file" file',
        'import "faulty/steps" faulty',
        'handler all_rejected { * | file.write { path: "all.jsonl", format: "jsonl" } }',
        'handler step_rejected { * | file.write { path: "step.jsonl", format: "jsonl" } }',
        "workflow Numbers ? all_rejected {",
        '  file.read { path: "numbers.csv", format: "csv" } : { n: int64 }',
        "  | faulty.run { fail_rows: [1, 4] } ? step_rejected",
        '  | file.write { path: "out.jsonl", format: "jsonl" }',
        "}",
        "",
      ].join("\n"),
    );
  const runs = [];
  for (const workers of [1, 2]) {
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${dir}/numbers.csv`, "n\n0\n1\n2\nx\n3\n4\n5\n");
    await program(dir);
    runs.push(await runSpread(dir, "numbers.he", "Numbers", workers));
  }
  const [one, two] = runs;
  try {
    assert.equal(two.done.status, "succeeded", two.done.error);
    const placement = JSON.parse(two.done.summaryJson).placement;
    const workerOf = (graph: string) =>
      placement.groups.find((g: { graph: string }) => g.graph === graph).worker;
    assert.notEqual(workerOf("all_rejected"), workerOf("step_rejected"));
    assert.deepEqual(two.out, one.out);
    assert.equal(two.out["out.jsonl"].length, 4);
    assert.equal(two.out["step.jsonl"].length, 2);
    assert.equal(two.out["all.jsonl"].length, 1, "the malformed line");
  } finally {
    for (const r of runs) await Deno.remove(r.dir, { recursive: true });
  }
});
