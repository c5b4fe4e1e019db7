/**
 * Helpers for the connector and end-to-end tests: producing and reading Kafka topics,
 * PostgreSQL and ClickHouse clients, and connector contexts. They exist so that every test
 * talks to the real services the same way; they must never reuse a consumer group or a
 * name across tests, since the services are shared across runs.
 */
import {
  Admin,
  Consumer,
  Producer,
  stringDeserializer,
  stringSerializer,
} from "@platformatic/kafka";
import pg from "pg";
import { type ClickHouseClient, createClient } from "@clickhouse/client";
import type { ColumnSpec, ConnectorContext } from "../../runtime/connectors/mod.ts";
import { serviceConfig } from "../services/mod.ts";

const brokers = serviceConfig.kafka.brokers;

/** A name no earlier run used. */
export function fresh(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 6)}`;
}

export async function createTopics(topics: string[], partitions = 2): Promise<void> {
  const admin = new Admin({ clientId: "heddle-tests", bootstrapBrokers: brokers });
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0) await admin.createTopics({ topics: missing, partitions, replicas: 1 });
  } finally {
    await admin.close();
  }
}

/** Produces each value as one record: objects as JSON, strings as they are (malformed ones). */
export async function produce(topic: string, values: (object | string)[]): Promise<void> {
  const producer = new Producer({
    clientId: "heddle-tests",
    bootstrapBrokers: brokers,
    // A send retried while a new topic elects its leaders must not leave duplicates behind
    // (without idempotence, 6 records once landed as 9 and a test saw rows never produced).
    acks: -1,
    idempotent: true,
    serializers: {
      key: stringSerializer,
      value: stringSerializer,
      headerKey: stringSerializer,
      headerValue: stringSerializer,
    },
  });
  try {
    for (let i = 0; i < values.length; i += 500) {
      await producer.send({
        messages: values.slice(i, i + 500).map((v) => ({
          topic,
          value: typeof v === "string" ? v : JSON.stringify(v),
        })),
      });
    }
  } finally {
    await producer.close();
  }
}

/** Per partition, the offset the next record will get. */
export async function endOffsets(topic: string): Promise<bigint[]> {
  const consumer = new Consumer({
    clientId: "heddle-tests",
    groupId: fresh("offsets"),
    bootstrapBrokers: brokers,
  });
  try {
    const offsets = await consumer.listOffsets({ topics: [topic] });
    return offsets.get(topic) ?? [];
  } finally {
    await consumer.close();
  }
}

/** Moves a consumer group to the end of `topic`, so that old records are not read again. */
export async function skipToEnd(group: string, topic: string): Promise<void> {
  const ends = await endOffsets(topic);
  const admin = new Admin({ clientId: "heddle-tests", bootstrapBrokers: brokers });
  try {
    await admin.alterConsumerGroupOffsets({
      groupId: group,
      topics: [{
        name: topic,
        partitionOffsets: ends.map((offset, partition) => ({ partition, offset })),
      }],
    });
  } finally {
    await admin.close();
  }
}

export interface Record_ {
  partition: number;
  offset: bigint;
  key: string | undefined;
  value: string;
}

/**
 * Reads `topic` from `from` (per partition; missing partitions from the start) until `enough`
 * says so or `timeoutMs` passes; returns what was read.
 */
export async function readTopic(
  topic: string,
  from: bigint[],
  enough: (records: Record_[]) => boolean,
  timeoutMs = 30_000,
): Promise<Record_[]> {
  const consumer = new Consumer({
    clientId: "heddle-tests",
    groupId: fresh("reader"),
    bootstrapBrokers: brokers,
    deserializers: {
      key: stringDeserializer,
      value: stringDeserializer,
      headerKey: stringDeserializer,
      headerValue: stringDeserializer,
    },
  });
  const records: Record_[] = [];
  const stream = await consumer.consume({
    topics: [topic],
    mode: "earliest",
    autocommit: false,
  });
  const deadline = Date.now() + timeoutMs;
  const timer = setInterval(() => {
    if (Date.now() > deadline || enough(records)) stream.close().catch(() => {});
  }, 100);
  try {
    for await (const m of stream) {
      if (m.offset >= (from[m.partition] ?? 0n)) {
        records.push({ partition: m.partition, offset: m.offset, key: m.key, value: m.value });
      }
      if (enough(records) || Date.now() > deadline) break;
    }
  } finally {
    clearInterval(timer);
    await stream.close().catch(() => {});
    await consumer.close(true);
  }
  return records;
}

export function pgClient(): InstanceType<typeof pg.Client> {
  return new pg.Client({
    host: serviceConfig.postgres.host,
    port: serviceConfig.postgres.port,
    user: serviceConfig.postgres.user,
    password: serviceConfig.postgres.password,
    database: serviceConfig.postgres.database,
  });
}

export function chClient(): ClickHouseClient {
  return createClient({
    url: serviceConfig.clickhouse.url,
    username: serviceConfig.clickhouse.username,
    password: serviceConfig.clickhouse.password,
    database: serviceConfig.clickhouse.database,
  });
}

/** The resource config of the test services, in the connectors' vocabulary. */
export const resources = {
  kafka: { broker: brokers.join(",") },
  postgres: {
    host: serviceConfig.postgres.host,
    port: serviceConfig.postgres.port,
    user: serviceConfig.postgres.user,
    password: serviceConfig.postgres.password,
    database: serviceConfig.postgres.database,
  },
  clickhouse: {
    host: serviceConfig.clickhouse.host,
    port: serviceConfig.clickhouse.port,
    user: serviceConfig.clickhouse.username,
    password: serviceConfig.clickhouse.password,
    database: serviceConfig.clickhouse.database,
  },
};

export function context(
  config: Record<string, unknown>,
  res: Record<string, Record<string, unknown>>,
  schema: ColumnSpec[] | null = null,
  batchRows = 100,
): ConnectorContext {
  return {
    config,
    resources: res,
    schema,
    batchRows,
    resumeAfter: null,
    baseDir: Deno.cwd(),
    workflow: fresh("wf"),
  };
}

export const int64 = { kind: "primitive", name: "int64" } as const;
export const float64 = { kind: "primitive", name: "float64" } as const;
export const utf8 = { kind: "primitive", name: "utf8" } as const;
