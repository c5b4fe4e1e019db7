/**
 * The `fhub/kafka`, `fhub/postgresql`, `fhub/clickhouse` and `fhub/llm` connectors against
 * the real services and the test LLM server: JSON decoded into Arrow by row type, malformed
 * records as row errors, offsets committed only through `commit`, one bound-parameter query
 * per micro-batch, retries on 429, timeouts, and no secret in an error message.
 */
import assert from "node:assert/strict";
import { Field, Float64 as Float64Type, Int64, Schema, Type, Utf8 } from "apache-arrow";
import { serviceTest } from "../services/mod.ts";
import { expectedCompletion, startLlmServer } from "../llm_server.ts";
import {
  builtinConnectors,
  ConnectorError,
  type Lookup,
  rowsOf,
  type Sink,
  type Source,
  type SourceBatch,
  tableFromRows,
  type Transform,
} from "../../runtime/connectors/mod.ts";
import {
  chClient,
  context,
  createTopics,
  endOffsets,
  float64,
  fresh,
  int64,
  pgClient,
  produce,
  readTopic,
  resources,
  utf8,
} from "./_fixtures.ts";

const connectors = builtinConnectors();

async function open<T>(name: string, ctx: ReturnType<typeof context>): Promise<T> {
  const f = connectors.get(name);
  assert.ok(f, `${name} is registered`);
  return await f.open(ctx) as T;
}

const txSchema = [
  { name: "user_id", type: int64, nullable: false },
  { name: "amount", type: float64, nullable: false },
  { name: "note", type: utf8, nullable: true },
];

/** Takes batches until `rows + errors` reach `want`. */
async function take(source: Source, want: number): Promise<SourceBatch[]> {
  const controller = new AbortController();
  const out: SourceBatch[] = [];
  let seen = 0;
  const timer = setTimeout(() => controller.abort(), 30_000);
  for await (const b of source.batches(controller.signal)) {
    out.push(b);
    seen += b.table.numRows + b.errors.length;
    if (seen >= want) break;
  }
  clearTimeout(timer);
  return out;
}

function keys(values: bigint[]) {
  return tableFromRows(
    new Schema([new Field("user_id", new Int64(), true)]),
    values.map((v) => ({ user_id: v })),
  );
}

serviceTest(
  "kafka.consume decodes JSON into Arrow by row type and turns a malformed record into a row error",
  ["kafka"],
  async () => {
    const topic = fresh("consume");
    await createTopics([topic], 1);
    await produce(topic, [
      { user_id: 1, amount: 10.5, note: "a" },
      { user_id: "2", amount: 20 },
      "{not json",
      { user_id: 3 },
      { user_id: 4, amount: 40, extra: true },
    ]);
    const ctx = context({ topic }, { broker: resources.kafka }, txSchema);
    const source = await open<Source>("fhub/kafka.consume", ctx);
    try {
      assert.equal(source.bounded, false);
      const batches = await take(source, 5);
      const rows = batches.flatMap((b) => rowsOf(b.table));
      assert.deepEqual(rows, [
        { user_id: 1, amount: 10.5, note: "a" },
        { user_id: 2, amount: 20, note: null },
        { user_id: 4, amount: 40, note: null },
      ]);
      const table = batches[0].table;
      assert.equal(table.schema.fields[0].type.typeId, Type.Int);
      assert.equal(table.schema.fields[1].type.typeId, Type.Float);
      const errors = batches.flatMap((b) => b.errors).map((e) => e.message);
      assert.equal(errors.length, 2);
      assert.match(errors[0], /offset 2: invalid JSON/);
      assert.match(errors[1], /offset 3: column `amount`: missing value/);
      assert.deepEqual(batches.at(-1)!.position, { "0": "5" });
    } finally {
      await source.close();
    }
  },
);

serviceTest(
  "kafka.consume commits offsets only in commit(), so a new consumer resumes after them",
  ["kafka"],
  async () => {
    const topic = fresh("commit");
    const group = fresh("group");
    await createTopics([topic], 1);
    await produce(topic, Array.from({ length: 10 }, (_, i) => ({ user_id: i, amount: i })));
    const ctx = () => context({ topic, group }, { broker: resources.kafka }, txSchema, 4);
    const first = await open<Source>("fhub/kafka.consume", ctx());
    const batches = await take(first, 10);
    // Only the first batch is acknowledged; the rest must be read again.
    await first.commit(batches[0].position);
    await first.close();
    const committed = rowsOf(batches[0].table).length;
    const second = await open<Source>("fhub/kafka.consume", ctx());
    try {
      const again = (await take(second, 10 - committed)).flatMap((b) => rowsOf(b.table));
      assert.deepEqual(
        again.map((r) => r.user_id),
        Array.from({ length: 10 - committed }, (_, i) => i + committed),
      );
    } finally {
      await second.close();
    }
  },
);

serviceTest("kafka.produce writes each row as a JSON record with its key", ["kafka"], async () => {
  const topic = fresh("produce");
  await createTopics([topic], 1);
  const from = await endOffsets(topic);
  const sink = await open<Sink>(
    "fhub/kafka.produce",
    context({ topic, key: "user_id" }, { broker: resources.kafka }),
  );
  const rows = [{ user_id: 7n, amount: 1.5 }, { user_id: 8n, amount: 2.5 }];
  const schema = new Schema([
    new Field("user_id", new Int64(), false),
    new Field("amount", new Float64Type(), false),
  ]);
  await sink.write(tableFromRows(schema, rows), new AbortController().signal);
  await sink.flush();
  const read = await readTopic(topic, from, (r) => r.length >= 2);
  assert.deepEqual(read.map((r) => JSON.parse(r.value)), [{ user_id: 7, amount: 1.5 }, {
    user_id: 8,
    amount: 2.5,
  }]);
});

serviceTest(
  "kafka.produce creates a topic that does not exist yet, and an invalid topic fails at open with the broker's reason",
  ["kafka"],
  async () => {
    // Before: a send to a topic the client did not know waited for it until the step's
    // 30 s timeout, whether or not the broker would create it.
    const topic = fresh("produce-new");
    const sink = await open<Sink>(
      "fhub/kafka.produce",
      context({ topic }, { broker: resources.kafka }),
    );
    const from = await endOffsets(topic); // the topic exists once the sink opened
    const schema = new Schema([new Field("id", new Int64(), false)]);
    await sink.write(tableFromRows(schema, [{ id: 1n }]), new AbortController().signal);
    await sink.flush();
    const read = await readTopic(topic, from, (r) => r.length >= 1);
    assert.deepEqual(read.map((r) => JSON.parse(r.value)), [{ id: 1 }]);

    await assert.rejects(
      open<Sink>(
        "fhub/kafka.produce",
        context({ topic: "bad topic!" }, { broker: resources.kafka }),
      ),
      (e: unknown) =>
        e instanceof ConnectorError && e.code === "unavailable" &&
        /cannot produce to `bad topic!` on .*invalid topic/.test(e.message),
    );
  },
);

serviceTest(
  "postgresql.query runs one query per batch with the keys bound as one array parameter",
  ["postgres"],
  async () => {
    const table = fresh("users");
    const client = pgClient();
    await client.connect();
    try {
      await client.query(`CREATE TABLE ${table} (id int4 PRIMARY KEY, country text)`);
      await client.query(`INSERT INTO ${table} VALUES (1, 'FR'), (2, 'DE'), (3, 'it''s')`);
      const query =
        `SELECT id AS user_id, country FROM ${table} WHERE id = ANY(@user_id) -- @ignored`;
      const lookup = await open<Lookup & { queries: number }>(
        "fhub/postgresql.query",
        context({ query, param: "user_id" }, { connection: resources.postgres }),
      );
      try {
        const signal = new AbortController().signal;
        const found = await lookup.lookup(keys([1n, 3n, 99n]), signal);
        assert.equal(lookup.queries, 1);
        assert.equal(found.schema.fields[0].type.typeId, Type.Int);
        assert.equal((found.schema.fields[0].type as Int64).bitWidth, 64);
        const rows = rowsOf(found).sort((a, b) => Number(a.user_id) - Number(b.user_id));
        assert.deepEqual(rows, [{ user_id: 1, country: "FR" }, { user_id: 3, country: "it's" }]);
        await lookup.lookup(keys([2n]), signal);
        assert.equal(lookup.queries, 2);
        // A quote in a key would break SQL text it was spliced into; bound, it just matches.
        const byCountry = await open<Lookup & { queries: number }>(
          "fhub/postgresql.query",
          context({ query: `SELECT id, country FROM ${table} WHERE country = ANY(@country)` }, {
            connection: resources.postgres,
          }),
        );
        try {
          const countries = tableFromRows(new Schema([new Field("country", new Utf8(), true)]), [
            { country: "it's" },
            { country: "x' OR '1'='1" },
          ]);
          assert.deepEqual(rowsOf(await byCountry.lookup(countries, signal)), [
            { id: 3, country: "it's" },
          ]);
          assert.equal(byCountry.queries, 1);
        } finally {
          await byCountry.close();
        }
      } finally {
        await lookup.close();
      }
    } finally {
      await client.query(`DROP TABLE IF EXISTS ${table}`);
      await client.end();
    }
  },
);

serviceTest(
  "postgresql.query reports a wrong password without echoing it",
  ["postgres"],
  async () => {
    const password = "S3cret-" + crypto.randomUUID();
    const lookup = await open<Lookup>(
      "fhub/postgresql.query",
      context({ query: "SELECT 1 AS user_id WHERE 1 = ANY(@user_id)" }, {
        connection: { ...resources.postgres, password },
      }),
    );
    try {
      const error = await lookup.lookup(keys([1n]), new AbortController().signal).then(
        () => null,
        (e) => e,
      );
      assert.ok(error instanceof ConnectorError);
      assert.equal(error.code, "config");
      assert.match(error.message, /password authentication failed/);
      assert.ok(!error.message.includes(password));
      assert.ok(!JSON.stringify(error).includes(password));
    } finally {
      await lookup.close();
    }
  },
);

serviceTest(
  "clickhouse.query binds the keys as a typed array parameter, one query per batch",
  ["clickhouse"],
  async () => {
    const table = fresh("risk");
    const ch = chClient();
    try {
      await ch.command({
        query:
          `CREATE TABLE ${table} (user_id Int64, velocity_score Float64) ENGINE = MergeTree ORDER BY user_id`,
      });
      await ch.insert({
        table,
        values: [{ user_id: 1, velocity_score: 0.5 }, { user_id: 2, velocity_score: 0.25 }, {
          user_id: 9007199254740993n.toString(),
          velocity_score: 1,
        }],
        format: "JSONEachRow",
      });
      for (
        const query of [
          `SELECT user_id, velocity_score FROM ${table} WHERE user_id IN {user_id:Array(Int64)}`,
          `SELECT user_id, velocity_score FROM ${table} WHERE has(@user_id, user_id)`,
        ]
      ) {
        const lookup = await open<Lookup & { queries: number }>(
          "fhub/clickhouse.query",
          context({ query, param: "user_id" }, { connection: resources.clickhouse }),
        );
        try {
          const found = await lookup.lookup(
            keys([2n, 9007199254740993n, 5n]),
            new AbortController().signal,
          );
          assert.equal(lookup.queries, 1);
          const rows = rowsOf(found).sort((a, b) =>
            String(a.user_id).localeCompare(String(b.user_id))
          );
          assert.deepEqual(rows, [{ user_id: 2, velocity_score: 0.25 }, {
            user_id: "9007199254740993",
            velocity_score: 1,
          }]);
        } finally {
          await lookup.close();
        }
      }
    } finally {
      await ch.command({ query: `DROP TABLE IF EXISTS ${table}` });
      await ch.close();
    }
  },
);

function llmContext(baseUrl: string, config: Record<string, unknown> = {}) {
  return context({ system: "Audit it.", ...config }, {
    connection: { base_url: baseUrl, api_key: "sk-test-secret", model: "test-model" },
  });
}

const txTable = () =>
  tableFromRows(
    new Schema([
      new Field("user_id", new Int64(), false),
      new Field("amount", new Float64Type(), false),
    ]),
    [{ user_id: 1n, amount: 12_000 }, { user_id: 2n, amount: 50_000 }, {
      user_id: 3n,
      amount: 70_000,
    }],
  );

Deno.test("llm.prompt appends each row's completion and retries a 429", async () => {
  const server = startLlmServer();
  const transform = await open<Transform>(
    "fhub/llm.prompt",
    llmContext(server.baseUrl, { max_concurrency: 2 }),
  );
  try {
    server.fail(429, 2);
    const out = await transform.apply(txTable(), new AbortController().signal);
    assert.equal(server.requests, 5, "two requests were answered 429 and retried");
    const rows = rowsOf(out);
    assert.deepEqual(rows.map((r) => r.user_id), [1, 2, 3]);
    for (const r of rows) {
      assert.equal(
        r.completion,
        expectedCompletion(JSON.stringify({ user_id: r.user_id, amount: r.amount })),
      );
    }
    assert.equal(out.schema.fields.at(-1)!.name, "completion");
  } finally {
    await transform.close();
    await server.close();
  }
});

Deno.test("llm.prompt retries a 500 and gives up with an unavailable error after its retries", async () => {
  const server = startLlmServer();
  const transform = await open<Transform>(
    "fhub/llm.prompt",
    llmContext(server.baseUrl, { max_retries: 1 }),
  );
  try {
    server.fail(500, 2);
    const one = tableFromRows(txTable().schema, [{ user_id: 1n, amount: 1 }]);
    const error = await transform.apply(one, new AbortController().signal).then(
      () => null,
      (e) => e,
    );
    assert.ok(error instanceof ConnectorError);
    assert.equal(error.code, "unavailable");
    assert.equal(server.requests, 2);
    assert.ok(!error.message.includes("sk-test-secret"));
  } finally {
    await transform.close();
    await server.close();
  }
});

Deno.test("llm.prompt abandons a request that outlives its timeout", async () => {
  const server = startLlmServer();
  const transform = await open<Transform>(
    "fhub/llm.prompt",
    llmContext(server.baseUrl, { timeout: 200, max_retries: 0 }),
  );
  try {
    server.delay(2_000);
    const one = tableFromRows(txTable().schema, [{ user_id: 1n, amount: 1 }]);
    const error = await transform.apply(one, new AbortController().signal).then(
      () => null,
      (e) => e,
    );
    assert.ok(error instanceof ConnectorError);
    assert.equal(error.code, "unavailable");
    assert.match(error.message, /timed out/i);
    assert.equal(server.answered.length, 0);
  } finally {
    await transform.close();
    await server.close();
  }
});
