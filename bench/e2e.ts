/**
 * End to end on a real broker: Kafka -> filter -> Kafka through `heddle run` (the CLI,
 * spawned), against the same workflow written for its peers: a bytewax dataflow
 * (bench/_bytewax_filter.py) and a plain confluent-kafka (librdkafka) loop
 * (bench/_confluent_filter.py), each a separate process measured in the same run (a peer whose
 * Python package is missing is skipped with one line). Two scenarios (issue 11.4):
 *
 * - latency: fresh topics, a warm-up event must come out first (so start-up and joining the
 *   group are not measured), then events are offered at a fixed rate, each carrying its
 *   produce time, and a collector on the output topic records when each arrives;
 * - throughput: the input topic is loaded first, then the process is started and timed from
 *   its spawn to the arrival of the last output record (start-up included).
 *
 * It skips with a clear line when no broker answers and must never leave its child processes
 * running.
 */
import {
  Admin,
  Consumer,
  type Message,
  Producer,
  stringDeserializer,
  stringSerializer,
} from "@platformatic/kafka";
import { type BenchRow, type BenchSection, missingPeer, percentile, row } from "./_report.ts";

export interface E2eOptions {
  /** Events offered in the latency scenario, at `rate` a second. */
  events: number;
  rate?: number;
  /** Events loaded before the start in the throughput scenario. */
  preloaded: number;
  broker?: string;
  log?: (line: string) => void;
}

const ROOT = new URL("..", import.meta.url).pathname;
const strings = {
  key: stringSerializer,
  value: stringSerializer,
  headerKey: stringSerializer,
  headerValue: stringSerializer,
};

type Side = "heddle" | "bytewax" | "confluent";

const PEERS: { side: Side; name: string; module: string }[] = [
  { side: "bytewax", name: "bytewax (1 worker)", module: "bytewax" },
  { side: "confluent", name: "plain confluent-kafka loop", module: "confluent_kafka" },
];

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
 * Spawns a benchmark's child process (`deno <args>` in the repository, or `command <args>`)
 * keeping its stderr. `alive()` throws once it has exited on its own; `stop(signal)` ends it
 * and waits.
 */
export function spawnChild(label: string, args: string[], command = Deno.execPath()) {
  const child = new Deno.Command(command, {
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

/** Fresh topic names and group for one side of one scenario. */
function names(scenario: string, side: Side) {
  const tag = `${scenario}-${side}-${Date.now()}-${crypto.randomUUID().slice(0, 6)}`;
  return { input: `bench-in-${tag}`, output: `bench-out-${tag}`, group: `bench-${tag}` };
}

async function createTopics(broker: string, topics: string[]): Promise<void> {
  const admin = new Admin({ clientId: "bench", bootstrapBrokers: [broker] });
  try {
    await admin.createTopics({ topics, partitions: 2, replicas: 1 });
  } finally {
    await admin.close();
  }
}

/** Starts `side` reading `input` and writing `output`; its workflow file lives in `dir`. */
function start(side: Side, broker: string, t: ReturnType<typeof names>, dir: string) {
  if (side === "heddle") {
    const file = `${dir}/filter.he`;
    Deno.writeTextFileSync(file, workflow(broker, t.input, t.output, t.group));
    return spawnChild(side, ["run", "-A", `${ROOT}cli/main.ts`, "run", file]);
  }
  const script = side === "bytewax" ? "_bytewax_filter.py" : "_confluent_filter.py";
  return spawnChild(
    side,
    [`${ROOT}bench/${script}`, broker, t.input, t.output, t.group],
    "python3",
  );
}

/** An event of the benchmark: half of them (`amount > 50`) pass the filter. */
function event(id: number) {
  return { id, amount: (id * 37) % 100 + 0.5, produced_at: Date.now() };
}

function kept(events: number): number {
  let n = 0;
  for (let id = 0; id < events; id++) if (event(id).amount > 50) n++;
  return n;
}

/** Runs `body` with `side` started on fresh topics, then stops it and cleans up. */
async function withSide<T>(
  side: Side,
  broker: string,
  t: ReturnType<typeof names>,
  log: (line: string) => void,
  body: (child: ReturnType<typeof spawnChild>) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "heddle-bench-e2e-" });
  const child = start(side, broker, t, dir);
  try {
    return await body(child);
  } finally {
    const { status, stderr: text } = await child.stop("SIGTERM");
    // `heddle run` stopped by SIGTERM exits 3 (docs/cli.md): drained, as asked.
    const stopped = status.success || (side === "heddle" && status.code === 3);
    if (!stopped && status.signal === null) log(`${side} exited ${status.code}: ${text}`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

interface Latency {
  p50: number;
  p99: number;
  delivered: number;
}

/**
 * Sends `events` to `topic` at `rate` a second: every 10 ms the events due by then, the
 * sends not awaited one by one, so a slow acknowledgement does not slow the offered rate.
 */
async function offer(
  producer: Producer<string, string, string, string>,
  topic: string,
  events: number,
  rate: number,
) {
  const started = Date.now();
  const sends: Promise<unknown>[] = [];
  for (let next = 0; next < events;) {
    const due = Math.min(events, Math.floor(((Date.now() - started) / 1000) * rate) + 1);
    const messages = [];
    for (; next < due; next++) messages.push({ topic, value: JSON.stringify(event(next)) });
    if (messages.length > 0) sends.push(producer.send({ messages }));
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(sends);
}

/**
 * Two seconds of events at `rate` through the broker and back, measured by nobody: the
 * broker's own warm-up (its JIT, its page cache) otherwise lands on whichever side is
 * measured first. Seen: the first side's p99 at 31-102 ms, 11 ms once the broker was warm,
 * whichever side went first.
 */
async function warmBroker(broker: string, rate: number): Promise<void> {
  const topic = `bench-warmup-${Date.now()}-${crypto.randomUUID().slice(0, 6)}`;
  await createTopics(broker, [topic]);
  const collector = await collect(broker, topic);
  const producer = new Producer({
    clientId: "bench",
    bootstrapBrokers: [broker],
    serializers: strings,
  });
  try {
    await offer(producer, topic, 2 * rate, rate);
    await collector.waitFor(2 * rate, 120_000, () => {});
  } finally {
    await producer.close().catch(() => {});
    await collector.close();
  }
}

/** Offers `events` at `rate` a second after a warm-up; latency of each kept event. */
async function latencyOf(
  side: Side,
  broker: string,
  events: number,
  rate: number,
  log: (line: string) => void,
): Promise<Latency> {
  const t = names("latency", side);
  await createTopics(broker, [t.input, t.output]);
  const collector = await collect(broker, t.output);
  const producer = new Producer({
    clientId: "bench",
    bootstrapBrokers: [broker],
    serializers: strings,
  });
  try {
    return await withSide(side, broker, t, log, async (child) => {
      const warm = { id: -1, amount: 100, produced_at: Date.now() };
      await producer.send({ messages: [{ topic: t.input, value: JSON.stringify(warm) }] });
      await collector.waitFor(1, 120_000, child.alive);
      await offer(producer, t.input, events, rate);
      await collector.waitFor(kept(events) + 1, 600_000, child.alive);
      const latencies = [...collector.arrivals.entries()].filter(([id]) => id >= 0)
        .map(([, a]) => a.at - a.producedAt);
      const result = {
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        delivered: latencies.length,
      };
      log(`e2e latency ${side}: p50 ${result.p50} ms, p99 ${result.p99} ms`);
      return result;
    });
  } finally {
    await producer.close().catch(() => {});
    await collector.close();
  }
}

/** Loads `events` into a fresh topic, a few requests in flight. */
async function preload(broker: string, topic: string, events: number): Promise<void> {
  const producer = new Producer({
    clientId: "bench",
    bootstrapBrokers: [broker],
    serializers: strings,
  });
  try {
    const sends = new Set<Promise<unknown>>();
    for (let i = 0; i < events; i += 2000) {
      const messages = [];
      for (let id = i; id < Math.min(events, i + 2000); id++) {
        messages.push({ topic, value: JSON.stringify(event(id)) });
      }
      const send: Promise<unknown> = producer.send({ messages }).finally(() => sends.delete(send));
      sends.add(send);
      if (sends.size >= 4) await Promise.race(sends);
    }
    await Promise.all(sends);
  } finally {
    await producer.close();
  }
}

/** Events per second from the spawn of `side` to its last output record, start-up included. */
async function throughputOf(
  side: Side,
  broker: string,
  input: string,
  events: number,
  log: (line: string) => void,
): Promise<number> {
  const t = { ...names("throughput", side), input };
  await createTopics(broker, [t.output]);
  const collector = await collect(broker, t.output);
  try {
    const spawned = Date.now();
    return await withSide(side, broker, t, log, async (child) => {
      await collector.waitFor(kept(events), 900_000, child.alive);
      let last = 0; // no spread: half a million arrivals overflow the stack
      for (const a of collector.arrivals.values()) last = Math.max(last, a.at);
      const perSecond = events / ((last - spawned) / 1000);
      log(`e2e throughput ${side}: ${Math.round(perSecond)} events/s`);
      return perSecond;
    });
  } finally {
    await collector.close();
  }
}

export async function benchE2e(o: E2eOptions): Promise<BenchSection> {
  const broker = o.broker ?? `127.0.0.1:${Deno.env.get("HEDDLE_KAFKA_PORT") ?? "9092"}`;
  const log = o.log ?? (() => {});
  const rate = o.rate ?? 5000;
  const section: BenchSection = {
    name: "e2e",
    title: `End to end: Kafka -> filter -> Kafka (${o.events} events at ${rate}/s offered; ` +
      `${o.preloaded} pre-loaded)`,
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
  const peers = [];
  for (const p of PEERS) {
    const missing = await missingPeer(p.module);
    if (missing) section.notes.push(`${p.name} skipped: ${missing}`);
    else peers.push(p);
  }
  await warmBroker(broker, rate);
  const heddle = await latencyOf("heddle", broker, o.events, rate, log);
  const rows: BenchRow[] = [];
  const latencyRows = (name: string, peer: Latency | null) => [
    row("e2e.latency.p50", heddle.p50, "ms", peer?.p50 ?? null, { baselineName: name }),
    row("e2e.latency.p99", heddle.p99, "ms", peer?.p99 ?? null, {
      baselineName: name,
      note: `arrival at the collector - produce time in the event, ${rate} events/s offered`,
    }),
    row("e2e.delivered", heddle.delivered, "events", peer?.delivered ?? null, {
      baselineName: name,
    }),
  ];
  for (const p of peers) {
    rows.push(...latencyRows(p.name, await latencyOf(p.side, broker, o.events, rate, log)));
  }
  if (peers.length === 0) rows.push(...latencyRows("no peer installed", null));

  const input = names("preloaded", "heddle").input;
  await createTopics(broker, [input]);
  await preload(broker, input, o.preloaded);
  const throughput = await throughputOf("heddle", broker, input, o.preloaded, log);
  const note = "pre-loaded events / (last output arrival - spawn of the process)";
  for (const p of peers) {
    const peer = await throughputOf(p.side, broker, input, o.preloaded, log);
    rows.push(
      row("e2e.preloaded.throughput", throughput, "events/s", peer, { baselineName: p.name, note }),
    );
  }
  if (peers.length === 0) {
    rows.push(row("e2e.preloaded.throughput", throughput, "events/s", null, { note }));
  }
  section.rows = rows;
  section.notes.push(
    "every side is a separate process on the same broker and 2-partition topics: " +
      "`deno run -A cli/main.ts run FILE`, bench/_bytewax_filter.py (one worker, bytewax's " +
      "Kafka connectors), bench/_confluent_filter.py (consume up to 1,000, produce, flush, " +
      "commit); all produce with acks=all and keep the same half of the events",
    "latency: a warm-up event is awaited first so start-up and group join are not measured; " +
      "throughput: timed from the spawn, so start-up and group join are included; one run " +
      "each (a run is long)",
  );
  return section;
}
