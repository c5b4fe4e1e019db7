/**
 * Smoke tests for the services in tests/services/: each one answers a real query through the
 * client library that Heddle's connectors use, with bound parameters, so a broken install
 * or an incompatible client shows up here before it shows up as a connector bug. They skip
 * with a message when a service is down (fail under HEDDLE_REQUIRE_SERVICES=1). Every test
 * uses names of its own, so runs never see each other's data.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";
import * as kafka from "@platformatic/kafka";
import { serviceConfig, serviceTest } from "./services/mod.ts";

const suffix = () => crypto.randomUUID().replaceAll("-", "");

serviceTest(
  "postgres answers queries with $1 and ANY($1) bound parameters",
  ["postgres"],
  async () => {
    const client = new pg.Client({ connectionString: serviceConfig.postgres.url });
    await client.connect();
    try {
      await client.query("CREATE TEMP TABLE smoke (id int8 PRIMARY KEY, name text NOT NULL)");
      const names = ["ada", "grace", "edsger", "barbara"];
      for (const [index, name] of names.entries()) {
        await client.query("INSERT INTO smoke VALUES ($1, $2)", [index + 1, name]);
      }
      const picked = await client.query<{ id: string; name: string }>(
        "SELECT id, name FROM smoke WHERE id = ANY($1::int8[]) ORDER BY id",
        [[2, 4]],
      );
      assert.deepEqual(picked.rows, [{ id: "2", name: "grace" }, { id: "4", name: "barbara" }]);
    } finally {
      await client.end();
    }
  },
);

serviceTest(
  "clickhouse binds {ids:Array(UInt64)} and returns JSONEachRow rows",
  ["clickhouse"],
  async () => {
    const client = createClient({
      url: serviceConfig.clickhouse.url,
      username: serviceConfig.clickhouse.username,
      password: serviceConfig.clickhouse.password,
    });
    const table = `smoke_${suffix()}`;
    try {
      await client.command({
        query: `CREATE TABLE ${table} (id UInt64, name String) ENGINE = MergeTree ORDER BY id`,
      });
      await client.insert({
        table,
        values: [{ id: 1, name: "ada" }, { id: 2, name: "grace" }, { id: 3, name: "edsger" }],
        format: "JSONEachRow",
      });
      const result = await client.query({
        query: `SELECT id, name FROM ${table} WHERE id IN {ids:Array(UInt64)} ORDER BY id`,
        query_params: { ids: [1, 3] },
        format: "JSONEachRow",
        clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
      });
      assert.deepEqual(await result.json(), [{ id: "1", name: "ada" }, {
        id: "3",
        name: "edsger",
      }]);
    } finally {
      await client.command({ query: `DROP TABLE IF EXISTS ${table}` });
      await client.close();
    }
  },
);

serviceTest(
  "clickhouse reports a syntax error with its code and message",
  ["clickhouse"],
  async () => {
    const client = createClient({
      url: serviceConfig.clickhouse.url,
      log: { level: ClickHouseLogLevel.OFF },
    });
    try {
      await assert.rejects(
        client.query({ query: "SELEC 1", format: "JSONEachRow" }),
        (error: Error & { code?: string }) => {
          assert.equal(error.code, "62");
          assert.match(error.message, /Syntax error/);
          return true;
        },
      );
    } finally {
      await client.close();
    }
  },
);

type Event = { seq: number };

/** Offsets and payloads one consumer run saw, keyed by "partition:offset". */
interface Consumed {
  records: Map<string, number>;
  firstOffset: Map<number, bigint>;
}

/**
 * Joins the group, reads until `count` distinct records were seen (Kafka delivers at least
 * once, so a record may come twice), committing each, then leaves the group.
 */
async function consumeDistinct(topic: string, groupId: string, count: number): Promise<Consumed> {
  const consumer = new kafka.Consumer({
    clientId: "heddle-smoke",
    groupId,
    bootstrapBrokers: serviceConfig.kafka.brokers,
    deserializers: {
      key: kafka.stringDeserializer,
      value: kafka.jsonDeserializer<Event>,
      headerKey: kafka.stringDeserializer,
      headerValue: kafka.stringDeserializer,
    },
  });
  const seen: Consumed = { records: new Map(), firstOffset: new Map() };
  const stream = await consumer.consume({
    topics: [topic],
    mode: "committed",
    fallbackMode: "earliest",
    autocommit: false,
  });
  try {
    for await (
      const message of stream as AsyncIterable<kafka.Message<string, Event, string, string>>
    ) {
      if (!seen.firstOffset.has(message.partition)) {
        seen.firstOffset.set(message.partition, message.offset);
      }
      seen.records.set(`${message.partition}:${message.offset}`, message.value.seq);
      await message.commit();
      if (seen.records.size >= count) break;
    }
  } finally {
    await stream.close();
    await consumer.close();
  }
  return seen;
}

serviceTest(
  "kafka consumers in a group resume from the committed offset after a restart",
  ["kafka"],
  async () => {
    const topic = `smoke-${suffix()}`;
    const groupId = `smoke-${suffix()}`;
    const total = 1000;
    const admin = new kafka.Admin({
      clientId: "heddle-smoke",
      bootstrapBrokers: serviceConfig.kafka.brokers,
    });
    await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 });
    await admin.close();

    const producer = new kafka.Producer({
      clientId: "heddle-smoke",
      bootstrapBrokers: serviceConfig.kafka.brokers,
      // A send retried while a fresh broker elects leaders must not duplicate records: the
      // assertions below count offsets and values one to one.
      idempotent: true,
      acks: -1,
      serializers: {
        key: kafka.stringSerializer,
        value: kafka.jsonSerializer<Event>,
        headerKey: kafka.stringSerializer,
        headerValue: kafka.stringSerializer,
      },
    });
    try {
      const messages = Array.from(
        { length: total },
        (_, seq) => ({ topic, key: `k${seq}`, value: { seq } }),
      );
      for (let start = 0; start < total; start += 100) {
        await producer.send({ messages: messages.slice(start, start + 100) });
      }
    } finally {
      await producer.close();
    }

    const first = await consumeDistinct(topic, groupId, 600);
    const committed = new Map<number, bigint>();
    for (const key of first.records.keys()) {
      const [partition, offset] = key.split(":");
      const next = BigInt(offset) + 1n;
      if (next > (committed.get(Number(partition)) ?? 0n)) committed.set(Number(partition), next);
    }
    const second = await consumeDistinct(topic, groupId, total - first.records.size);

    for (const [partition, offset] of second.firstOffset) {
      assert.equal(
        offset,
        committed.get(partition) ?? 0n,
        `partition ${partition} resumed elsewhere`,
      );
    }
    const seqs = new Set([...first.records.values(), ...second.records.values()]);
    assert.equal(seqs.size, total);
    assert.equal(Math.max(...seqs), total - 1);
  },
);
