/**
 * End-to-end tests of the streaming executor: real programs compiled by the real compiler,
 * run over the real shared-memory registry, with `fhub/file` for files and stand-in Kafka
 * and LLM connectors whose behaviour each test chooses.
 */
import assert from "node:assert/strict";
import { type RunEvent, runWorkflow, startWorkflow } from "../../runtime/executor/mod.ts";
import {
  compile,
  CountingSource,
  KAFKA_PRELUDE,
  kafkaPassThrough,
  RecordingSink,
  ScriptedTransform,
  testConnectors,
  withRun,
} from "./_fixtures.ts";

function readJsonl(path: string): Record<string, unknown>[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

const failingPipeline = (handler: string, retry: string) =>
  `${KAFKA_PRELUDE}
step enrich = llm.prompt { system: "x" } retry { ${retry} }

handler failed {
  *
  | kafka.produce <broker=broker> { topic: "dlq" }
}

workflow W${handler} {
  kafka.consume <broker=broker> { topic: "in" }
  | enrich
  | kafka.produce <broker=broker> { topic: "out" }
}
`;

Deno.test("runWorkflow() reads a CSV file, filters with PRQL and writes every output file", async () => {
  await withRun(async (registry, dir) => {
    const rows = Array.from({ length: 57 }, (_, i) => ({
      id: i,
      user: `u${i % 7}`,
      amount: (i * 37) % 500 + 0.5,
    }));
    const lines = rows.map((r) => `${r.id},${r.user},${r.amount}`);
    lines.splice(10, 0, "999,broken");
    lines.splice(30, 0, "1000,u1,not-a-number");
    Deno.writeTextFileSync(`${dir}/tx.csv`, ["id,user,amount", ...lines].join("\n") + "\n");
    const ir = compile(
      `import "fhub/file" file

handler bad {
  *
  | file.write { path: "bad.jsonl", format: "jsonl" }
}

workflow Files ? bad {
  file.read { path: "tx.csv", format: "csv" }
  > tx
  tx
  | (
    from input
    filter amount > 250.0
    select {id, user, amount}
  )
  | file.write { path: "big.jsonl", format: "jsonl" }
  tx | file.write { path: "all.csv", format: "csv" }
}
`,
      dir,
    );
    const summary = await runWorkflow(ir, { registry, batchRows: 8 });
    assert.equal(summary.status, "completed", summary.error?.message);
    assert.deepEqual(readJsonl(`${dir}/big.jsonl`), rows.filter((r) => r.amount > 250));
    const all = Deno.readTextFileSync(`${dir}/all.csv`).trim().split("\n");
    assert.deepEqual(all, ["id,user,amount", ...rows.map((r) => `${r.id},${r.user},${r.amount}`)]);
    const bad = readJsonl(`${dir}/bad.jsonl`);
    assert.deepEqual(bad.map((b) => b._error_step), ["fhub/file.read", "fhub/file.read"]);
    assert.match(String(bad[0]._error_message), /record 11: expected 3 fields, found 2/);
    assert.match(String(bad[1]._error_message), /record 31: .*amount.*not-a-number/);
    assert.equal(summary.committed["Files.0"], 59);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "all.csv",
      "bad.jsonl",
      "big.jsonl",
      "main.he",
      "tx.csv",
    ]);
  });
});

Deno.test("a PRQL aggregate over a bounded source sees every row, not one batch", async () => {
  await withRun(async (registry, dir) => {
    const lines = Array.from({ length: 40 }, (_, i) => `u${i % 3},${i}`);
    Deno.writeTextFileSync(`${dir}/t.csv`, ["user,amount", ...lines].join("\n"));
    const ir = compile(
      `import "fhub/file" file

workflow Totals {
  file.read { path: "t.csv", format: "csv" }
  | (
    from input
    group {user} (aggregate {total = sum amount, n = count this})
    sort user
  )
  | file.write { path: "totals.jsonl", format: "jsonl" }
}
`,
      dir,
    );
    const summary = await runWorkflow(ir, { registry, batchRows: 5 });
    assert.equal(summary.status, "completed", summary.error?.message);
    const expected = ["u0", "u1", "u2"].map((user, k) => {
      const mine = Array.from({ length: 40 }, (_, i) => i).filter((i) => i % 3 === k);
      return { user, total: mine.reduce((a, b) => a + b, 0), n: mine.length };
    });
    assert.deepEqual(readJsonl(`${dir}/totals.jsonl`), expected);
  });
});

Deno.test("a step failing on chosen rows sends exactly those rows to its handler", async () => {
  await withRun(async (registry, dir) => {
    const ir = compile(failingPipeline(" ? failed", "attempts: 2, backoff: 1ms"), dir);
    const bad = new Set([13, 27]);
    const out = new RecordingSink();
    const dlq = new RecordingSink();
    const summary = await runWorkflow(ir, {
      registry,
      connectors: testConnectors({
        source: new CountingSource(3, 10),
        sinks: { out, dlq },
        transform: new ScriptedTransform((ids) => {
          const hit = ids.find((id) => bad.has(id));
          return hit === undefined ? Promise.resolve() : Promise.reject(new Error(`no ${hit}`));
        }),
      }),
    });
    assert.equal(summary.status, "completed", summary.error?.message);
    assert.deepEqual(
      out.rows.map((r) => r.id),
      Array.from({ length: 30 }, (_, i) => i).filter((i) => !bad.has(i)),
    );
    assert.deepEqual(
      dlq.rows,
      [13, 27].map((id) => ({
        id,
        amount: id,
        _error_step: "enrich",
        _error_message: `no ${id}`,
        _error_attempt: 2,
      })),
    );
    assert.equal(summary.rowsQuarantined, 2);
    assert.equal(summary.committed["W.0"], 3);
  });
});

Deno.test("a step that fails once and then succeeds loses no rows", async () => {
  await withRun(async (registry, dir) => {
    const ir = compile(failingPipeline(" ? failed", "attempts: 3, backoff: 1ms"), dir);
    const out = new RecordingSink();
    const seen = new Set<number>();
    const events: RunEvent[] = [];
    const summary = await runWorkflow(ir, {
      registry,
      onEvent: (e) => events.push(e),
      connectors: testConnectors({
        source: new CountingSource(4, 5),
        sinks: { out, dlq: new RecordingSink() },
        transform: new ScriptedTransform((ids) => {
          if (seen.has(ids[0])) return Promise.resolve();
          seen.add(ids[0]);
          return Promise.reject(new Error("flaky"));
        }),
      }),
    });
    assert.equal(summary.status, "completed", summary.error?.message);
    assert.equal(out.rows.length, 20);
    assert.equal(summary.rowsQuarantined, 0);
    const stage = (e: RunEvent) => "stage" in e && e.stage === "W.1";
    const failed = events.filter((e) => e.type === "attempt-failed" && stage(e));
    const succeeded = events.filter((e) => e.type === "attempt-succeeded" && stage(e));
    assert.deepEqual(failed.map((e) => e.type === "attempt-failed" && e.attempt), [1, 1, 1, 1]);
    assert.deepEqual(succeeded.map((e) => e.type === "attempt-succeeded" && e.attempt), [
      2,
      2,
      2,
      2,
    ]);
  });
});

Deno.test("an attempt that exceeds its timeout is abandoned and retried", async () => {
  await withRun(async (registry, dir) => {
    const ir = compile(
      failingPipeline(" ? failed", "attempts: 2, backoff: 1ms, timeout: 50ms"),
      dir,
    );
    const out = new RecordingSink();
    const events: RunEvent[] = [];
    const summary = await runWorkflow(ir, {
      registry,
      onEvent: (e) => events.push(e),
      connectors: testConnectors({
        source: new CountingSource(1, 4),
        sinks: { out, dlq: new RecordingSink() },
        transform: new ScriptedTransform((_ids, call, signal) =>
          call === 1
            ? new Promise((_, reject) =>
              signal.addEventListener("abort", () => reject(signal.reason))
            )
            : Promise.resolve()
        ),
      }),
    });
    assert.equal(summary.status, "completed", summary.error?.message);
    assert.equal(out.rows.length, 4);
    const failure = events.find((e) => e.type === "attempt-failed");
    assert.ok(failure?.type === "attempt-failed");
    assert.match(failure.error.message, /timed out after 50 ms/);
    assert.equal(failure.retryInMs !== null, true);
  });
});

Deno.test("a slow sink bounds how far the source reads ahead", async () => {
  await withRun(async (registry, dir) => {
    const ir = compile(
      `${KAFKA_PRELUDE}
workflow Slow {
  kafka.consume <broker=broker> { topic: "in" }
  | (
    from input
    filter amount >= 0.0
  )
  | kafka.produce <broker=broker> { topic: "out" }
}
`,
      dir,
    );
    const source = new CountingSource(30, 2);
    let ahead = 0;
    const out = new RecordingSink(2, () => ahead = Math.max(ahead, source.yielded - out.writes));
    const summary = await runWorkflow(ir, {
      registry,
      queueCapacity: 1,
      connectors: testConnectors({ source, sinks: { out } }),
    });
    assert.equal(summary.status, "completed", summary.error?.message);
    assert.equal(out.rows.length, 60);
    // Two queues of one batch, one batch in each stage, one waiting in the source's push.
    assert.ok(ahead <= 5, `the source ran ${ahead} batches ahead of the sink`);
  });
});

Deno.test("stop() drains: in-flight batches finish and only acknowledged positions commit", async () => {
  await withRun(async (registry, dir) => {
    const ir = kafkaPassThrough("Endless", dir);
    const source = new CountingSource(Infinity, 3);
    const acked: number[] = [];
    const committedBeforeAck: number[] = [];
    const out = new RecordingSink(1);
    const run = startWorkflow(ir, {
      registry,
      connectors: testConnectors({ source, sinks: { out } }),
      onEvent: (e) => {
        if (e.type === "stage-progress" && e.stage === "Endless.1") {
          acked.push(e.rowsOut);
          if (e.batches === 5) run.stop();
        }
        if (e.type === "position-committed") {
          const rows = (e.position as number) * 3;
          if (out.rows.length < rows) committedBeforeAck.push(e.position as number);
        }
      },
    });
    const summary = await run.done;
    assert.equal(summary.status, "stopped");
    assert.deepEqual(committedBeforeAck, []);
    assert.equal(summary.committed["Endless.0"], source.yielded);
    assert.equal(out.rows.length, source.yielded * 3);
    assert.deepEqual(source.commits, [...source.commits].sort((a, b) => Number(a) - Number(b)));
    assert.deepEqual(
      out.rows.map((r) => r.id),
      Array.from({ length: out.rows.length }, (_, i) => i),
    );
  });
});

Deno.test("positions commit only after a flush-acknowledged file sink renamed its file", async () => {
  await withRun(async (registry, dir) => {
    const ir = compile(
      `${KAFKA_PRELUDE}
workflow ToFile {
  kafka.consume <broker=broker> { topic: "in" }
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`,
      dir,
    );
    const existedAtCommit: boolean[] = [];
    const summary = await runWorkflow(ir, {
      registry,
      connectors: testConnectors({ source: new CountingSource(4, 2) }),
      onEvent: (e) => {
        if (e.type === "position-committed") {
          existedAtCommit.push(Deno.statSync(`${dir}/out.jsonl`).isFile);
        }
      },
    });
    assert.equal(summary.status, "completed", summary.error?.message);
    assert.deepEqual(existedAtCommit, [true]);
    assert.equal(readJsonl(`${dir}/out.jsonl`).length, 8);
  });
});

Deno.test("a failure no handler catches fails the run, leaving no segments and no output file", async () => {
  await withRun(async (registry, dir) => {
    const ir = compile(
      `${KAFKA_PRELUDE}
step enrich = llm.prompt { system: "x" } retry { attempts: 1, backoff: 1ms }

workflow Unhandled {
  kafka.consume <broker=broker> { topic: "in" }
  | enrich
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`,
      dir,
    );
    const source = new CountingSource(6, 4);
    const summary = await runWorkflow(ir, {
      registry,
      queueCapacity: 1,
      connectors: testConnectors({
        source,
        transform: new ScriptedTransform((ids) =>
          ids.includes(9) ? Promise.reject(new Error("row 9 is poison")) : Promise.resolve()
        ),
      }),
    });
    assert.equal(summary.status, "failed");
    // The step's own message may quote the row: the run's error names its kind only.
    assert.match(summary.error?.message ?? "", /no handler catches them: failed with Error/);
    assert.ok(!summary.error?.message.includes("poison"));
    assert.equal(summary.error?.stage, "Unhandled.1");
    assert.equal(summary.committed["Unhandled.0"], null);
    assert.deepEqual(source.commits, []);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["main.he"]);
  });
});

Deno.test("a program that cannot start reports why in a failed summary", async () => {
  await withRun(async (registry, dir) => {
    const ir = compile(
      `import "fhub/file" file

workflow Missing {
  file.read { path: "nowhere.csv", format: "csv" }
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`,
      dir,
    );
    const summary = await runWorkflow(ir, { registry });
    assert.equal(summary.status, "failed");
    assert.match(summary.error?.message ?? "", /cannot open `.*nowhere\.csv`/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["main.he"]);
  });
});
