/**
 * Test helpers for the real services that Heddle's connectors talk to (Kafka, PostgreSQL,
 * ClickHouse), as started by `tests/services/<name>.sh start` on loopback.
 *
 * Why this exists: connector tests must run against real servers, yet a developer without
 * them should still get a green, honest run: such tests say why they skipped instead of
 * failing. CI sets `HEDDLE_REQUIRE_SERVICES=1` so that a missing service fails the run
 * instead of skipping silently. This module must never start, stop or reconfigure a
 * service, and never reach an address beyond loopback unless the environment says so.
 *
 * The pattern: the services are probed once, when this module is first imported (a
 * top-level await, because `Deno.test`'s `ignore` is decided when the test is declared),
 * and a test whose service is down is declared ignored, so the runner's closing line counts
 * it under `ignored` and a run without services cannot look complete:
 *
 * ```ts
 * serviceTest("the kafka source reads what was produced", ["kafka"], async () => {
 *   // runs only when Kafka answers; otherwise the test is reported as ignored
 * });
 * ```
 */

/** A service that `tests/services/` can start. */
export type ServiceName = "kafka" | "postgres" | "clickhouse";

/** Where each service listens and how to log in, read once from the environment. */
export interface ServiceConfig {
  kafka: {
    host: string;
    port: number;
    /** `host:port` strings, the form Kafka clients take as bootstrap brokers. */
    brokers: string[];
  };
  postgres: {
    host: string;
    port: number;
    user: string;
    password: string;
    database: string;
    /** A `postgres://` connection string with the fields above. */
    url: string;
  };
  clickhouse: {
    host: string;
    port: number;
    /** The HTTP endpoint, the form `@clickhouse/client`'s `createClient({ url })` takes. */
    url: string;
    username: string;
    password: string;
    database: string;
  };
}

/** The part of `Deno.env` this module reads; tests pass a Map-backed one. */
export interface EnvReader {
  get(name: string): string | undefined;
}

/** Reads the services' addresses and credentials, with the scripts' defaults. */
export function readServiceConfig(env: EnvReader): ServiceConfig {
  const host = env.get("HEDDLE_SERVICES_HOST") ?? "127.0.0.1";
  const kafkaPort = portFrom(env, "HEDDLE_KAFKA_PORT", 9092);
  const pg = {
    host,
    port: portFrom(env, "HEDDLE_PG_PORT", 5432),
    user: env.get("HEDDLE_PG_USER") ?? "heddle",
    password: env.get("HEDDLE_PG_PASSWORD") ?? "heddle",
    database: env.get("HEDDLE_PG_DATABASE") ?? "heddle",
  };
  const chPort = portFrom(env, "HEDDLE_CLICKHOUSE_PORT", 8123);
  return {
    kafka: { host, port: kafkaPort, brokers: [`${host}:${kafkaPort}`] },
    postgres: {
      ...pg,
      url: `postgres://${encodeURIComponent(pg.user)}:${
        encodeURIComponent(pg.password)
      }@${host}:${pg.port}/${encodeURIComponent(pg.database)}`,
    },
    clickhouse: {
      host,
      port: chPort,
      url: `http://${host}:${chPort}`,
      username: env.get("HEDDLE_CLICKHOUSE_USER") ?? "default",
      password: env.get("HEDDLE_CLICKHOUSE_PASSWORD") ?? "",
      database: env.get("HEDDLE_CLICKHOUSE_DATABASE") ?? "default",
    },
  };
}

function portFrom(env: EnvReader, name: string, fallback: number): number {
  const text = env.get(name);
  if (text === undefined || text === "") return fallback;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`${name} must be a TCP port between 1 and 65535, found \`${text}\``);
  }
  return port;
}

/** The configuration for this process's environment. */
export const serviceConfig: ServiceConfig = readServiceConfig(Deno.env);

/** How long a probe waits for an answer before calling the service down. */
const PROBE_TIMEOUT_MS = 3000;

/**
 * Probes a service. Returns true when it answers; otherwise prints one `skip:` line and
 * returns false, or throws when `HEDDLE_REQUIRE_SERVICES=1` (as CI sets it).
 */
export async function requireService(
  name: ServiceName,
  config: ServiceConfig = serviceConfig,
  env: EnvReader = Deno.env,
): Promise<boolean> {
  const problem = await probe(name, config);
  if (problem === undefined) return true;
  const hint = `start it with tests/services/${name}.sh start`;
  if (env.get("HEDDLE_REQUIRE_SERVICES") === "1") {
    throw new Error(`${name} is not running (${hint}): ${problem}; HEDDLE_REQUIRE_SERVICES=1`);
  }
  console.log(`skip: ${name} is not running (${hint})`);
  return false;
}

/** Returns why the service does not answer, or undefined when it does. */
async function probe(name: ServiceName, config: ServiceConfig): Promise<string | undefined> {
  try {
    switch (name) {
      case "kafka":
        return await tcpProbe(config.kafka.host, config.kafka.port);
      case "postgres":
        return await tcpProbe(config.postgres.host, config.postgres.port);
      case "clickhouse":
        return await httpProbe(`${config.clickhouse.url}/ping`);
    }
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

async function tcpProbe(host: string, port: number): Promise<string | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)),
      PROBE_TIMEOUT_MS,
    );
  });
  const connecting = Deno.connect({ hostname: host, port });
  try {
    const conn = await Promise.race([connecting, timeout]);
    conn.close();
    return undefined;
  } catch (error) {
    // A connection that lands after the timeout must still be closed, or it leaks.
    connecting.then((conn) => conn.close(), () => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function httpProbe(url: string): Promise<string | undefined> {
  const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  const body = await response.text();
  return response.ok ? undefined : `${url} answered ${response.status}: ${body.trim()}`;
}

const allServices: readonly ServiceName[] = ["kafka", "postgres", "clickhouse"];

/**
 * Which services answered when this module was loaded. Under `HEDDLE_REQUIRE_SERVICES=1`
 * nothing is probed here: every service test runs, and `requireService` fails it.
 */
const down: ReadonlySet<ServiceName> = Deno.env.get("HEDDLE_REQUIRE_SERVICES") === "1"
  ? new Set()
  : new Set(
    (await Promise.all(allServices.map(async (name) => [name, await probe(name, serviceConfig)])))
      .filter(([, problem]) => problem !== undefined).map(([name]) => name as ServiceName),
  );

/**
 * Declares a `Deno.test` that runs `fn` only when every listed service answers. A test whose
 * service was down at load time is declared with `ignore: true` (the runner reports it as
 * ignored, and a `skip:` line says why); under `HEDDLE_REQUIRE_SERVICES=1` it fails instead.
 */
export function serviceTest(
  name: string,
  services: readonly ServiceName[],
  fn: (t: Deno.TestContext) => void | Promise<void>,
  options: Omit<Deno.TestDefinition, "name" | "fn"> = {},
): void {
  const missing = services.filter((service) => down.has(service));
  for (const service of missing) {
    console.log(`skip: ${name}: ${service} is not running (tests/services/${service}.sh start)`);
  }
  Deno.test({
    ...options,
    name,
    ignore: options.ignore === true || missing.length > 0,
    async fn(t) {
      for (const service of services) {
        if (!await requireService(service)) return;
      }
      await fn(t);
    },
  });
}
