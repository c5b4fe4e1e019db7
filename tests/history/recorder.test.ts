/**
 * The run recorder stores attempt events in batches (a busy stream sends several per batch,
 * and one statement and commit each cost more than the batch's work) without hiding a
 * failure: a failed attempt is stored at once with everything before it, the rest within a
 * second, and whatever is left when the run ends.
 */
import assert from "node:assert/strict";
import { History } from "../../runtime/control/_history.ts";
import { RunRecorder } from "../../runtime/control/_history_recorder.ts";
import type { RunEvent } from "../../runtime/protocol/mod.ts";

function attempt(kind: string, batch: number, detail: Record<string, unknown> = {}): RunEvent {
  return {
    runId: "r1",
    kind,
    stage: "s1",
    time: Date.now(),
    detail: { attempt: 1, batch, rows: 10, ...detail },
  } as RunEvent;
}

Deno.test("attempts are stored in batches, a failure at once, the rest by the run's end", async () => {
  const history = new History(":memory:");
  try {
    history.createRun("r1", "wf", "test");
    const recorder = new RunRecorder(history, "r1", { keepRuns: 10, keepLogLines: 100 });
    for (let batch = 0; batch < 3; batch++) {
      recorder.event(attempt("attempt-started", batch));
      recorder.event(attempt("attempt-succeeded", batch));
    }
    assert.equal(history.attempts("r1").length, 0, "successes wait for the next store");

    recorder.event(attempt("attempt-started", 3));
    recorder.event(
      attempt("attempt-failed", 3, { error: { class: "transient", kind: "io" }, retryInMs: 5 }),
    );
    const stored = history.attempts("r1");
    assert.equal(stored.length, 8, "a failure stores itself and everything before it");
    assert.deepEqual(stored.at(-1), {
      ...stored.at(-1),
      outcome: "failed",
      batch: 3,
      errorClass: "transient",
      retryInMs: 5,
    });

    recorder.event(attempt("attempt-started", 4));
    await new Promise((r) => setTimeout(r, 1300));
    assert.equal(history.attempts("r1").length, 9, "stored within a second");

    recorder.event(attempt("attempt-succeeded", 4));
    recorder.finish({ status: "succeeded", error: "" });
    assert.deepEqual(
      history.attempts("r1").map((a) => `${a.outcome}:${a.batch}`),
      [0, 1, 2].flatMap((b) => [`started:${b}`, `succeeded:${b}`])
        .concat(["started:3", "failed:3", "started:4", "succeeded:4"]),
      "every attempt, in order, once",
    );
  } finally {
    history.close();
  }
});
