/**
 * Attempts and retries as the history keeps them: a stage whose batch fails, is retried and
 * fails again (then is split to find the bad row) shows each of those attempts in `heddle
 * workflow status`, in text and in `--output json`, read back from the state database
 * written by a real `heddle run` with a real plugin. (`tests/ui/ui.test.ts` reads the same
 * attempts from a daemon over gRPC and on the run page.)
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import { writeCopyProgram, writeNumbers } from "../e2e/_fixtures.ts";
import { env } from "./_fixtures.ts";

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
