/**
 * The runtime's side of `heddle check --introspect`: a `Catalog` (see compiler/types) that
 * asks the database itself for the output column types and `@name` parameter types of a
 * query step, so the schema snapshot records what the server says rather than a guess. The
 * compiler cannot import database clients, so it receives this as a callback.
 *
 * It must never run a query for real: PostgreSQL prepares it and reads a `LIMIT 0` wrap
 * inside a read-only transaction that is rolled back; ClickHouse only `DESCRIBE`s it. And it
 * must never let a password reach an error message: failures are `ConnectorError`s built by
 * `remoteError`, which redacts every secret of the resource.
 */
import pg from "pg";
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";
import type { Catalog, CatalogAnswer } from "../../compiler/mod.ts";
import { typeToString } from "../../compiler/modules/mod.ts";
import { intOf, remoteError, stringOf } from "./_remote.ts";
import { paramSites, replaceParams, UTF8 } from "./_sql.ts";
import { clickhouseType } from "./clickhouse.ts";
import { PG_TYPES } from "./postgresql.ts";
import { ConnectorError } from "./_types.ts";

type Request = Parameters<Catalog>[0];

/** The snapshot's text form of a PostgreSQL type OID. */
function postgresqlType(oid: number): string {
  return typeToString(PG_TYPES[oid] ?? UTF8);
}

/** The parameter names in `$n` order: the compiler's list first, any others after it. */
function paramOrder(request: Request): string[] {
  return [...new Set([...request.params, ...paramSites(request.query).map((s) => s.name)])];
}

/** A trailing `;` would end the wrapping statement early; a trailing comment is kept apart. */
function bare(query: string): string {
  return query.trim().replace(/;+\s*$/, "");
}

/** Where a resource lives, for messages: `postgresql 127.0.0.1:5432/heddle`. */
function place(dialect: string, host: string, port: number, database?: string): string {
  return `${dialect} ${host}:${port}${database ? `/${database}` : ""}`;
}

async function describePostgresql(request: Request): Promise<CatalogAnswer> {
  const config = request.config;
  const host = stringOf(config, "host");
  if (!host) throw new ConnectorError("config", "the PostgreSQL connection needs a `host`");
  const port = intOf(config, "port", 5432);
  const database = stringOf(config, "database");
  const password = stringOf(config, "password");
  const where = place("postgresql", host, port, database);
  const names = paramOrder(request);
  const text = replaceParams(bare(request.query), (n) => `$${names.indexOf(n) + 1}`);
  const client = new pg.Client({
    host,
    port,
    database,
    user: stringOf(config, "user"),
    password,
    connectionTimeoutMillis: 5_000,
  });
  // A server that drops the connection emits `error`; without a listener that would crash.
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("BEGIN READ ONLY");
    await client.query(`PREPARE heddle_introspect AS ${text}\n`);
    const prepared = await client.query<{ types: number[] }>(
      "SELECT parameter_types::oid[] AS types FROM pg_prepared_statements " +
        "WHERE name = 'heddle_introspect'",
    );
    const paramTypes = prepared.rows[0]?.types ?? [];
    const described: { fields: { name: string; dataTypeID: number }[] } = await client.query({
      text: `SELECT * FROM (${text}\n) AS heddle_introspect LIMIT 0`,
      values: names.map(() => null),
    });
    return {
      columns: described.fields.map((f) => ({ name: f.name, type: postgresqlType(f.dataTypeID) })),
      params: request.params.map((name) => ({
        name,
        type: postgresqlType(Number(paramTypes[names.indexOf(name)])),
      })),
    };
  } catch (error) {
    throw remoteError("config", where, error, [password]);
  } finally {
    // Closing the connection rolls the read-only transaction back with it.
    await client.end().catch(() => {});
  }
}

/**
 * The ClickHouse type of each parameter, read from the expression it is compared with
 * (`user_id = @user_id`, `@p IN col`): ClickHouse does not infer parameter types, so the
 * compared expression is described over the query's own FROM clause.
 */
function comparedWith(query: string, name: string): string | undefined {
  const ident = String.raw`([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)`;
  const op = String.raw`\s*(?:==|=|!=|<>|<=|>=|<|>|\s(?:NOT\s+)?IN\s|\sLIKE\s)\s*`;
  const left = new RegExp(`${ident}${op}@${name}\\b`, "i").exec(query);
  if (left) return left[1];
  return new RegExp(`@${name}${op}${ident}`, "i").exec(query)?.[1];
}

/** The query's top-level `FROM ...` up to its WHERE-like tail, or "" when there is none. */
function fromClause(query: string): string {
  const from = /\bFROM\b/i.exec(query);
  if (!from) return "";
  const rest = query.slice(from.index);
  const end = /\b(WHERE|PREWHERE|GROUP\s+BY|ORDER\s+BY|LIMIT|HAVING|SETTINGS|FORMAT)\b/i.exec(rest);
  return end ? rest.slice(0, end.index) : rest;
}

/** `T` of `Nullable(T)` or `LowCardinality(T)`, which cannot be wrapped in `Nullable` again. */
function innerType(type: string): string {
  const inner = /^(?:Nullable|LowCardinality)\((.*)\)$/.exec(type)?.[1];
  return inner === undefined ? type : innerType(inner);
}

async function describeClickhouse(request: Request): Promise<CatalogAnswer> {
  const config = request.config;
  const host = stringOf(config, "host");
  if (!host) throw new ConnectorError("config", "the ClickHouse connection needs a `host`");
  const port = intOf(config, "port", 8123);
  const password = stringOf(config, "password");
  const database = stringOf(config, "database", "default");
  const where = place("clickhouse", host, port, database);
  const client = createClient({
    url: `http://${host}:${port}`,
    username: stringOf(config, "user", "default"),
    password: password ?? "",
    database,
    request_timeout: 10_000,
    // The client would print each failure with its stack to stderr; it is reported instead.
    log: { level: ClickHouseLogLevel.OFF },
  });
  const describe = async (query: string) => {
    const result = await client.query({ query: `DESCRIBE (${query}\n)`, format: "JSONEachRow" });
    return await result.json<{ name: string; type: string }>();
  };
  try {
    const paramTypes = new Map<string, string>();
    for (const name of request.params) {
      const expr = comparedWith(request.query, name);
      if (!expr) {
        throw new ConnectorError(
          "config",
          `${where}: cannot tell the type of \`@${name}\`; compare it with a column ` +
            `(\`col = @${name}\`)`,
        );
      }
      const from = replaceParams(fromClause(bare(request.query)), () => "NULL");
      const [column] = await describe(`SELECT ${expr} ${from}`);
      paramTypes.set(name, column.type);
    }
    // A typed NULL stands in for each parameter: it types the expression without a value.
    const typed = replaceParams(
      bare(request.query),
      (n) => `CAST(NULL AS Nullable(${innerType(paramTypes.get(n)!)}))`,
    );
    const columns = await describe(typed);
    return {
      columns: columns.map((c) => ({ name: c.name, type: typeToString(clickhouseType(c.type)) })),
      params: request.params.map((name) => ({
        name,
        type: typeToString(clickhouseType(paramTypes.get(name)!)),
      })),
    };
  } catch (error) {
    if (error instanceof ConnectorError) throw error;
    throw remoteError("config", where, error, [password]);
  } finally {
    await client.close().catch(() => {});
  }
}

/**
 * Describes a query step's query on the database its resource names: output columns and
 * parameter types as the snapshot records them. Config values may still be `env(...)` or
 * `secret(...)` references; they are read from the environment here. Throws a
 * `ConnectorError` (message naming the server, secrets redacted) when it cannot.
 */
export const databaseCatalog: Catalog = (request) => {
  switch (request.module) {
    case "fhub/postgresql":
      return describePostgresql(request);
    case "fhub/clickhouse":
      return describeClickhouse(request);
    default:
      return Promise.reject(
        new ConnectorError("config", `cannot introspect queries of \`${request.module}\``),
      );
  }
};
