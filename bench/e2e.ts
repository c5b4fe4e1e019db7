/**
 * End to end on a real broker: Kafka -> filter -> Kafka through `heddle run` (the CLI,
 * spawned), against a hand-written script with the same client (bench/_kafka_script.ts).
 * Each side gets fresh topics; a warm-up event must come out first (so start-up, compiling and
 * joining the group are not measured), then events are produced as fast as the producer
 * goes, each carrying its produce timestamp, and a collector on the output topic records when
 * each arrives. It skips with a clear line when no broker answers and must never leave its
 * child processes running.
 */
import {
  Admin,
  Consumer,
  type Message,
  Producer,
  stringDeserializer,
  stringSerializer,
} from "@platformatic/kafka";
import { type BenchSection, percentile, row } from "./_report.ts";

export interface E2eOptions {
  events: number;
  broker?: string;
  log?: (line: string) => void;
}

interface SideResult {
  eventsPerSecond: number;
  p50: number;
  p99: number;
  delivered: number;
}

const ROOT = new URL("..", import.meta.url).pathname;
const strings = {
  key: stringSerializer,
  value: stringSerializer,
  headerKey: stringSerializer,
  headerValue: stringSerializer,
};

export async function brokerUp(broker: string): Promise<boolean> {
  const [hostname, port] = broker.split(":");
  try {
    const conn = await Deno.connect({ hostname, port: Number(port) });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

function workflow(broker: string, input: string, output: string, group: string): string {
  return `import "fhub/kafka" kafka

resource kf = kafka.connection { broker: "${broker}", client_id: "bench-heddle" }

workflow KafkaFilter {
  kafka.consume <broker=kf> { topic: "${input}", group: "${group}", from: "earliest" }: {
    id: int64
    amount: float64
    produced_at: float64
  }
  | (from input | filter amount > 50.0)
  | kafka.produce <broker=kf> { topic: "${output}" }
}
`;
}

/**
 * Spawns a benchmark's child process (`deno <args>` in the repository) keeping its stderr.
 * `alive()` throws once it has exited on its own; `stop(signal)` ends it and waits.
 */
export function spawnChild(label: string, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let exited: string | null = null;
  child.status.then(async (s) => {
    exited ??= `${label} exited early (code ${s.code}): ${(await stderr).slice(0, 600)}`;
  });
  return {
    alive: () => {
      if (exited) throw new Error(exited);
    },
    async stop(signal: Deno.Signal): Promise<{ status: Deno.CommandStatus; stderr: string }> {
      exited ??= "stopped";
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      return { status: await child.status, stderr: await stderr };
    },
  };
}

/** Collects `{id, produced_at}` of every output record with its arrival time. */
export async function collect(broker: string, topic: string) {
  const consumer = new Consumer({
    clientId: "bench-collector",
    groupId: `bench-collector-${crypto.randomUUID()}`,
    bootstrapBrokers: [broker],
    deserializers: {
      key: stringDeserializer,
      value: stringDeserializer,
      headerKey: stringDeserializer,
      headerValue: stringDeserializer,
    },
  });
  const stream = await consumer.consume({ topics: [topic], mode: "earliest" });
  const arrivals = new Map<number, { producedAt: number; at: number }>();
  let wake: (() => void) | null = null;
  stream.on("data", (m: Message<string, string, string, string>) => {
    const v = JSON.parse(m.value) as { id: number; produced_at: number };
    if (!arrivals.has(v.id)) arrivals.set(v.id, { producedAt: v.produced_at, at: Date.now() });
    wake?.();
  });
  return {
    arrivals,
    /** Resolves once `n` distinct records arrived; rejects after `ms`. */
    async waitFor(n: number, ms: number, alive: () => void): Promise<void> {
      const deadline = Date.now() + ms;
      while (arrivals.size < n) {
        alive();
        if (Date.now() > deadline) {
          throw new Error(`only ${arrivals.size} of ${n} events reached \`${topic}\``);
        }
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 100);
        });
      }
    },
    close: () => consumer.close(true).catch(() => {}),
  };
}

async function runSide(
  side: "heddle" | "script",
  broker: string,
  events: number,
  log: (line: string) => void,
): Promise<SideResult> {
  const tag = `${side}-${Date.now()}`;
  const input = `bench-in-${tag}`, output = `bench-out-${tag}`, group = `bench-${tag}`;
  const admin = new Admin({ clientId: "bench", bootstrapBrokers: [broker] });
  await admin.createTopics({ topics: [input, output], partitions: 2, replicas: 1 });
  await admin.close();
  const dir = await Deno.makeTempDir({ prefix: "heddle-bench-e2e-" });
  const file = `${dir}/filter.he`;
  Deno.writeTextFileSync(file, workflow(broker, input, output, group));
  const args = side === "heddle"
    ? ["run", "-A", `${ROOT}cli/main.ts`, "run", file]
    : ["run", "-A", `${ROOT}bench/_kafka_script.ts`, broker, input, output, group];
  const child = spawnChild(side, args);
  const alive = child.alive;
  const collector = await collect(broker, output);
  const producer = new Producer({
    clientId: "bench",
    bootstrapBrokers: [broker],
    serializers: strings,
  });
  try {
    // Warm-up: an event that passes the filter must come out before timing starts.
    const warm = { id: -1, amount: 100, produced_at: Date.now() };
    await producer.send({ messages: [{ topic: input, value: JSON.stringify(warm) }] });
    await collector.waitFor(1, 60_000, alive);
    const start = Date.now();
    let kept = 0;
    for (let i = 0; i < events; i += 500) {
      const messages = [];
      for (let k = i; k < Math.min(events, i + 500); k++) {
        const amount = (k * 37) % 100 + 0.5; // half the events pass `amount > 50`
        if (amount > 50) kept++;
        messages.push({
          topic: input,
          value: JSON.stringify({ id: k, amount, produced_at: Date.now() }),
        });
      }
      await producer.send({ messages });
    }
    await collector.waitFor(kept + 1, 600_000, alive);
    const timed = [...collector.arrivals.entries()].filter(([id]) => id >= 0).map(([, a]) => a);
    const end = Math.max(...timed.map((a) => a.at));
    const latencies = timed.map((a) => a.at - a.producedAt);
    const result = {
      eventsPerSecond: events / ((end - start) / 1000),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      delivered: timed.length,
    };
    log(`e2e ${side}: ${Math.round(result.eventsPerSecond)} events/s, p99 ${result.p99} ms`);
    return result;
  } finally {
    await producer.close().catch(() => {});
    await collector.close();
    const { status, stderr: text } = await child.stop("SIGTERM");
    if (!status.success && status.signal === null) log(`${side} exited ${status.code}: ${text}`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

export async function benchE2e(o: E2eOptions): Promise<BenchSection> {
  const broker = o.broker ?? `127.0.0.1:${Deno.env.get("HEDDLE_KAFKA_PORT") ?? "9092"}`;
  const log = o.log ?? (() => {});
  const section: BenchSection = {
    name: "e2e",
    title: `End to end: Kafka -> filter -> Kafka (${o.events} events)`,
    runs: 1,
    rows: [],
    notes: [],
  };
  if (!await brokerUp(broker)) {
    return {
      ...section,
      skipped: `no Kafka broker at ${broker}; start one with \`tests/services/kafka.sh start\``,
    };
  }
  const heddle = await runSide("heddle", broker, o.events, log);
  const script = await runSide("script", broker, o.events, log);
  const baselineName = "script, same client, message by message";
  section.rows = [
    row("e2e.throughput", heddle.eventsPerSecond, "events/s", script.eventsPerSecond, {
      baselineName,
      note: "events produced / (last output arrival - first produce)",
    }),
    row("e2e.latency.p50", heddle.p50, "ms", script.p50, { baselineName }),
    row("e2e.latency.p99", heddle.p99, "ms", script.p99, {
      baselineName,
      note: "consume time at the end - produce time in the event",
    }),
    row("e2e.delivered", heddle.delivered, "events", script.delivered, { baselineName }),
  ];
  section.notes.push(
    "both sides run as separate processes (`deno run -A cli/main.ts run FILE` and " +
      "bench/_kafka_script.ts), both produce with acks=-1; a warm-up event is awaited first " +
      "so start-up and group join are not measured; one run each (a run is long)",
    "events are produced in batches of 500 as fast as the broker accepts them, so latency " +
      "includes queueing behind earlier events",
  );
  return section;
}
