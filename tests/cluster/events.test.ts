/**
 * A cluster worker's messages to its control plane do not grow with the number of batches
 * (issue 10: the control plane's bytes must stay flat as the data grows). A control plane
 * and a worker in this process talk over the real gRPC control stream on loopback; the
 * worker folds each part's per-batch events (`reportEveryMs`, here longer than the run, so
 * it reports only at the part's end and the counts cannot depend on timing). The same
 * program over 10 and over 1,000 batches sends the same number of messages, and what reads
 * the events (the history's summary, the metrics' counters and latency histogram, the UI's
 * journal) still counts every batch and attempt. Before, each batch sent a progress, an
 * attempt started and an attempt succeeded per stage, and a committed position.
 */
import assert from "node:assert/strict";
import { ControlPlane } from "../../runtime/control/mod.ts";
import { Metrics } from "../../runtime/metrics/mod.ts";
import { Journal } from "../../runtime/ui/_journal.ts";
import { Worker } from "../../runtime/worker/mod.ts";
import { connectWorker, type RunEvent, serveWorker } from "../../runtime/protocol/mod.ts";
import { EXAMPLE_PLUGINS, writeCopyProgram, writeNumbers } from "../e2e/_fixtures.ts";
import { troubledAttempts } from "../../runtime/control/mod.ts";
import { TEST_CREDENTIALS } from "./_fixtures.ts";

const BATCH_ROWS = 10;

/**
 * A step that fails the batch holding n = 25, tries it again, and splits it until the row
 * is alone; that row goes to the program's handler.
 */
const FLAKY = "faulty.double { throw_n: [25] } retry { attempts: 2, backoff: 10ms }";
const DERIVE = "(\n    from input\n    derive { m = n * 2 }\n  )";

/**
 * Runs the copy program through `step` over `batches` batches on a worker that folds its
 * reports (none before the part's end) or, with `folded` false, sends every event; returns
 * what crossed the control stream and what the readers of events made of it.
 */
async function runOver(batches: number, step = DERIVE, folded = true) {
  const handler = step === FLAKY;
  const dir = await Deno.makeTempDir({ prefix: "heddle-events-" });
  await writeNumbers(dir, batches * BATCH_ROWS);
  const file = await writeCopyProgram(dir, "copy.he", "Copy", step, { handler });
  const worker = new Worker({
    id: "w-events",
    batchRows: BATCH_ROWS,
    allowPaths: [await Deno.realPath(dir)],
    heddlePath: EXAMPLE_PLUGINS,
    reportEveryMs: folded ? 3_600_000 : undefined,
  });
  const server = await serveWorker(worker, "127.0.0.1:0", TEST_CREDENTIALS);
  const received: RunEvent[] = [];
  const control = new ControlPlane({
    database: ":memory:",
    readCallerFiles: true,
    heddlePath: EXAMPLE_PLUGINS,
    // Every message the control stream brings in, as the control plane's client sees it.
    connect: (info) => {
      const client = connectWorker(info.address, TEST_CREDENTIALS);
      return {
        ...client,
        execute: (request, onEvent, signal) =>
          client.execute(request, (event) => {
            received.push(event);
            onEvent(event);
          }, signal),
      };
    },
  });
  const metrics = new Metrics({ control });
  const journal = new Journal();
  const unobserve = control.observe({ event: (_, event) => journal.add(event) });
  try {
    await control.registerWorker({
      id: worker.id,
      address: server.address,
      host: "here",
      runtimes: ["typescript"],
    });
    const deployed = await control.deploy({
      file,
      source: await Deno.readTextFile(file),
      overrides: [],
    });
    assert.ok(deployed.ok, JSON.stringify(deployed.diagnostics));
    const run = await control.startRun("Copy");
    const done = await control.watch(run.id, () => {});
    assert.equal(done.status, "succeeded", done.error);
    const out = (await Deno.readTextFile(`${dir}/out.csv`)).trim().split("\n");
    const quarantined = JSON.parse(done.summaryJson).quarantined;
    assert.equal(out.length - 1 + quarantined, batches * BATCH_ROWS, "every row was copied");
    return {
      received,
      details: await control.getRunDetails(run.id),
      summary: JSON.parse(done.summaryJson),
      metrics: await metrics.text(),
      journal: journal.run(run.id)!,
    };
  } finally {
    unobserve();
    metrics.close();
    control.disconnect();
    control.close();
    await server.close();
    await worker.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The value of a metric line `name{labels...}` for `stage`. */
function metric(text: string, name: string, stage: string, more = ""): number {
  const line = text.split("\n").find((l) =>
    l.startsWith(`${name}{`) && l.includes(`stage="${stage}"`) && l.includes(more)
  );
  assert.ok(line, `no ${name} for ${stage} ${more} in:\n${text}`);
  return Number(line.split(" ").pop());
}

Deno.test("a cluster worker's messages to the control plane do not grow with the batches", async () => {
  const few = await runOver(10);
  const many = await runOver(1000);
  const kinds = (events: RunEvent[]) => events.map((e) => `${e.kind} ${e.stage}`).sort();
  assert.equal(
    many.received.length,
    few.received.length,
    `10 batches: ${few.received.length} messages, 1000 batches: ${many.received.length}`,
  );
  assert.deepEqual(kinds(many.received), kinds(few.received));

  // What reads the events still sees every batch and every attempt.
  for (const [batches, run] of [[10, few], [1000, many]] as const) {
    const stages = Object.keys(run.summary.stages);
    assert.equal(stages.length, 3, JSON.stringify(run.summary.stages));
    for (const stage of stages) {
      const s = run.summary.stages[stage];
      assert.equal(s.batches, batches, `${stage}: ${JSON.stringify(s)}`);
      assert.equal(s.rowsOut, batches * BATCH_ROWS, `${stage}: ${JSON.stringify(s)}`);
      assert.equal(metric(run.metrics, "heddle_batches_total", stage), batches);
      assert.equal(metric(run.metrics, "heddle_rows_out_total", stage), batches * BATCH_ROWS);
    }
    // Stages with attempts (the PRQL step and the sink) have one per batch, counted by the
    // history, the metrics' counters and histogram, and the UI's journal alike.
    const tried = Object.keys(run.summary.tries);
    assert.ok(tried.length >= 1, JSON.stringify(run.summary.tries));
    for (const stage of tried) {
      assert.deepEqual(run.summary.tries[stage], { attempts: batches, retries: 0 });
      assert.equal(
        metric(run.metrics, "heddle_attempts_total", stage, 'outcome="started"'),
        batches,
      );
      assert.equal(
        metric(run.metrics, "heddle_attempts_total", stage, 'outcome="succeeded"'),
        batches,
      );
      assert.equal(metric(run.metrics, "heddle_stage_latency_seconds_count", stage), batches);
      assert.equal(
        metric(run.metrics, "heddle_stage_latency_seconds_bucket", stage, 'le="+Inf"'),
        batches,
      );
      const journal = run.journal.stages.get(stage)!;
      assert.equal(journal.attempts, batches);
      assert.equal(journal.latencySamples, batches);
    }
    assert.equal(run.summary.attempts, batches * tried.length);
  }
});

Deno.test("a cluster worker's folded reports keep every attempt of a batch that failed", async () => {
  const folded = await runOver(10, FLAKY);
  const plain = await runOver(10, FLAKY, false);
  // The batch that failed: its attempts, the pieces it was split into and theirs, alike.
  const shown = (run: typeof folded) =>
    troubledAttempts(run.details.attempts).map((a) =>
      [a.stage, a.batch, a.attempt, a.outcome, a.rows, a.errorKind, a.retryInMs >= 0].join(" ")
    );
  assert.ok(shown(plain).some((a) => a.includes(" 1 failed ")), JSON.stringify(shown(plain)));
  assert.deepEqual(shown(folded), shown(plain));
  assert.equal(folded.details.attemptsTotal, plain.details.attemptsTotal);
  assert.deepEqual(folded.summary.tries, plain.summary.tries);
  assert.ok(folded.received.length < plain.received.length);
});
