/**
 * Tests for tests/services/mod.ts: configuration from the environment and the probe that
 * decides between running, skipping and failing a service test. They use throwaway
 * listeners on loopback, never the real services, so they run everywhere.
 */
import assert from "node:assert/strict";
import { readServiceConfig, requireService } from "./services/mod.ts";

const env = (vars: Record<string, string>) => new Map(Object.entries(vars));

/** A loopback port that nothing listens on (bound, then released). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("readServiceConfig() uses the scripts' ports and credentials by default", () => {
  const config = readServiceConfig(env({}));
  assert.deepEqual(config.kafka.brokers, ["127.0.0.1:9092"]);
  assert.equal(config.postgres.url, "postgres://heddle:heddle@127.0.0.1:5432/heddle");
  assert.equal(config.clickhouse.url, "http://127.0.0.1:8123");
});

Deno.test("readServiceConfig() takes ports and credentials from HEDDLE_* variables", () => {
  const config = readServiceConfig(env({
    HEDDLE_PG_PORT: "5433",
    HEDDLE_PG_PASSWORD: "p@ss word",
    HEDDLE_KAFKA_PORT: "19092",
    HEDDLE_CLICKHOUSE_PORT: "18123",
  }));
  assert.equal(config.postgres.port, 5433);
  assert.equal(config.postgres.url, "postgres://heddle:p%40ss%20word@127.0.0.1:5433/heddle");
  assert.deepEqual(config.kafka.brokers, ["127.0.0.1:19092"]);
  assert.equal(config.clickhouse.url, "http://127.0.0.1:18123");
});

Deno.test("readServiceConfig() rejects a port that is not a number with the variable's name", () => {
  assert.throws(
    () => readServiceConfig(env({ HEDDLE_PG_PORT: "54x32" })),
    /HEDDLE_PG_PORT must be a TCP port .* found `54x32`/,
  );
});

Deno.test("requireService() answers true when the port accepts connections", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = listener.accept().then((conn) => conn.close(), () => {});
  const port = String((listener.addr as Deno.NetAddr).port);
  try {
    const config = readServiceConfig(env({ HEDDLE_KAFKA_PORT: port }));
    assert.equal(await requireService("kafka", config, env({})), true);
  } finally {
    await accepting;
    listener.close();
  }
});

Deno.test("requireService() prints one skip line and answers false when a service is down", async () => {
  const config = readServiceConfig(env({ HEDDLE_PG_PORT: String(closedPort()) }));
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    assert.equal(await requireService("postgres", config, env({})), false);
  } finally {
    console.log = log;
  }
  assert.deepEqual(lines, [
    "skip: postgres is not running (start it with tests/services/postgres.sh start)",
  ]);
});

Deno.test("requireService() throws instead of skipping under HEDDLE_REQUIRE_SERVICES=1", async () => {
  const config = readServiceConfig(env({ HEDDLE_KAFKA_PORT: String(closedPort()) }));
  await assert.rejects(
    requireService("kafka", config, env({ HEDDLE_REQUIRE_SERVICES: "1" })),
    /kafka is not running \(start it with tests\/services\/kafka.sh start\)/,
  );
});

Deno.test("requireService() calls ClickHouse down when /ping answers with an error", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("Code: 1. DB::Exception: not ready", { status: 503 }),
  );
  try {
    const config = readServiceConfig(env({ HEDDLE_CLICKHOUSE_PORT: String(server.addr.port) }));
    await assert.rejects(
      requireService("clickhouse", config, env({ HEDDLE_REQUIRE_SERVICES: "1" })),
      /answered 503: Code: 1\. DB::Exception: not ready/,
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("serviceTest() declares a test ignored when its service is down, so the summary counts it", async () => {
  const port = String(closedPort());
  const env: Record<string, string> = {
    NO_COLOR: "1",
    // The parent may run under HEDDLE_REQUIRE_SERVICES=1; the child must be allowed to skip.
    HEDDLE_REQUIRE_SERVICES: "0",
    HEDDLE_KAFKA_PORT: port,
    HEDDLE_PG_PORT: port,
    HEDDLE_CLICKHOUSE_PORT: port,
  };
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", new URL("./services/_skipped.ts", import.meta.url).pathname],
    env,
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout } = await child.output();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0, text);
  assert.match(text, /needs kafka \.\.\. ignored/);
  assert.match(text, /needs postgres and clickhouse \.\.\. ignored/);
  assert.match(text, /skip: needs kafka: kafka is not running/);
  assert.match(text, /ok \| 1 passed \| 0 failed \| 2 ignored/);
});
