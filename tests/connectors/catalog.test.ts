/**
 * `databaseCatalog` against the real PostgreSQL and ClickHouse services: the column and
 * parameter types it reports for queries over tables of many column types, that it never
 * runs the query, and that its failures name the server but never the password.
 */
import assert from "node:assert/strict";
import pg from "pg";
import type { CatalogAnswer } from "../../compiler/mod.ts";
import { ConnectorError, databaseCatalog } from "../../runtime/connectors/mod.ts";
import { serviceConfig, serviceTest } from "../services/mod.ts";
import { withClickhouse, withPostgres } from "./_databases.ts";

const PG_TABLE = `CREATE TABLE wide (
  id bigint PRIMARY KEY, small int2, medium int4, real4 float4, real8 float8,
  amount numeric(12, 2), name text, code varchar(8), flag bool, day date,
  at timestamp, at_tz timestamptz, doc jsonb, uid uuid)`;

const CH_TABLE = `CREATE TABLE wide (
  id Int64, small Int16, count UInt32, ratio Float32, score Float64, amount Decimal(12, 2),
  name String, tag LowCardinality(String), maybe Nullable(Int32), flag Bool, day Date,
  at DateTime, at64 DateTime64(3)) ENGINE = Memory`;

function pgConfig(database: string, overrides: Record<string, unknown> = {}) {
  const { host, port, user, password } = serviceConfig.postgres;
  return { host, port, user, password, database, ...overrides };
}

function chConfig(database: string, overrides: Record<string, unknown> = {}) {
  const { host, port } = serviceConfig.clickhouse;
  return { host, port, database, ...overrides };
}

/** The answer as `name: type` lists, the form the expectations are written in. */
function shape(answer: CatalogAnswer): { columns: string[]; params: string[] } {
  const text = (cols: CatalogAnswer["columns"]) => cols.map((c) => `${c.name}: ${c.type}`);
  return { columns: text(answer.columns), params: text(answer.params) };
}

async function describe(
  module: string,
  config: Record<string, unknown>,
  query: string,
  params: string[] = [],
): Promise<CatalogAnswer> {
  return await databaseCatalog({ resource: "db", module, config, query, params });
}

async function failure(promise: Promise<unknown>): Promise<ConnectorError> {
  const error = await promise.then(() => null, (e) => e);
  assert.ok(error instanceof ConnectorError, `expected a ConnectorError, got ${error}`);
  return error;
}

serviceTest("the PostgreSQL catalog types every column and parameter", ["postgres"], async () => {
  await withPostgres([PG_TABLE], async (database) => {
    const answer = await describe(
      "fhub/postgresql",
      pgConfig(database),
      "SELECT id AS user_id, small, medium, real4, real8, amount, name, code, flag, day, at, " +
        "at_tz, doc, uid FROM wide WHERE id = @user_id AND name = @name AND day > @since;",
      ["user_id", "name", "since"],
    );
    assert.deepEqual(shape(answer), {
      columns: [
        "user_id: int64",
        "small: int16",
        "medium: int32",
        "real4: float64",
        "real8: float64",
        "amount: float64",
        "name: utf8",
        "code: utf8",
        "flag: bool",
        "day: date32",
        "at: timestamp[ms]",
        "at_tz: timestamp[ms, UTC]",
        "doc: utf8",
        "uid: utf8",
      ],
      params: ["user_id: int64", "name: utf8", "since: date32"],
    });
  });
});

serviceTest("the PostgreSQL catalog never runs the query", ["postgres"], async () => {
  await withPostgres(["CREATE SEQUENCE ticks"], async (database) => {
    const answer = await describe(
      "fhub/postgresql",
      pgConfig(database),
      "SELECT nextval('ticks') AS tick, @label::text AS label, @label::text AS again",
      ["label"],
    );
    assert.deepEqual(shape(answer), {
      columns: ["tick: int64", "label: utf8", "again: utf8"],
      params: ["label: utf8"],
    });
    const { host, port, user, password } = serviceConfig.postgres;
    const client = new pg.Client({ host, port, user, password, database });
    await client.connect();
    const { rows } = await client.query("SELECT is_called FROM ticks");
    await client.end();
    assert.equal(rows[0].is_called, false, "nextval was called: the query ran");
  });
});

serviceTest("a PostgreSQL query on a missing table fails with the server's message", [
  "postgres",
], async () => {
  await withPostgres([], async (database) => {
    const error = await failure(
      describe("fhub/postgresql", pgConfig(database), "SELECT id FROM no_such_table"),
    );
    assert.match(error.message, /relation "no_such_table" does not exist/);
    assert.match(error.message, new RegExp(`:${serviceConfig.postgres.port}/`));
  });
});

serviceTest("a wrong PostgreSQL password is refused without echoing it", ["postgres"], async () => {
  const secret = "Wr0ng-Pa55-catalog-7fq";
  Deno.env.set("HEDDLE_TEST_CATALOG_PW", secret);
  try {
    const password = { env: "HEDDLE_TEST_CATALOG_PW", secret: true, default: null };
    const error = await failure(
      describe("fhub/postgresql", pgConfig("heddle", { password }), "SELECT 1 AS one"),
    );
    assert.match(error.message, /password authentication failed/);
    assert.ok(!error.message.includes(secret), error.message);
    assert.ok(!String(error.stack).includes(secret));
  } finally {
    Deno.env.delete("HEDDLE_TEST_CATALOG_PW");
  }
});

Deno.test("an unreachable database is an error naming its host and port", async () => {
  for (const module of ["fhub/postgresql", "fhub/clickhouse"]) {
    const error = await failure(
      describe(module, { host: "127.0.0.1", port: 1 }, "SELECT 1 AS one"),
    );
    assert.match(error.message, /127\.0\.0\.1:1\b/, module);
  }
});

serviceTest("the ClickHouse catalog types every column and parameter", [
  "clickhouse",
], async () => {
  await withClickhouse([CH_TABLE], async (database) => {
    const answer = await describe(
      "fhub/clickhouse",
      chConfig(database),
      "SELECT id AS user_id, small, count, ratio, score, amount, name, tag, maybe, flag, day, " +
        "at, at64 FROM wide WHERE id = @user_id AND @tag = tag AND at >= @since",
      ["user_id", "tag", "since"],
    );
    assert.deepEqual(shape(answer), {
      columns: [
        "user_id: int64",
        "small: int64",
        "count: int64",
        "ratio: float64",
        "score: float64",
        "amount: float64",
        "name: utf8",
        "tag: utf8",
        "maybe: int64",
        "flag: bool",
        "day: date32",
        "at: timestamp[ms]",
        "at64: timestamp[ms]",
      ],
      params: ["user_id: int64", "tag: utf8", "since: timestamp[ms]"],
    });
  });
});

serviceTest("a ClickHouse query on a missing table fails with the server's message", [
  "clickhouse",
], async () => {
  await withClickhouse([], async (database) => {
    const error = await failure(
      describe("fhub/clickhouse", chConfig(database), "SELECT id FROM no_such_table"),
    );
    assert.match(error.message, /no_such_table/);
    assert.match(error.message, new RegExp(`:${serviceConfig.clickhouse.port}/`));
  });
});

serviceTest("a ClickHouse parameter compared with nothing is explained", [
  "clickhouse",
], async () => {
  await withClickhouse([CH_TABLE], async (database) => {
    const error = await failure(
      describe("fhub/clickhouse", chConfig(database), "SELECT id FROM wide LIMIT @n", ["n"]),
    );
    assert.match(error.message, /cannot tell the type of `@n`/);
  });
});
