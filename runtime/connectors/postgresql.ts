/**
 * `fhub/postgresql`: `query {query}` as a batched lookup over npm `pg`. `@name` parameters
 * are sent as bound parameters (`$1`, ...), each bound to the array of the batch's distinct
 * values of column `name`, so a join runs one `WHERE id = ANY(@user_id)` query per
 * micro-batch, never one per row. A query without parameters may also start a pipeline: it
 * then streams its result through a server-side cursor. It must never splice a value into
 * SQL text, and never let the password reach an error message (pg's errors can carry
 * connection strings).
 */
import pg from "pg";
import type { Schema, Table } from "apache-arrow";
import type { ArrowType } from "../../compiler/modules/mod.ts";
import { intOf, remoteError, stringOf } from "./_remote.ts";
import {
  arrayParam,
  BOOL,
  type CountingLookup,
  FLOAT64,
  INT64,
  NO_KEYS,
  paramSites,
  queryOf,
  replaceParams,
  resultTable,
  sourceQueryOf,
  UTF8,
} from "./_sql.ts";
import {
  type ConnectorContext,
  ConnectorError,
  type ConnectorErrorCode,
  type ConnectorFactory,
  type Source,
  type SourceBatch,
} from "./_types.ts";

/**
 * Arrow types of the PostgreSQL type OIDs a lookup commonly returns; others travel as text.
 * Introspection (catalog.ts) reads the same map, so a schema snapshot never promises a type
 * the rows will not have (numeric and float4 arrive as float64, timestamps in ms).
 */
export const PG_TYPES: Record<number, ArrowType> = {
  16: BOOL,
  20: INT64,
  21: { kind: "primitive", name: "int16" },
  23: { kind: "primitive", name: "int32" },
  700: FLOAT64,
  701: FLOAT64,
  1700: FLOAT64,
  1082: { kind: "primitive", name: "date32" },
  1114: { kind: "timestamp", unit: "ms", tz: null },
  1184: { kind: "timestamp", unit: "ms", tz: "UTC" },
};

function columnsOf(fields: { name: string; dataTypeID: number }[]) {
  return fields.map((f) => ({ name: f.name, type: PG_TYPES[f.dataTypeID] ?? UTF8 }));
}

/** Retrying helps when the server is away or busy; not when the SQL or the login is wrong. */
function codeOf(error: unknown): ConnectorErrorCode {
  const sqlstate = (error as { code?: unknown })?.code;
  if (typeof sqlstate !== "string" || !/^[0-9A-Z]{5}$/.test(sqlstate)) return "unavailable";
  const cls = sqlstate.slice(0, 2);
  if (cls === "22" || cls === "23") return "data";
  if (cls === "42" || cls === "28" || cls === "3D") return "config";
  return "unavailable";
}

/** How to reach the step's server, where it is (for messages) and what to redact. */
function connectionOf(ctx: ConnectorContext) {
  const resource = ctx.resources.connection ?? {};
  const host = stringOf(resource, "host");
  if (!host) throw new ConnectorError("config", "the PostgreSQL connection needs a `host`");
  const port = intOf(resource, "port", 5432);
  const database = stringOf(resource, "database");
  const password = stringOf(resource, "password");
  return {
    options: { host, port, database, user: stringOf(resource, "user"), password },
    where: `postgresql ${host}:${port}${database ? `/${database}` : ""}`,
    secrets: [password],
  };
}

class PgLookup implements CountingLookup {
  #queries = 0;
  #pool: InstanceType<typeof pg.Pool>;
  #text: string;
  #names: string[];
  #where: string;
  #secrets: (string | undefined)[];

  constructor(ctx: ConnectorContext) {
    const query = queryOf(ctx);
    const { options, where, secrets } = connectionOf(ctx);
    this.#secrets = secrets;
    this.#where = where;
    this.#names = [...new Set(paramSites(query).map((s) => s.name))];
    this.#text = replaceParams(query, (name) => `$${this.#names.indexOf(name) + 1}`);
    this.#pool = new pg.Pool({
      ...options,
      max: 4,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 10_000,
    });
    // An idle connection that the server drops emits `error` on the pool; without a listener
    // that would crash the process. The next query reconnects or fails as a ConnectorError.
    this.#pool.on("error", () => {});
  }

  /** Queries sent so far: one per micro-batch when batching works. */
  get queries(): number {
    return this.#queries;
  }

  async lookup(keys: Table): Promise<Table> {
    // Bigints go as text: pg serialises arrays itself and the server casts to the column type.
    const values = this.#names.map((n) =>
      arrayParam(keys, n).map((v) => typeof v === "bigint" ? v.toString() : v)
    );
    this.#queries++;
    let result: { fields: { name: string; dataTypeID: number }[]; rows: Record<string, unknown>[] };
    try {
      result = await this.#pool.query({ text: this.#text, values });
    } catch (error) {
      throw remoteError(codeOf(error), this.#where, error, this.#secrets);
    }
    return resultTable(columnsOf(result.fields), result.rows, keys);
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => {});
  }
}

type FetchResult = {
  fields: { name: string; dataTypeID: number }[];
  rows: Record<string, unknown>[];
};

/**
 * A query without `@params` that starts a pipeline: one server-side cursor in a read-only
 * transaction, fetched `batchRows` rows at a time, so a result of any size streams in
 * bounded memory. It has no position to resume from: a retried run reads the result again.
 */
class PgQuerySource implements Source {
  readonly bounded = true;
  readonly schema: Schema;
  #client: InstanceType<typeof pg.Client>;
  #first: FetchResult;
  #fetch: string;
  #where: string;
  #secrets: (string | undefined)[];

  private constructor(
    client: InstanceType<typeof pg.Client>,
    first: FetchResult,
    batchRows: number,
    where: string,
    secrets: (string | undefined)[],
  ) {
    this.#client = client;
    this.#first = first;
    this.#fetch = `FETCH FORWARD ${Math.max(1, Math.floor(batchRows))} FROM heddle_source`;
    this.#where = where;
    this.#secrets = secrets;
    this.schema = resultTable(columnsOf(first.fields), [], NO_KEYS).schema;
  }

  static async open(ctx: ConnectorContext): Promise<PgQuerySource> {
    const query = sourceQueryOf(ctx);
    const { options, where, secrets } = connectionOf(ctx);
    const client = new pg.Client({ ...options, connectionTimeoutMillis: 5_000 });
    client.on("error", () => {});
    try {
      await client.connect();
      // A cursor lives inside a transaction; a source only ever reads.
      await client.query("BEGIN READ ONLY");
      await client.query(
        `DECLARE heddle_source NO SCROLL CURSOR FOR ${query.trim().replace(/;+\s*$/, "")}\n`,
      );
      const first = await client.query(`FETCH FORWARD ${ctx.batchRows} FROM heddle_source`);
      return new PgQuerySource(client, first, ctx.batchRows, where, secrets);
    } catch (error) {
      await client.end().catch(() => {});
      throw remoteError(codeOf(error), where, error, secrets);
    }
  }

  async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
    let delivered = 0;
    let result: FetchResult | null = this.#first;
    while (result && result.rows.length > 0 && !signal.aborted) {
      delivered += result.rows.length;
      const table = resultTable(columnsOf(result.fields), result.rows, NO_KEYS);
      yield { table, errors: [], position: delivered };
      if (signal.aborted) return;
      try {
        result = await this.#client.query(this.#fetch);
      } catch (error) {
        throw remoteError(codeOf(error), this.#where, error, this.#secrets);
      }
    }
  }

  commit(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    await this.#client.query("ROLLBACK").catch(() => {});
    await this.#client.end().catch(() => {});
  }
}

/**
 * `postgresql.query <connection> {query}`: one bound-parameter query per micro-batch, or,
 * without `@params` at the start of a pipeline, a source streaming the result.
 */
export const postgresqlQuery: ConnectorFactory = {
  role: "lookup",
  open(ctx) {
    return Promise.resolve(new PgLookup(ctx));
  },
  openSource: (ctx) => PgQuerySource.open(ctx),
};
