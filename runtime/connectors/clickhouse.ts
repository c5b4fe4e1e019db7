/**
 * `fhub/clickhouse`: `query {query}` as a batched lookup over the official
 * `@clickhouse/client` (HTTP). Parameters are ClickHouse's typed query parameters
 * (`{user_id:Array(Int64)}`, which the optimiser writes for a join; a remaining `@name` is
 * turned into one, typed from the batch's column), bound to the batch's distinct values, so
 * a join costs one query per micro-batch. It must never splice a value into SQL text, and
 * never let the password reach an error message.
 */
import { type ClickHouseClient, createClient } from "@clickhouse/client";
import { type DataType, type Table, Type } from "apache-arrow";
import type { ArrowType } from "../../compiler/modules/mod.ts";
import { intOf, remoteError, stringOf } from "./_remote.ts";
import {
  arrayParam,
  BOOL,
  type CountingLookup,
  FLOAT64,
  INT64,
  replaceParams,
  resultTable,
  UTF8,
} from "./_sql.ts";
import {
  type ConnectorContext,
  ConnectorError,
  type ConnectorErrorCode,
  type ConnectorFactory,
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

class ClickHouseLookup implements CountingLookup {
  #queries = 0;
  #client: ClickHouseClient;
  #query: string;
  #where: string;
  #secrets: (string | undefined)[];

  constructor(ctx: ConnectorContext) {
    const query = stringOf(ctx.config, "query");
    if (!query) throw new ConnectorError("config", "`query` must be a non-empty string");
    this.#query = query;
    const resource = ctx.resources.connection ?? {};
    const host = stringOf(resource, "host");
    if (!host) throw new ConnectorError("config", "the ClickHouse connection needs a `host`");
    const port = intOf(resource, "port", 8123);
    const password = stringOf(resource, "password");
    this.#secrets = [password];
    this.#where = `clickhouse ${host}:${port}`;
    this.#client = createClient({
      url: `http://${host}:${port}`,
      username: stringOf(resource, "user", "default"),
      password: password ?? "",
      database: stringOf(resource, "database", "default"),
      request_timeout: 30_000,
    });
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
        // 64-bit integers as strings, so that none loses precision on the way to int64.
        clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
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

/** `clickhouse.query <connection> {query}`: one typed-parameter query per micro-batch. */
export const clickhouseQuery: ConnectorFactory = {
  role: "lookup",
  open(ctx) {
    return Promise.resolve(new ClickHouseLookup(ctx));
  },
};
