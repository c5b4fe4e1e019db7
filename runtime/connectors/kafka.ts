/**
 * `fhub/kafka`: a topic as an unbounded source (`consume`, with a consumer group) and as a
 * sink (`produce`), over `@platformatic/kafka` (pure TypeScript; see docs/connectors.md for
 * why). Values are JSON objects decoded straight into Arrow batches of the row type the
 * compiler inferred. A message that does not fit must never crash a run: it becomes a row
 * error the executor sends to a handler. Offsets must never be committed before the
 * executor says every row derived from them was acknowledged: the source commits only in
 * `commit(position)`, never automatically, so a crash means duplicates at worst, never gaps.
 * Consumers are static group members (`group.instance.id`), so a consumer restarted after
 * `kill -9` takes its partitions back at once instead of waiting out the dead member's session.
 */
import {
  Consumer,
  type Message,
  type MessagesStream,
  Producer,
  stringDeserializer,
  stringSerializer,
} from "@platformatic/kafka";
import { createHash } from "node:crypto";
import { Field, Schema, type Table, Utf8 } from "apache-arrow";
import { jsonValue, toArrowField } from "./_arrow.ts";
import { type Rejected, RowDecoder, rowEncoder } from "./_kafka_json.ts";
import { configValue, remoteError, stringOf } from "./_remote.ts";
import {
  type ColumnSpec,
  type ConnectorContext,
  ConnectorError,
  type ConnectorFactory,
  type Position,
  type Sink,
  type Source,
  type SourceBatch,
  type SourceRowError,
} from "./_types.ts";

/**
 * Fetch sizes: a fetch is decoded whole (every message of it is pushed to the buffer in one
 * go) before the first batch of it can leave, so an unbounded one (the client's default is
 * 50 MB) made the first output on a full topic wait seconds. The broker still returns a
 * record batch larger than these, whole.
 */
const FETCH_MAX_BYTES = 1 << 20;
const FETCH_PARTITION_MAX_BYTES = 512 << 10;

type KafkaMessage = Message<string, string, string, string>;

/** Client options shared by the consumer and the producer, from the `connection` resource. */
function clientOptions(ctx: ConnectorContext, slot: string) {
  const resource = ctx.resources[slot] ?? {};
  const broker = stringOf(resource, "broker");
  if (!broker) throw new ConnectorError("config", "the Kafka connection needs a `broker`");
  const username = stringOf(resource, "sasl_username");
  const password = stringOf(resource, "sasl_password");
  return {
    broker,
    password,
    options: {
      clientId: stringOf(resource, "client_id", `heddle-${ctx.workflow}`)!,
      bootstrapBrokers: broker.split(",").map((b) => b.trim()).filter((b) => b !== ""),
      ...(configValue(resource.ssl) === true ? { tls: {} } : {}),
      ...(username
        ? { sasl: { mechanism: "PLAIN" as const, username, password: password ?? "" } }
        : {}),
    },
  };
}

function topicOf(ctx: ConnectorContext): string {
  const topic = stringOf(ctx.config, "topic");
  if (!topic) throw new ConnectorError("config", "`topic` must be a non-empty string");
  return topic;
}

/**
 * The consumer's static group membership id (KIP-345): the `instance` config, or one stable
 * per host, program directory, group and topic, so that the same program restarted on the
 * same host is the same member and the broker hands it its partitions at once, without
 * waiting out the dead member's session. `instance: ""` opts out (dynamic membership). Two
 * live consumers with one id fence each other (the older one's run fails), so running one
 * program twice at once on one host needs a distinct `instance` for each.
 */
function instanceOf(ctx: ConnectorContext, group: string, topic: string): string | undefined {
  const configured = stringOf(ctx.config, "instance");
  if (configured !== undefined) return configured === "" ? undefined : configured;
  // Kafka allows [a-zA-Z0-9._-] and 249 characters: a readable head and a digest of the rest.
  const host = Deno.hostname().replace(/[^a-zA-Z0-9._-]/g, "_").slice(0, 64);
  const digest = createHash("sha256").update([ctx.baseDir, group, topic].join("\0"))
    .digest("hex").slice(0, 16);
  return `heddle.${host}.${digest}`;
}

/** The rows' schema: the inferred row type; a column whose type is open holds JSON text. */
function consumeSchema(spec: ColumnSpec[] | null): Schema {
  if (!spec || spec.length === 0) {
    throw new ConnectorError(
      "config",
      "the row type of this `kafka.consume` is unknown: name its fields in the program or " +
        "a `.schema.json` next to it",
    );
  }
  return new Schema(
    spec.map((c) =>
      c.type
        ? toArrowField({ name: c.name, type: c.type, nullable: c.nullable })
        : new Field(c.name, new Utf8(), true)
    ),
  );
}

function excerpt(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** Why a message's value is not a row of `schema` (never quoting it), or null if it is one. */
export function rejectionOf(schema: Schema, text: string | undefined): Rejected | null {
  return new RowDecoder(schema).add(text);
}

/** Per partition, the next offset to read (a decimal string, since offsets are 64-bit). */
type Offsets = Record<string, string>;

class KafkaSource implements Source {
  readonly bounded = false;
  readonly schema: Schema;
  #consumer: Consumer<string, string, string, string>;
  #lagLookup = false;
  #lagAgain = false;
  #stream: MessagesStream<string, string, string, string> | null = null;
  #buffer: KafkaMessage[] = [];
  #failure: unknown = null;
  #wake: (() => void) | null = null;
  /** Buffered messages at which fetching pauses. */
  #high: number;
  #decoder: RowDecoder;
  #read: Offsets = {};
  #committed: Offsets = {};
  #epochs = new Map<number, number>();
  #topic: string;
  #group: string;
  #from: "earliest" | "latest";
  #broker: string;
  #secrets: (string | undefined)[];

  constructor(private ctx: ConnectorContext) {
    this.schema = consumeSchema(ctx.schema);
    this.#decoder = new RowDecoder(this.schema);
    this.#topic = topicOf(ctx);
    this.#group = stringOf(ctx.config, "group", ctx.workflow)!;
    this.#high = Math.max(2 * ctx.batchRows, 1024);
    const from = stringOf(ctx.config, "from", "earliest");
    if (from !== "earliest" && from !== "latest") {
      throw new ConnectorError("config", "`from` must be `earliest` or `latest`");
    }
    this.#from = from;
    const client = clientOptions(ctx, "broker");
    this.#broker = client.broker;
    this.#secrets = [client.password];
    const instance = instanceOf(ctx, this.#group, this.#topic);
    this.#consumer = new Consumer({
      ...client.options,
      groupId: this.#group,
      ...(instance === undefined ? {} : { groupInstanceId: instance }),
      deserializers: {
        key: stringDeserializer,
        value: stringDeserializer,
        headerKey: stringDeserializer,
        headerValue: stringDeserializer,
      },
    });
  }

  async open(): Promise<this> {
    try {
      this.#stream = await this.#consumer.consume({
        topics: [this.#topic],
        mode: "committed",
        fallbackMode: this.#from,
        autocommit: false,
        maxBytes: FETCH_MAX_BYTES,
        maxBytesPerPartition: FETCH_PARTITION_MAX_BYTES,
      });
    } catch (error) {
      await this.#consumer.close(true).catch(() => {});
      throw remoteError(
        "unavailable",
        `kafka: cannot consume \`${this.#topic}\` from ${this.#broker}`,
        error,
        this.#secrets,
      );
    }
    this.#stream.on("data", (m: KafkaMessage) => {
      this.#buffer.push(m);
      // Backpressure: a full buffer stops fetching until the executor takes it below again.
      if (this.#buffer.length >= this.#high) this.#stream?.pause();
      this.#wake?.();
    });
    this.#stream.on("error", (error: unknown) => {
      this.#failure = error;
      this.#wake?.();
    });
    return this;
  }

  /** Resolves when a message arrives, the stream fails, or `signal` aborts. */
  #waitFor(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        this.#wake = null;
        resolve();
      };
      signal.addEventListener("abort", done, { once: true });
      this.#wake = done;
    });
  }

  /**
   * Adaptive batching: a batch leaves as soon as the executor asks for one and anything is
   * buffered, never waiting for more. When the stream is quiet every message leaves at once;
   * under load the executor asks less often (its queues are full) while fetches keep filling
   * the buffer, so batches grow towards `--batch-rows`. A fetch's messages are pushed in one
   * synchronous burst and the wake-up runs after it, so a batch holds at least a whole fetch
   * (up to the limit), never its first message alone.
   */
  async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
    const want = this.ctx.batchRows;
    while (!signal.aborted) {
      while (!signal.aborted && this.#buffer.length === 0 && !this.#failure) {
        await this.#waitFor(signal);
      }
      if (this.#failure) {
        throw remoteError(
          "unavailable",
          `kafka: reading \`${this.#topic}\``,
          this.#failure,
          this.#secrets,
        );
      }
      // Messages taken but not yet emitted when the run drains are simply not committed.
      if (signal.aborted) continue;
      const taken = this.#buffer.splice(0, want);
      if (this.#buffer.length < this.#high && this.#stream?.isPaused()) this.#stream.resume();
      yield this.#decode(taken);
    }
  }

  #decode(messages: KafkaMessage[]): SourceBatch {
    const errors: SourceRowError[] = [];
    for (const m of messages) {
      const row = this.#decoder.add(m.value);
      if (row !== null) {
        const where = `kafka topic \`${m.topic}\` partition ${m.partition} offset ${m.offset}`;
        errors.push({
          record: Number(m.offset),
          message: `${where}: ${row.why}: ${excerpt(m.value ?? "")}`,
          reason: `${where}: ${row.why}`,
          column: row.column,
        });
      }
      this.#read[String(m.partition)] = (m.offset + 1n).toString();
      this.#epochs.set(m.partition, m.leaderEpoch);
    }
    return { table: this.#decoder.finish(), errors, position: { ...this.#read } };
  }

  async commit(position: Position): Promise<void> {
    const offsets = Object.entries(position as Offsets)
      .filter(([p, next]) => this.#committed[p] !== next)
      .map(([p, next]) => ({
        topic: this.#topic,
        partition: Number(p),
        offset: BigInt(next),
        leaderEpoch: this.#epochs.get(Number(p)) ?? -1,
      }));
    if (offsets.length === 0) return;
    try {
      await this.#consumer.commit({ offsets });
    } catch (error) {
      throw remoteError(
        "unavailable",
        `kafka: committing offsets of \`${this.#topic}\``,
        error,
        this.#secrets,
      );
    }
    for (const o of offsets) this.#committed[String(o.partition)] = o.offset.toString();
    this.#reportLag();
  }

  /**
   * Tells the run how many messages each partition holds after the committed offset (for
   * `heddle_kafka_consumer_lag`). Best effort and never awaited: a failed lookup changes
   * nothing of the run. One lookup at a time; commits meanwhile ask for one more after it.
   */
  #reportLag(): void {
    const report = this.ctx.reportLag;
    if (!report) return;
    if (this.#lagLookup) {
      this.#lagAgain = true;
      return;
    }
    this.#lagLookup = true;
    this.#consumer.listOffsets({ topics: [this.#topic] }).then((ends) => {
      const partitions: Record<string, number> = {};
      (ends.get(this.#topic) ?? []).forEach((end, p) => {
        const committed = this.#committed[String(p)];
        if (committed !== undefined) {
          partitions[String(p)] = Math.max(0, Number(end - BigInt(committed)));
        }
      });
      report(this.#topic, partitions);
    }, () => {}).finally(() => {
      this.#lagLookup = false;
      if (this.#lagAgain) {
        this.#lagAgain = false;
        this.#reportLag();
      }
    });
  }

  async close(): Promise<void> {
    this.#buffer = [];
    await this.#stream?.close().catch(() => {});
    await this.#consumer.close(true).catch(() => {});
  }
}

/** Writes waiting to be sent, with how to settle each once its send is acknowledged. */
interface PendingWrite {
  messages: { topic: string; value: string; key?: string }[];
  bytes: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** How many writes the executor may have outstanding on one sink (see `Sink.inFlight`). */
const SINK_IN_FLIGHT = 8;

/**
 * At most this many value bytes go in one produce request made of several writes: the
 * broker refuses a record batch over `message.max.bytes` (1 MiB by default). A single write
 * larger than this is sent alone, as it always was.
 */
const SEND_MAX_BYTES = 768 << 10;

/**
 * The producer side. The executor keeps up to `inFlight` writes outstanding; one produce
 * request is on the wire at a time (the idempotent producer allows one per connection, which
 * keeps the records in order), and the writes that arrive while it is out are sent together
 * as the next request the moment it is acknowledged. Under load requests grow; on a quiet
 * stream each write goes out at once. Every write resolves only when the request holding its
 * rows was acknowledged by every in-sync replica, and fails with it otherwise.
 */
class KafkaSink implements Sink {
  readonly acknowledges = "on-write";
  readonly inFlight = SINK_IN_FLIGHT;
  #producer: Producer<string, string, string, string>;
  #topic: string;
  #key: string | undefined;
  #broker: string;
  #secrets: (string | undefined)[];
  #waiting: PendingWrite[] = [];
  #encoders = new WeakMap<Schema, (table: Table) => string[]>();
  #sending = false;

  constructor(ctx: ConnectorContext) {
    this.#topic = topicOf(ctx);
    this.#key = stringOf(ctx.config, "key");
    const client = clientOptions(ctx, "broker");
    this.#broker = client.broker;
    this.#secrets = [client.password];
    this.#producer = new Producer({
      ...client.options,
      // Every in-sync replica must have the record before `write` resolves: the executor
      // commits source offsets on that acknowledgement. Idempotence lets the broker drop
      // the duplicates a retried send would otherwise leave (a fresh broker electing leaders).
      acks: -1,
      idempotent: true,
      // As Kafka's own producers do: the broker creates a missing topic if it is set to.
      autocreateTopics: true,
      serializers: {
        key: stringSerializer,
        value: stringSerializer,
        headerKey: stringSerializer,
        headerValue: stringSerializer,
      },
    });
  }

  /**
   * Makes sure the topic can be written before the first row: a missing topic that the
   * broker will not create, or an invalid name, otherwise leaves every send waiting for
   * the topic to appear until the step's timeout.
   */
  async open(): Promise<this> {
    try {
      await this.#producer.metadata({ topics: [this.#topic], autocreateTopics: true });
    } catch (error) {
      await this.#producer.close(true).catch(() => {});
      throw remoteError(
        "unavailable",
        `kafka: cannot produce to \`${this.#topic}\` on ${this.#broker}`,
        withReasons(error),
        this.#secrets,
      );
    }
    return this;
  }

  write(rows: Table): Promise<void> {
    if (rows.numRows === 0) return Promise.resolve();
    let bytes = 0;
    const values = this.#encoderOf(rows.schema)(rows);
    const keys = this.#key === undefined ? null : rows.getChild(this.#key);
    const messages = values.map((value, i) => {
      bytes += value.length;
      const key = keys?.get(i);
      return {
        topic: this.#topic,
        value,
        ...(key === undefined || key === null
          ? {}
          : { key: typeof key === "string" ? key : JSON.stringify(jsonValue(key)) }),
      };
    });
    return new Promise((resolve, reject) => {
      this.#waiting.push({ messages, bytes, resolve, reject });
      this.#pump();
    });
  }

  /** Batches of one stream share their schema object: one encoder each. */
  #encoderOf(schema: Schema): (table: Table) => string[] {
    let encode = this.#encoders.get(schema);
    if (!encode) this.#encoders.set(schema, encode = rowEncoder(schema));
    return encode;
  }

  /** Sends the waiting writes (as many as fit one request) unless a request is out. */
  #pump(): void {
    if (this.#sending || this.#waiting.length === 0) return;
    const group: PendingWrite[] = [this.#waiting.shift()!];
    let bytes = group[0].bytes;
    while (this.#waiting.length > 0 && bytes + this.#waiting[0].bytes <= SEND_MAX_BYTES) {
      bytes += this.#waiting[0].bytes;
      group.push(this.#waiting.shift()!);
    }
    this.#sending = true;
    const messages = group.length === 1 ? group[0].messages : group.flatMap((w) => w.messages);
    this.#producer.send({ messages }).then(
      () => group.forEach((w) => w.resolve()),
      (error) => {
        const failure = remoteError(
          "unavailable",
          `kafka: producing to \`${this.#topic}\` on ${this.#broker}`,
          error,
          this.#secrets,
        );
        group.forEach((w) => w.reject(failure));
      },
    ).finally(() => {
      this.#sending = false;
      this.#pump();
    });
  }

  async flush(): Promise<void> {
    await this.#producer.close().catch(() => {});
  }

  async abort(): Promise<void> {
    await this.#producer.close(true).catch(() => {});
  }
}

/** `kafka.consume <broker> {topic, group?, from?}`: an unbounded source of JSON rows. */
export const kafkaConsume: ConnectorFactory = {
  role: "source",
  async open(ctx) {
    return await new KafkaSource(ctx).open();
  },
};

/** `kafka.produce <broker> {topic, key?}`: each row becomes one JSON record. */
export const kafkaProduce: ConnectorFactory = {
  role: "sink",
  async open(ctx) {
    return await new KafkaSink(ctx).open();
  },
};

/**
 * The client's error with the broker's reasons in its message: a failed request says only
 * which API failed, and what went wrong ("an invalid topic") is in its `errors`.
 */
function withReasons(error: unknown): unknown {
  const reasons = (error as { errors?: unknown })?.errors;
  if (!(error instanceof Error) || !Array.isArray(reasons) || reasons.length === 0) return error;
  const why = [...new Set(reasons.map((r) => r instanceof Error ? r.message : String(r)))];
  return Object.assign(new Error(`${error.message.split(" [")[0]}: ${why.join("; ")}`), {
    code: (error as { code?: unknown }).code,
  });
}
