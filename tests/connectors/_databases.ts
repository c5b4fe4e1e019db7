/**
 * Scratch databases for tests that create tables on the shared PostgreSQL and ClickHouse
 * services: each call gets a database of its own, so tables like `users` never clash with
 * another test's, and it is dropped afterwards. It must never touch a database it did not
 * create.
 */
import pg from "pg";
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { serviceConfig } from "../services/mod.ts";

function freshName(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

/** Runs `fn` with a fresh PostgreSQL database in which `setup` statements were run. */
export async function withPostgres<T>(
  setup: string[],
  fn: (database: string) => Promise<T>,
): Promise<T> {
  const database = freshName("heddle_test");
  const admin = new pg.Client({ connectionString: serviceConfig.postgres.url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${database}`);
    const { host, port, user, password } = serviceConfig.postgres;
    const client = new pg.Client({ host, port, user, password, database });
    await client.connect();
    try {
      for (const statement of setup) await client.query(statement);
    } finally {
      await client.end();
    }
    return await fn(database);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  }
}

/** Runs `fn` with a fresh ClickHouse database; `setup` statements run inside it. */
export async function withClickhouse<T>(
  setup: string[],
  fn: (database: string) => Promise<T>,
): Promise<T> {
  const database = freshName("heddle_test");
  const connect = (database?: string) =>
    createClient({
      url: serviceConfig.clickhouse.url,
      username: serviceConfig.clickhouse.username,
      password: serviceConfig.clickhouse.password,
      database,
      log: { level: ClickHouseLogLevel.OFF },
    });
  const admin = connect();
  try {
    await admin.command({ query: `CREATE DATABASE ${database}` });
    const client = connect(database);
    try {
      for (const query of setup) await client.command({ query });
    } finally {
      await client.close();
    }
    return await fn(database);
  } finally {
    await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => {});
    await admin.close();
  }
}
