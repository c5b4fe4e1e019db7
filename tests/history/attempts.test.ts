/**
 * Attempts, retries and quarantined rows as the history keeps them, read back by `heddle
 * workflow status` (text and `--output json`) from the state database a real `heddle run`
 * with a real plugin wrote: a stage whose batch fails, is retried and fails again (then is
 * split to find the bad row) shows each of those attempts; rows a step rejects show one
 * entry each, with their batch, row, handler and error, and the run's first 1,000 only.
 * (`tests/ui/ui.test.ts` reads the same from a daemon over gRPC and on the run page.)
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import { writeCopyProgram, writeNumbers } from "../e2e/_fixtures.ts";
import { env, writeSlowProgram } from "./_fixtures.ts";

interface AttemptJson {
  stage: string;
  batch: number;
  attempt: number;
  outcome: string;
  rows: number;
  errorClass: string;
  errorKind: string;
  message: string;
  retryInMs: number;
}

const PLUGIN_FAILED = "plugin step `faulty/steps.double` failed with USER_CODE";

Deno.test("workflow status lists a retried stage's attempts, in text and JSON", async () => {
  const dir = await Deno.makeTempDir();
  const state = `${dir}/state`;
  try {
    await writeNumbers(dir, 10);
    const program = await writeCopyProgram(
      dir,
      "broken.he",
      "Broken",
      "faulty.double { throw_n: [5] } retry { attempts: 2, backoff: 10ms }",
    );
    const run = await heddle(["run", "--state", state, program], { env });
    assert.equal(run.code, 1, run.stderr);
    const id = /run (\S+) started/.exec(run.stderr)![1];

    const json = await heddle(["workflow", "status", "--output", "json", "--state", state, id]);
    assert.equal(json.code, 0, json.stderr);
    const status = JSON.parse(json.stdout) as {
      status: string;
      attempts: AttemptJson[];
      attemptsTotal: number;
    };
    assert.equal(status.status, "failed");
    // The whole batch (10 rows): attempt 1 failed and was retried, attempt 2 gave up.
    const whole = status.attempts.filter((a) => a.stage === "Broken.1" && a.rows === 10);
    assert.deepEqual(
      whole.map((
        a,
      ) => [a.attempt, a.outcome, a.errorClass, a.errorKind, a.message, a.retryInMs >= 0]),
      [
        [1, "failed", "transient", "plugin", PLUGIN_FAILED, true],
        [2, "failed", "transient", "plugin", PLUGIN_FAILED, false],
      ],
    );
    // Then the batch is split until the row holding n = 5 is alone: it fails, the rest pass.
    assert.ok(status.attempts.some((a) => a.stage === "Broken.1" && a.outcome === "succeeded"));
    const lone = status.attempts.filter((a) => a.rows === 1 && a.outcome === "failed");
    assert.ok(lone.length >= 1, JSON.stringify(status.attempts));
    assert.equal(status.attemptsTotal, status.attempts.length);
    const summary = JSON.parse((JSON.parse(json.stdout) as { summaryJson: string }).summaryJson);
    assert.equal(
      summary.tries["Broken.1"].retries,
      status.attempts.filter((a) => a.stage === "Broken.1" && a.retryInMs >= 0).length,
    );

    const text = await heddle(["workflow", "status", "--state", state, id]);
    assert.equal(text.code, 0, text.stderr);
    const tries = summary.tries["Broken.1"];
    assert.match(
      text.stdout,
      new RegExp(
        `Broken\\.1 faulty/steps\\.double: .*, ${tries.attempts} attempts, ` +
          `${tries.retries} retries\\n`,
      ),
    );
    assert.match(text.stdout, new RegExp(`attempts: ${status.attemptsTotal}; batches that failed`));
    assert.match(
      text.stdout,
      /Broken\.1 batch 0 attempt 1 \(10 rows\) \S+: failed \(transient plugin\): plugin step `faulty\/steps\.double` failed with USER_CODE; retried in \d+ ms\n/,
    );
    assert.match(
      text.stdout,
      /Broken\.1 batch 0 attempt 2 \(10 rows\) \S+: failed .*; not retried\n/,
    );
    // The stage that never failed is counted, not listed.
    assert.doesNotMatch(text.stdout, /Broken\.2 batch/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

interface QuarantinedJson {
  stage: string;
  step: string;
  handler: string;
  batch: number;
  row: number;
  errorClass: string;
  errorKind: string;
  message: string;
  attempt: number;
}

Deno.test("workflow status lists each quarantined row, the run's first 1,000", async () => {
  const dir = await Deno.makeTempDir();
  const state = `${dir}/state`;
  try {
    // 1,010 batches of one row each, every one rejected by the step.
    const program = await writeSlowProgram(dir, 1010, 0);
    const run = await heddle(["run", "--state", state, "--batch-rows", "1", program], { env });
    assert.equal(run.code, 0, run.stderr);
    const id = /run (\S+) started/.exec(run.stderr)![1];
    const json = await heddle(["workflow", "status", "--output", "json", "--state", state, id]);
    assert.equal(json.code, 0, json.stderr);
    const status = JSON.parse(json.stdout) as {
      quarantined: QuarantinedJson[];
      quarantinedTotal: number;
    };
    assert.equal(status.quarantinedTotal, 1010);
    assert.equal(status.quarantined.length, 1000);
    const handled = (await Deno.readTextFile(`${dir}/rejected.jsonl`)).trim().split("\n")
      .map((l) => JSON.parse(l) as { _error_step: string; _error_attempt: number });
    assert.equal(handled.length, 1010);
    assert.deepEqual(status.quarantined[0], {
      ...status.quarantined[0],
      stage: "Slow.1",
      step: handled[0]._error_step,
      handler: "rejected",
      row: 0,
      errorClass: "transient",
      errorKind: "rejected",
      message: "row 0 was rejected by step `faulty/steps.run`",
      attempt: handled[0]._error_attempt,
    });
    // One entry per batch: 1,000 distinct batches of the 1,010.
    const batches = new Set(status.quarantined.map((q) => q.batch));
    assert.equal(batches.size, 1000);
    assert.ok([...batches].every((b) => b >= 0 && b < 1010));

    const text = await heddle(["workflow", "status", "--state", state, id]);
    assert.match(text.stdout, /\n {2}quarantined rows: 1010\n/);
    assert.match(
      text.stdout,
      /\n {4}Slow\.1 batch \d+ row 0 to rejected \(transient rejected\): row 0 was rejected by step `faulty\/steps\.run`\n/,
    );
    assert.match(text.stdout, /\n {4}990 more \(--output json lists the first 1,000\)\n/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
