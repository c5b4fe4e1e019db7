/**
 * At least once with several produce requests in flight (issue 11.4): `heddle run` of
 * Kafka -> filter -> Kafka on the real broker is killed with SIGKILL while its sink has
 * writes outstanding (seen in its `--output json` events). At that moment every input record
 * below the group's committed offsets must already be in the output topic (a commit never
 * runs ahead of an acknowledgement), and a restart must bring every record to the output:
 * duplicates are allowed, gaps are not.
 */
import assert from "node:assert/strict";
import { Admin } from "@platformatic/kafka";
import { serviceConfig, serviceTest } from "../services/mod.ts";
import { spawnHeddle } from "../_cli.ts";
import { createTopics, endOffsets, fresh, produce, readTopic } from "./_fixtures.ts";

const EVENTS = 40_000;

function program(input: string, output: string, group: string): string {
  return `import "fhub/kafka" kafka

resource kf = kafka.connection { broker: "${serviceConfig.kafka.brokers[0]}" }

workflow KafkaInflight {
  kafka.consume <broker=kf> { topic: "${input}", group: "${group}", from: "earliest" }: {
    id: int64
    amount: float64
  }
  | (from input | filter amount >= 0.0)
  | kafka.produce <broker=kf> { topic: "${output}" }
}
`;
}

/** The group's committed offset per partition (absent: nothing committed). */
async function committedOffsets(group: string, topic: string): Promise<Map<number, bigint>> {
  const admin = new Admin({
    clientId: "heddle-tests",
    bootstrapBrokers: serviceConfig.kafka.brokers,
  });
  try {
    const [answer] = await admin.listConsumerGroupOffsets({ groups: [group] });
    const partitions = answer?.topics.find((t) => t.name === topic)?.partitions ?? [];
    return new Map(
      partitions.filter((p) => p.committedOffset >= 0n)
        .map((p) => [p.partitionIndex, p.committedOffset]),
    );
  } finally {
    await admin.close();
  }
}

/** Every record of `topic` as it stands now. */
async function readAll(topic: string) {
  const total = (await endOffsets(topic)).reduce((n, o) => n + Number(o), 0);
  return await readTopic(topic, [], (r) => r.length >= total, 60_000);
}

/**
 * Follows a run's JSON events until its sink has at least two writes outstanding after some
 * were acknowledged; returns how many were outstanding.
 */
async function untilSendsInFlight(stdout: ReadableStream<Uint8Array>): Promise<number> {
  const reader = stdout.pipeThrough(new TextDecoderStream()).getReader();
  const labels = new Map<string, string>();
  const outstanding = new Map<string, number>();
  const acked = new Map<string, number>();
  let text = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the run ended before its sink had sends in flight");
      text += value;
      const lines = text.split("\n");
      text = lines.pop()!;
      for (const line of lines) {
        const e = JSON.parse(line) as { kind: string; stage: string; label?: string };
        if (e.kind === "stage-progress") labels.set(e.stage, e.label!);
        const delta = e.kind === "attempt-started" ? 1 : e.kind === "attempt-succeeded" ? -1 : 0;
        if (delta === 0) continue;
        outstanding.set(e.stage, (outstanding.get(e.stage) ?? 0) + delta);
        if (delta < 0) acked.set(e.stage, (acked.get(e.stage) ?? 0) + 1);
        for (const [stage, n] of outstanding) {
          if (labels.get(stage) === "fhub/kafka.produce" && n >= 2 && acked.get(stage)! >= 10) {
            return n;
          }
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
}

serviceTest(
  "kill -9 with produce requests in flight loses no record: nothing commits unacknowledged and a restart delivers the rest",
  ["kafka"],
  async () => {
    const input = fresh("kafka-helper-inflight-in");
    const output = fresh("kafka-helper-inflight-out");
    const group = fresh("kafka-helper-inflight");
    await createTopics([input, output]);
    await produce(input, Array.from({ length: EVENTS }, (_, id) => ({ id, amount: id % 100 })));
    const dir = await Deno.makeTempDir({ prefix: "heddle-inflight-" });
    const file = `${dir}/inflight.he`;
    await Deno.writeTextFile(file, program(input, output, group));
    try {
      const first = spawnHeddle(["run", "--output", "json", "--batch-rows", "50", file]);
      let inFlight = 0;
      const kill = () => {
        try {
          first.kill("SIGKILL");
        } catch { /* already gone */ }
      };
      const timer = setTimeout(kill, 90_000);
      try {
        inFlight = await untilSendsInFlight(first.stdout);
      } finally {
        clearTimeout(timer);
        kill();
        await first.status;
        await first.stderr.cancel();
      }
      assert.ok(inFlight >= 2, `only ${inFlight} write(s) were outstanding at the kill`);

      const written = await readAll(output);
      assert.ok(written.length < EVENTS, "the run wrote everything before it was killed");
      const inputs = await readAll(input);
      assert.equal(inputs.length, EVENTS);
      const committed = await committedOffsets(group, input);
      const ids = (records: { value: string }[]) =>
        new Set(records.map((r) => (JSON.parse(r.value) as { id: number }).id));
      const out = ids(written);
      const below = inputs.filter((r) => r.offset < (committed.get(r.partition) ?? 0n));
      const missing = below.filter((r) => !out.has((JSON.parse(r.value) as { id: number }).id));
      assert.deepEqual(
        missing.map((r) => `${r.partition}@${r.offset}`).slice(0, 10),
        [],
        "records below the committed offsets are missing from the output",
      );
      assert.ok(below.length < EVENTS, "everything was committed before the kill");

      const second = spawnHeddle(["run", "--batch-rows", "50", file]);
      try {
        // Called on every record: count distinct ids as they come, not all over again.
        const seen = new Set<number>();
        let counted = 0;
        await readTopic(output, [], (r) => {
          for (; counted < r.length; counted++) {
            seen.add((JSON.parse(r[counted].value) as { id: number }).id);
          }
          return seen.size >= EVENTS;
        }, 120_000);
        assert.equal(seen.size, EVENTS, "records were lost across the kill");
      } finally {
        second.kill("SIGTERM");
        await second.status;
        await second.stdout.cancel();
        await second.stderr.cancel();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
