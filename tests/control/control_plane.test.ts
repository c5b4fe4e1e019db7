/**
 * The control plane with a real in-process worker: deploying checks programs, runs are
 * placed on the worker, every attempt is recorded, and state survives a restart because it
 * lives in SQLite.
 */
import assert from "node:assert/strict";
import { ControlPlane } from "../../runtime/control/mod.ts";
import { Worker } from "../../runtime/worker/mod.ts";
import { ControlError } from "../../runtime/protocol/mod.ts";
import { writeCopyProgram, writeNumbers } from "../e2e/_fixtures.ts";

const plugins = new URL("../../examples/plugins", import.meta.url).pathname;

/** Workflow `Numbers` in `<dir>/faulty.he`: 0 to 5 through `faulty.run`, failed rows to a handler. */
async function program(dir: string, failRows: number[]): Promise<string> {
  await writeNumbers(dir, 6);
  return await writeCopyProgram(
    dir,
    "faulty.he",
    "Numbers",
    `faulty.run { fail_rows: [${failRows.join(", ")}] }`,
    { handler: true, output: "out.jsonl" },
  );
}

function node(database: string) {
  const control = new ControlPlane({ database, heddlePath: plugins });
  const worker = new Worker({ id: "w1", heddlePath: plugins });
  control.attachWorker({ id: worker.id, address: "in-process", host: "here" }, worker);
  return {
    control,
    close: async () => {
      await worker.close();
      control.close();
    },
  };
}

Deno.test("deploy refuses a program with errors and stores nothing", async () => {
  const { control, close } = node(":memory:");
  try {
    const response = await control.deploy({
      file: "/tmp/bad.he",
      source: "workflow W {\n  nothing.here\n}\n",
      overrides: [],
    });
    assert.equal(response.ok, false);
    assert.ok(response.diagnostics.some((d) => d.severity === "error" && d.line === 2));
    assert.deepEqual(await control.listWorkflows(), []);
    await assert.rejects(() => control.startRun("W"), ControlError);
  } finally {
    await close();
  }
});

Deno.test("runs record their attempts, and a restarted control plane remembers them", async () => {
  const dir = await Deno.makeTempDir();
  const database = `${dir}/control.db`;
  const file = await program(dir, [1, 4]);
  let first = node(database);
  let runId: string;
  try {
    const deployed = await first.control.deploy({
      file,
      source: await Deno.readTextFile(file),
      overrides: [],
    });
    assert.deepEqual(deployed.workflows, ["Numbers"]);
    const run = await first.control.startRun("Numbers");
    runId = run.id;
    const ended = await first.control.watch(run.id, () => {});
    assert.equal(ended.status, "succeeded", ended.error);
    const summary = JSON.parse(ended.summaryJson);
    assert.equal(summary.quarantined, 2);
  } finally {
    await first.close();
  }
  const out = (await Deno.readTextFile(`${dir}/out.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l).n
  );
  assert.deepEqual(out, [0, 2, 3, 5]);

  first = node(database);
  try {
    const [remembered] = (await first.control.listRuns({ workflow: "Numbers" })).runs;
    assert.equal(remembered.id, runId!);
    assert.equal(remembered.status, "succeeded");
    const attempts = first.control.attempts(runId!);
    assert.ok(attempts.some((a) => a.outcome === "started"));
    assert.ok(attempts.some((a) => a.outcome === "succeeded"));
    assert.deepEqual((await first.control.listWorkflows()).map((w) => w.version), [1]);
  } finally {
    await first.close();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a finished run's events leave memory after the grace period, run after run", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/in.csv`, "n\n1\n2\n3\n");
  const source = 'import "fhub/file" file\nworkflow Copy {\n' +
    '  file.read { path: "in.csv", format: "csv" } : { n: int64 }\n' +
    '  | file.write { path: "out.csv", format: "csv" }\n}\n';
  const control = new ControlPlane({ database: ":memory:", finishedGraceMs: 20 });
  const worker = new Worker({ id: "w1" });
  control.attachWorker({ id: worker.id, address: "in-process", host: "here" }, worker);
  try {
    const deployed = await control.deploy({ file: `${dir}/copy.he`, source, overrides: [] });
    assert.equal(deployed.ok, true);
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const run = await control.startRun("Copy");
      const ended = await control.watch(run.id, () => {});
      assert.equal(ended.status, "succeeded", ended.error);
      // Within the grace period, a late watch still gets every event.
      const late: string[] = [];
      await control.watch(run.id, (e) => late.push(e.kind));
      assert.equal(late[0], "run-started");
      assert.equal(late.at(-1), "run-finished");
      ids.push(run.id);
    }
    // A timer set after every grace timer fires after them.
    await new Promise((r) => setTimeout(r, 100));
    for (const id of ids) {
      let kept = 0;
      const record = await control.watch(id, () => kept++);
      assert.equal(record.status, "succeeded");
      assert.equal(kept, 0, `run ${id} still holds its events`);
    }
  } finally {
    await worker.close();
    control.close();
    await Deno.remove(dir, { recursive: true });
  }
});
