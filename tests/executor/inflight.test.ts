/**
 * Several writes outstanding on one sink (`Sink.inFlight`, runtime/executor/_window.ts): the
 * executor hands a sink that acknowledges asynchronously the next batches while earlier ones
 * wait, and still commits a source position only once every batch up to it is acknowledged,
 * whatever order the acknowledgements come in. The sink here holds each write until the test
 * releases it, so the order is the test's to choose. Stages themselves are pipelined: each is a
 * task of its own, so a step calling out works on the next batch while later stages still
 * hold the one before (the last test).
 */
import assert from "node:assert/strict";
import type { Table } from "apache-arrow";
import { runWorkflow, startWorkflow } from "../../runtime/executor/mod.ts";
import { rowsOf, type Sink } from "../../runtime/connectors/mod.ts";
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

/** A sink whose writes resolve only when the test releases them. */
class HeldSink implements Sink {
  readonly acknowledges = "on-write";
  readonly inFlight = 4;
  rows: Record<string, unknown>[] = [];
  /** Outstanding writes by the first id of their batch. */
  held = new Map<number, () => void>();
  most = 0;

  write(rows: Table): Promise<void> {
    const batch = rowsOf(rows);
    return new Promise((resolve) => {
      this.held.set(batch[0].id as number, () => {
        this.held.delete(batch[0].id as number);
        this.rows.push(...batch);
        resolve();
      });
      this.most = Math.max(this.most, this.held.size);
    });
  }

  release(firstId: number): void {
    const done = this.held.get(firstId);
    assert.ok(done, `no write of the batch starting at ${firstId} is outstanding`);
    done();
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  abort(): Promise<void> {
    return Promise.resolve();
  }
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (const end = Date.now() + 10_000; !ok();) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Lets pending commits (a promise chain in the lineage) run. */
const settle = () => new Promise((r) => setTimeout(r, 20));

Deno.test("a sink gets up to inFlight writes at once and positions commit only in order of the batches", async () => {
  await withRun(async (registry, dir) => {
    const ir = kafkaPassThrough("Window", dir);
    // Six batches of two rows: batch b (position b + 1) starts at id 2b.
    const source = new CountingSource(6, 2);
    const out = new HeldSink();
    const run = startWorkflow(ir, {
      registry,
      connectors: testConnectors({ source, sinks: { out } }),
    });
    await until("four writes are outstanding", () => out.held.size === 4);
    await settle();
    assert.equal(out.held.size, 4, "more writes than the sink's inFlight were started");
    assert.deepEqual([...out.held.keys()].sort((a, b) => a - b), [0, 2, 4, 6]);
    // Acknowledged out of order: nothing may commit while the first batch is outstanding.
    out.release(4);
    out.release(2);
    await settle();
    assert.deepEqual(source.commits, [], "a position committed before an earlier batch's ack");
    out.release(0);
    await until("the first three batches commit", () => source.commits.length > 0);
    assert.deepEqual(source.commits, [3]);
    // The released slots took the remaining batches.
    await until("the last writes started", () => out.held.size === 3);
    for (const id of [10, 8, 6]) {
      out.release(id);
      await settle();
      if (id !== 6) assert.deepEqual(source.commits, [3], "committed past batch 4 (ids 6, 7)");
    }
    const summary = await run.done;
    assert.equal(summary.status, "completed", summary.error?.message);
    assert.deepEqual(source.commits, [3, 6]);
    assert.equal(summary.committed["Window.0"], 6);
    assert.deepEqual(
      out.rows.map((r) => r.id).sort((a, b) => Number(a) - Number(b)),
      Array.from({ length: 12 }, (_, i) => i),
    );
    assert.equal(out.most, 4);
  });
});

Deno.test("stages are pipelined: a step works on the next batch while the sink still writes the one before", async () => {
  await withRun(async (registry, dir) => {
    // The seed pipeline's shape: a step calling out (a lookup, a plugin, an LLM: each is one
    // stage task of its own), a PRQL block, a sink.
    const ir = compile(
      `${KAFKA_PRELUDE}
step enrich = llm.prompt { system: "x" }

workflow Pipelined {
  kafka.consume <broker=broker> { topic: "in" }
  | enrich
  | (from input | filter amount >= 0.0)
  | kafka.produce <broker=broker> { topic: "out" }
}
`,
      dir,
    );
    const transform = new ScriptedTransform(() => Promise.resolve());
    // The first write waits until the step has taken the second batch: run one batch at a
    // time end to end, this would never happen and the write would fail.
    const out = new RecordingSink(0, () => {});
    const write = out.write.bind(out);
    let first = true;
    out.write = async (rows) => {
      if (first) {
        first = false;
        await until("the step took the next batch", () => transform.calls >= 2);
      }
      await write(rows);
    };
    const summary = await runWorkflow(ir, {
      registry,
      connectors: testConnectors({ source: new CountingSource(4, 3), sinks: { out }, transform }),
    });
    assert.equal(summary.status, "completed", summary.error?.message);
    assert.equal(out.rows.length, 12);
  });
});
