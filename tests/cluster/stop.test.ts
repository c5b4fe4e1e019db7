/**
 * How a worker's part ends when the control plane stops it or gives up on it, on a real
 * worker with its registry, data plane and plugin processes:
 *
 * - A Flight sender whose consumer never takes anything (its host froze or died) holds the
 *   part only for the stop's grace: then its edge fails, every object on it is released,
 *   and the part ends. Before, the sender waited for room until its attempts timed out
 *   (three of 30 s by default; here one of an hour) and kept its objects.
 * - A part whose `Execute` stream the control plane cancels (it gave up on the part) stops,
 *   publishes nothing, and ends, although nothing else tells it to: the part has no Flight
 *   edge that could fail it. Before the worker's hook on the cancelled stream, it ran on.
 */
import assert from "node:assert/strict";
import { check } from "../../compiler/mod.ts";
import type { Ir } from "../../compiler/ir/mod.ts";
import { partition, place } from "../../runtime/control/_placement.ts";
import { Worker } from "../../runtime/worker/mod.ts";
import { connectWorker, type RunEvent, serveWorker } from "../../runtime/protocol/mod.ts";
import { EXAMPLE_PLUGINS, writeCopyProgram, writeNumbers } from "../e2e/_fixtures.ts";
import { TEST_CREDENTIALS } from "./_fixtures.ts";

/** The workflow `Copy` of a copy program through `step`, compiled, over `rows` numbers. */
async function copyProgram(dir: string, rows: number, step: string): Promise<Ir> {
  await writeNumbers(dir, rows);
  const file = await writeCopyProgram(dir, "copy.he", "Copy", step);
  const { value, diagnostics } = check(await Deno.readTextFile(file), file, {
    heddlePath: EXAMPLE_PLUGINS,
  });
  assert.ok(value.optimised, JSON.stringify(diagnostics));
  return value.optimised;
}

/** A worker of this process, its runs' files under `dir`. */
function workerIn(dir: string, id: string): Worker {
  return new Worker({
    id,
    heddlePath: EXAMPLE_PLUGINS,
    allowPaths: [Deno.realPathSync(dir)],
    batchRows: 10,
    flightCredentials: TEST_CREDENTIALS,
  });
}

/** Waits until `ready()` holds, at most `ms`; fails with `what` otherwise. */
async function until(what: string, ready: () => boolean | Promise<boolean>, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await ready())) {
    assert.ok(Date.now() < deadline, `never: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `promise`'s outcome, or "late" when it has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | "late"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), ms)),
  ]).finally(() => clearTimeout(timer));
}

Deno.test("a stopped part's Flight sender gives up on a consumer that takes nothing and releases its objects", async () => {
  const dir = await Deno.makeTempDir({ prefix: "heddle-stop-send-" });
  const producer = workerIn(dir, "w0");
  try {
    // The reader on w0; the plugin step and the sink on a host that froze: it never asks
    // for a batch, so w0's edge fills up and its sender waits for room.
    const ir = await copyProgram(dir, 1000, "faulty.run {}");
    const placed = place(ir, "Copy", null);
    const source = ir.graphs[0].stages.find((s) => s.kind === "source")!.id;
    const on = (id: string) => id === source ? "w0" : "frozen";
    const placement = {
      ...placed,
      stages: placed.stages.map((s) => ({ ...s, worker: on(s.id) })),
      groups: placed.groups.map((g) => ({ ...g, worker: on(g.stages[0]) })),
    };
    const runId = "stop-send~1";
    const part = partition(ir, placement, {
      runId,
      flight: new Map([["w0", "127.0.0.1:1"], ["frozen", "127.0.0.1:2"]]),
    }).get("w0")!;
    const sender = part.graphs[0].stages.find((s) => s.module === "heddle/flight")!;
    assert.equal(sender.op, "send", "w0 sends");
    // One attempt that would wait an hour for room: only the stop can end the wait.
    sender.retry = {
      attempts: 1,
      backoff_ms: 0,
      max_backoff_ms: 0,
      timeout_ms: 3_600_000,
      jitter: false,
    };

    const events: RunEvent[] = [];
    const execution = producer.execute(
      { runId, workflow: "Copy", irJson: JSON.stringify(part), baseDir: "" },
      (event) => events.push(event),
    );
    await until("the edge is full", () => producer.dataPlane.stats().published === 4);
    assert.ok(producer.registry.stats().bytesInMemory > 0);

    // The control plane stops the part (`workflow stop`, or another part failed).
    assert.equal(await producer.cancel(runId), true);
    // The stop's grace (10 s) and a wide margin; the sender's attempt alone would take 1 h.
    assert.notEqual(await within(execution, 120_000), "late", "the part ended after its stop");
    assert.equal(producer.dataPlane.stats().published, 0, "nothing left on the edge");
    assert.equal(producer.registry.stats().bytesInMemory, 0, "every object released");
    const finished = events.find((e) => e.kind === "run-finished")!;
    const summary = finished.detail.summary as { status: string; error: { message: string } };
    assert.equal(summary.status, "failed");
    assert.match(summary.error.message, /stopped and its consumers freed no room on the edge/);
  } finally {
    await producer.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a worker stops a part whose Execute stream the control plane cancelled", async () => {
  const dir = await Deno.makeTempDir({ prefix: "heddle-stop-hook-" });
  const worker = workerIn(dir, "w-hook");
  const server = await serveWorker(worker, "127.0.0.1:0", TEST_CREDENTIALS);
  const client = connectWorker(server.address, TEST_CREDENTIALS);
  try {
    // The whole run on one worker: no Flight edge, so only the cancelled stream can stop
    // it. 300 batches of a slow step take 30 s at least, and then its output is published.
    const ir = await copyProgram(dir, 3000, "faulty.run { sleep_ms: 100 }");
    const fence = new AbortController();
    const events: RunEvent[] = [];
    const execution = client.execute(
      { runId: "hook", workflow: "Copy", irJson: JSON.stringify(ir), baseDir: "" },
      (event) => events.push(event),
      fence.signal,
    );
    await until("rows moved", () => events.some((e) => e.kind === "stage-progress"));
    assert.equal((await worker.health()).activeRuns, 1);

    // What the control plane does when it gives up on a part: cancel its stream.
    fence.abort();
    await execution;
    await until("the part ended", async () => (await worker.health()).activeRuns === 0);
    await assert.rejects(Deno.stat(`${dir}/out.csv`), Deno.errors.NotFound, "nothing published");
  } finally {
    client.close();
    await server.close();
    await worker.close();
    await Deno.remove(dir, { recursive: true });
  }
});
