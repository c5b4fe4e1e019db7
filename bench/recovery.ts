/**
 * Recovery after `kill -9` on a real broker: `heddle run` of Kafka -> Kafka is killed with
 * SIGKILL while it is a member of its consumer group, restarted at once, and timed from the
 * restart to the first output record of an event produced after the kill (issue 16: about a
 * minute, because the new consumer waited out the dead member's 60 s session). The goal is
 * 5 s. The start-up of a fresh process (spawn to first output, no dead member in the group)
 * is measured in the same run as the floor a restart can reach. With `dynamic: true` the same
 * run is repeated with static membership switched off (`instance: ""`), the old behaviour: it
 * waits out the session, so only the full suite pays for it. `tests/connectors/
 * kafka_recovery.test.ts` runs `measureRecovery` as a test. It must never leave its child
 * processes running.
 */
import { Admin, Producer, stringSerializer } from "@platformatic/kafka";
import { brokerUp, collect, spawnChild } from "./e2e.ts";
import { type BenchRow, type BenchSection, row } from "./_report.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const GOAL_MS = 5000;

export interface RecoveryResult {
  /** Spawn of the first process to its first output record. */
  coldStartMs: number;
  /** Spawn of the restarted process (right after the kill) to its first new output record. */
  restartMs: number;
  /** The group's `group.instance.id` as the connector set it (null: dynamic membership). */
  instance: string | null;
}

function program(broker: string, input: string, output: string, group: string, dynamic: boolean) {
  const instance = dynamic ? `, instance: ""` : "";
  return `import "fhub/kafka" kafka

resource kf = kafka.connection { broker: "${broker}", client_id: "bench-recovery" }

workflow Recovery {
  kafka.consume <broker=kf> { topic: "${input}", group: "${group}"${instance} }: {
    id: int64
  }
  | kafka.produce <broker=kf> { topic: "${output}" }
}
`;
}

/** A running `heddle run` of `file`, one record per batch. */
function spawnRun(file: string) {
  return spawnChild("heddle run", [
    "run",
    "-A",
    `${ROOT}cli/main.ts`,
    "run",
    "--batch-rows",
    "1",
    file,
  ]);
}

/**
 * Runs the scenario once on fresh topics and group: start, first output, kill -9, restart,
 * first output of an event produced after the kill.
 */
export async function measureRecovery(
  broker: string,
  options: { dynamic?: boolean; timeoutMs?: number } = {},
): Promise<RecoveryResult> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const tag = `${Date.now()}-${crypto.randomUUID().slice(0, 8)}`;
  const input = `recovery-in-${tag}`, output = `recovery-out-${tag}`, group = `recovery-${tag}`;
  const admin = new Admin({ clientId: "bench-recovery", bootstrapBrokers: [broker] });
  await admin.createTopics({ topics: [input, output], partitions: 1, replicas: 1 });
  const dir = await Deno.makeTempDir({ prefix: "heddle-bench-recovery-" });
  const file = `${dir}/recovery.he`;
  Deno.writeTextFileSync(file, program(broker, input, output, group, options.dynamic ?? false));
  const collector = await collect(broker, output);
  const producer = new Producer({
    clientId: "bench-recovery",
    bootstrapBrokers: [broker],
    serializers: {
      key: stringSerializer,
      value: stringSerializer,
      headerKey: stringSerializer,
      headerValue: stringSerializer,
    },
  });
  const send = (id: number) =>
    producer.send({
      messages: [{ topic: input, value: JSON.stringify({ id, produced_at: Date.now() }) }],
    });
  const runs: ReturnType<typeof spawnRun>[] = [];
  try {
    const coldStart = Date.now();
    runs.push(spawnRun(file));
    await send(0);
    await collector.waitFor(1, timeoutMs, runs[0].alive);
    const coldStartMs = collector.arrivals.get(0)!.at - coldStart;
    const described = await admin.describeGroups({ groups: [group] });
    const member = described.get(group)?.members.values().next().value;
    await runs[0].stop("SIGKILL");
    const restart = Date.now();
    runs.push(spawnRun(file));
    await send(1);
    // Event 0 may come out again (its offset may not have been committed before the kill);
    // the collector counts distinct ids, so two means event 1 is out.
    await collector.waitFor(2, timeoutMs, runs[1].alive);
    return {
      coldStartMs,
      restartMs: collector.arrivals.get(1)!.at - restart,
      instance: member?.groupInstanceId ?? null,
    };
  } finally {
    for (const run of runs) await run.stop("SIGTERM");
    await producer.close().catch(() => {});
    await collector.close();
    await admin.deleteTopics({ topics: [input, output] }).catch(() => {});
    await admin.close().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

export async function benchRecovery(
  o: { runs: number; dynamic: boolean; broker?: string; log?: (line: string) => void },
): Promise<BenchSection> {
  const broker = o.broker ?? `127.0.0.1:${Deno.env.get("HEDDLE_KAFKA_PORT") ?? "9092"}`;
  const log = o.log ?? (() => {});
  const section: BenchSection = {
    name: "recovery",
    title: "Recovery: kill -9 of `heddle run` (Kafka -> Kafka), restart to first output",
    runs: o.runs,
    rows: [],
    notes: [],
  };
  if (!(await brokerUp(broker))) {
    section.skipped = `no Kafka broker at ${broker} (start it with tests/services/kafka.sh start)`;
    return section;
  }
  const results: RecoveryResult[] = [];
  for (let i = 0; i < o.runs; i++) {
    results.push(await measureRecovery(broker));
    log(`recovery: restart to output ${results.at(-1)!.restartMs} ms`);
  }
  const median = (f: (r: RecoveryResult) => number) =>
    results.map(f).toSorted((a, b) => a - b)[Math.floor(results.length / 2)];
  const restart = median((r) => r.restartMs);
  const rows: BenchRow[] = [
    row("recovery.restart_to_output", restart, "ms", GOAL_MS, { baselineName: "goal: 5 s" }),
    row("recovery.restart_to_output", restart, "ms", median((r) => r.coldStartMs), {
      baselineName: "cold start, no dead member",
    }),
  ];
  if (o.dynamic) {
    const old = await measureRecovery(broker, { dynamic: true, timeoutMs: 300_000 });
    log(`recovery: dynamic membership, restart to output ${old.restartMs} ms`);
    rows.push(
      row("recovery.restart_to_output", restart, "ms", old.restartMs, {
        baselineName: "dynamic membership (before issue 16)",
      }),
    );
  } else {
    section.notes.push(
      "the old behaviour (dynamic membership: the restart waits out the dead member's 60 s " +
        "session) is measured by the full suite only",
    );
  }
  section.rows = rows;
  section.notes.push(
    "one partition, --batch-rows 1; the restart is spawned right after the killed process " +
      "exited, and the event is produced after the kill; `cold start` is the first process's " +
      "spawn to its first output, the floor a restart can reach; group.instance.id " +
      `${results[0].instance === null ? "not set" : `\`${results[0].instance}\``}`,
  );
  return section;
}
