/**
 * The seed's fraud pipeline (`examples/fraud_detection.he`) as the tests that run it need
 * it: users seeded in PostgreSQL and ClickHouse under ids no earlier run used, generated
 * transactions and the ones the pipeline must audit, the test LLM server and the resource
 * overrides that point the program at the real services. Shared by the one-host run
 * (tests/e2e/fraud_detection.test.ts) and the multi-host run (tests/cluster/).
 */
import { serviceConfig } from "./services/mod.ts";
import { startLlmServer } from "./llm_server.ts";
import {
  chClient,
  createTopics,
  endOffsets,
  pgClient,
  readTopic,
  type Record_,
  skipToEnd,
} from "./connectors/_fixtures.ts";

export const FRAUD_PROGRAM = new URL("../examples/fraud_detection.he", import.meta.url).pathname;

export const GROUP = "FraudDetection";
export const USERS = 20;

export interface Transaction {
  user_id: number;
  amount: number | string;
}

/** Users no earlier run used, in both databases: user `base + i` lives in country `C<i>`. */
export async function seedUsers(): Promise<number> {
  const base = (Date.now() % 1_000_000_000) * 100;
  const client = pgClient();
  await client.connect();
  try {
    await client.query(
      "CREATE TABLE IF NOT EXISTS users (id bigint PRIMARY KEY, country text NOT NULL)",
    );
    for (let i = 0; i < USERS; i++) {
      await client.query("INSERT INTO users VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", [
        base + i,
        `C${i}`,
      ]);
    }
  } finally {
    await client.end();
  }
  const ch = chClient();
  try {
    await ch.command({
      query: "CREATE TABLE IF NOT EXISTS risk_metrics (user_id Int64, velocity_score Float64) " +
        "ENGINE = MergeTree ORDER BY user_id",
    });
    await ch.insert({
      table: "risk_metrics",
      values: Array.from(
        { length: USERS },
        (_, i) => ({ user_id: base + i, velocity_score: i / 10 }),
      ),
      format: "JSONEachRow",
    });
  } finally {
    await ch.close();
  }
  return base;
}

/**
 * Transactions `from..to`: every tenth a round amount above 10,000 (the plugin keeps it),
 * every tenth plus one above 10,000 but scoring too low (the plugin drops it), the rest small.
 */
export function transactions(base: number, from: number, to: number): Transaction[] {
  const out: Transaction[] = [];
  for (let k = from; k < to; k++) {
    const user_id = base + (k % USERS);
    const amount = k % 10 === 0 ? 11_000 + k * 1000 : k % 10 === 1 ? 10_000.5 + k : 20 + k % 500;
    out.push({ user_id, amount });
  }
  return out;
}

export function suspicious(txs: Transaction[]): Transaction[] {
  return txs.filter((t) =>
    typeof t.amount === "number" && t.amount > 10_000 && t.amount % 1000 === 0
  );
}

export interface Audit {
  user_id: number;
  amount: number;
  fraud_score: number;
  country: string;
  velocity_score: number;
  completion: string;
}

export function ours(records: Record_[], base: number): Audit[] {
  return records.map((r) => JSON.parse(r.value) as Audit).filter((a) =>
    a.user_id >= base && a.user_id < base + USERS
  );
}

/**
 * Topics, the LLM server and the overrides for the real services. With `passwordFromEnv`
 * the PostgreSQL password is not an override (a deploy's plain-text secrets stay in the
 * control plane's memory, gone after its restart, docs/security.md) but `$PGPASSWORD` in
 * `env`, which the connector's client reads on the worker.
 */
export async function setup(options: { passwordFromEnv?: boolean } = {}) {
  await createTopics(["live_transactions", "fraud_audits", "dlq_alerts"]);
  // A consumer of an earlier run (a worker killed with -9) stays in the group until its
  // session times out, and the group's offsets move only once nobody is in it.
  for (let i = 0;; i++) {
    try {
      await skipToEnd(GROUP, "live_transactions");
      break;
    } catch (e) {
      if (i === 90) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const llm = startLlmServer();
  const dir = await Deno.makeTempDir({ prefix: "heddle-e2e-" });
  const envFile = `${dir}/services.env`;
  const pg = serviceConfig.postgres;
  await Deno.writeTextFile(
    envFile,
    [
      `pg_db.host=${pg.host}`,
      `pg_db.port=${pg.port}`,
      `pg_db.user=${pg.user}`,
      ...(options.passwordFromEnv ? [] : [`pg_db.password=${pg.password}`]),
      `pg_db.database=${pg.database}`,
      `ch_db.port=${serviceConfig.clickhouse.port}`,
    ].join("\n") + "\n",
  );
  const args = [
    "--set",
    `kf_broker.broker=${serviceConfig.kafka.brokers.join(",")}`,
    "--set",
    `ch_db.host=${serviceConfig.clickhouse.host}`,
    "--env-file",
    envFile,
    "--batch-rows",
    "200",
  ];
  const env: Record<string, string> = {
    OPENAI_BASE_URL: llm.baseUrl,
    OPENAI_API_KEY: "test-key",
    ...(options.passwordFromEnv ? { PGPASSWORD: pg.password } : {}),
  };
  const audits = await endOffsets("fraud_audits");
  const dlq = await endOffsets("dlq_alerts");
  return {
    llm,
    args,
    env,
    audits,
    dlq,
    cleanup: async () => {
      await llm.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

export function isRejected(r: Record_, base: number): boolean {
  const row = JSON.parse(r.value) as { user_id?: unknown };
  return typeof row.user_id === "number" && row.user_id >= base && row.user_id < base + USERS;
}

/**
 * Waits until `audits` audits of ours reached `fraud_audits` and `alerted` holds for the
 * alerts on `dlq_alerts` (each read from the offsets `setup` noted); returns both.
 */
export async function awaitOutputs(
  s: { audits: bigint[]; dlq: bigint[] },
  base: number,
  audits: number,
  alerted: (records: Record_[]) => boolean,
): Promise<{ records: Record_[]; alerts: Record_[] }> {
  const records = await readTopic(
    "fraud_audits",
    s.audits,
    (r) => ours(r, base).length >= audits,
    120_000,
  );
  const alerts = await readTopic("dlq_alerts", s.dlq, alerted, 60_000);
  return { records, alerts };
}
