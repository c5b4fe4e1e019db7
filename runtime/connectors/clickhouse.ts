/**
 * `fhub/clickhouse`: `query {query}` as a batched lookup over the official
 * `@clickhouse/client` (HTTP). Parameters are ClickHouse's typed query parameters
 * (`{user_id:Array(Int64)}`, which the optimiser writes for a join; a remaining `@name` is
 * turned into one, typed from the batch's column), bound to the batch's distinct values, so
 * a join costs one query per micro-batch. A query without parameters may also start a
 * pipeline: it then streams its result. It must never splice a value into SQL text, and
 * never let the password reach an error message.
 */
import { type ClickHouseClient, createClient, type Row } from "@clickhouse/client";
import { type DataType, type Schema, type Table, Type } from "apache-arrow";
import type { ArrowType } from "../../compiler/modules/mod.ts";
import { intOf, remoteError, stringOf } from "./_remote.ts";
import {
  arrayParam,
  BOOL,
  type CountingLookup,
  FLOAT64,
  INT64,
  NO_KEYS,
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

/** The Arrow type of a ClickHouse column type; text when there is no closer match. */
export function clickhouseType(name: string): ArrowType {
  const inner = name.replace(/^(Nullable|LowCardinality)\((.*)\)$/, "$2").replace(
    /^(Nullable|LowCardinality)\((.*)\)$/,
    "$2",
  );
  if (/^U?Int(8|16|32|64|128|256)$/.test(inner)) return INT64;
  if (/^(Float(32|64)|Decimal)/.test(inner)) return FLOAT64;
  if (inner === "Bool") return BOOL;
  if (/^Date(32)?$/.test(inner)) return { kind: "primitive", name: "date32" };
  if (/^DateTime/.test(inner)) return { kind: "timestamp", unit: "ms", tz: null };
  return UTF8;
}

/** The ClickHouse element type for an array parameter built from an Arrow column. */
function paramType(type: DataType | undefined): string {
  switch (type?.typeId) {
    case Type.Int:
      return "Int64";
    case Type.Float:
      return "Float64";
    case Type.Bool:
      return "Bool";
    default:
      return "String";
  }
}

/** ClickHouse error codes of a wrong query or login (retrying cannot help). */
const CONFIG_CODES = new Set(["47", "60", "62", "81", "192", "516"]);

function codeOf(error: unknown): ConnectorErrorCode {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && CONFIG_CODES.has(code) ? "config" : "unavailable";
}

/** A client for the step's server, where it is (for messages) and what to redact. */
function connectionOf(ctx: ConnectorContext) {
  const resource = ctx.resources.connection ?? {};
  const host = stringOf(resource, "host");
  if (!host) throw new ConnectorError("config", "the ClickHouse connection needs a `host`");
  const port = intOf(resource, "port", 8123);
  const password = stringOf(resource, "password");
  const client = createClient({
    url: `http://${host}:${port}`,
    username: stringOf(resource, "user", "default"),
    password: password ?? "",
    database: stringOf(resource, "database", "default"),
    request_timeout: 30_000,
  });
  return { client, where: `clickhouse ${host}:${port}`, secrets: [password] };
}

/** 64-bit integers as strings, so that none loses precision on the way to int64. */
const EXACT_INTEGERS = { output_format_json_quote_64bit_integers: 1 } as const;

class ClickHouseLookup implements CountingLookup {
  #queries = 0;
  #client: ClickHouseClient;
  #query: string;
  #where: string;
  #secrets: (string | undefined)[];

  constructor(ctx: ConnectorContext) {
    this.#query = queryOf(ctx);
    const { client, where, secrets } = connectionOf(ctx);
    this.#client = client;
    this.#where = where;
    this.#secrets = secrets;
  }

  /** Queries sent so far: one per micro-batch when batching works. */
  get queries(): number {
    return this.#queries;
  }

  async lookup(keys: Table, signal: AbortSignal): Promise<Table> {
    const params: Record<string, unknown[]> = {};
    const query = replaceParams(this.#query, (name) => {
      const field = keys.schema.fields.find((f) => f.name === name);
      return `{${name}:Array(${paramType(field?.type)})}`;
    });
    for (const [, name] of query.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*):/g)) {
      params[name] = arrayParam(keys, name);
    }
    this.#queries++;
    try {
      const result = await this.#client.query({
        query,
        format: "JSON",
        query_params: params,
        abort_signal: signal,
        clickhouse_settings: EXACT_INTEGERS,
      });
      const body = await result.json<Record<string, unknown>>();
      const columns = (body.meta ?? []).map((m) => ({
        name: m.name,
        type: clickhouseType(m.type),
      }));
      return resultTable(columns, body.data, keys);
    } catch (error) {
      if (error instanceof ConnectorError) throw error;
      throw remoteError(codeOf(error), this.#where, error, this.#secrets);
    }
  }

  async close(): Promise<void> {
    await this.#client.close().catch(() => {});
  }
}

/**
 * A query without `@params` that starts a pipeline: the result is read as a stream of
 * JSON rows (names and types first) and cut into batches of `batchRows`, so a result of any
 * size streams in bounded memory. It has no position to resume from: a retried run reads
 * the result again.
 */
class ClickHouseQuerySource implements Source {
  readonly bounded = true;
  readonly schema: Schema;
  #client: ClickHouseClient;
  #rows: AsyncIterator<Row[]>;
  #pending: unknown[][];
  #names: string[];
  #columns: { name: string; type: ArrowType }[];
  #batchRows: number;
  #where: string;
  #secrets: (string | undefined)[];

  private constructor(
    ctx: ConnectorContext,
    opened: ReturnType<typeof connectionOf>,
    rows: AsyncIterator<Row[]>,
    header: unknown[][],
  ) {
    this.#client = opened.client;
    this.#where = opened.where;
    this.#secrets = opened.secrets;
    this.#rows = rows;
    const [names, types] = header;
    this.#names = names as string[];
    this.#columns = this.#names.map((name, i) => ({
      name,
      type: clickhouseType(String(types[i])),
    }));
    this.#pending = header.slice(2);
    this.#batchRows = Math.max(1, Math.floor(ctx.batchRows));
    this.schema = resultTable(this.#columns, [], NO_KEYS).schema;
  }

  static async open(ctx: ConnectorContext): Promise<ClickHouseQuerySource> {
    const query = sourceQueryOf(ctx);
    const opened = connectionOf(ctx);
    try {
      const result = await opened.client.query({
        query,
        format: "JSONCompactEachRowWithNamesAndTypes",
        clickhouse_settings: EXACT_INTEGERS,
      });
      const rows = (result.stream() as AsyncIterable<Row[]>)[Symbol.asyncIterator]();
      // The first two rows are the column names and their ClickHouse types.
      const header: unknown[][] = [];
      while (header.length < 2) {
        const next = await rows.next();
        if (next.done) throw new ConnectorError("data", "the result has no column header");
        header.push(...next.value.map((r) => r.json<unknown[]>()));
      }
      return new ClickHouseQuerySource(ctx, opened, rows, header);
    } catch (error) {
      await opened.client.close().catch(() => {});
      if (error instanceof ConnectorError) throw error;
      throw remoteError(codeOf(error), opened.where, error, opened.secrets);
    }
  }

  #batch(values: unknown[][]): Table {
    const rows = values.map((v) => Object.fromEntries(this.#names.map((n, i) => [n, v[i]])));
    return resultTable(this.#columns, rows, NO_KEYS);
  }

  async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
    let delivered = 0;
    let ended = false;
    while (!signal.aborted) {
      while (!ended && this.#pending.length < this.#batchRows) {
        let next;
        try {
          next = await this.#rows.next();
        } catch (error) {
          throw remoteError(codeOf(error), this.#where, error, this.#secrets);
        }
        if (next.done) ended = true;
        else this.#pending.push(...next.value.map((r) => r.json<unknown[]>()));
      }
      if (this.#pending.length === 0) return;
      const values = this.#pending.splice(0, this.#batchRows);
      delivered += values.length;
      yield { table: this.#batch(values), errors: [], position: delivered };
    }
  }

  commit(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    await this.#rows.return?.().catch(() => {});
    await this.#client.close().catch(() => {});
  }
}

/**
 * `clickhouse.query <connection> {query}`: one typed-parameter query per micro-batch, or,
 * without `@params` at the start of a pipeline, a source streaming the result.
 */
export const clickhouseQuery: ConnectorFactory = {
  role: "lookup",
  open(ctx) {
    return Promise.resolve(new ClickHouseLookup(ctx));
  },
  openSource: (ctx) => ClickHouseQuerySource.open(ctx),
};
