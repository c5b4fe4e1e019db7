/**
 * The seed program, `examples/fraud_detection.he`, unchanged, run with `heddle run` as a
 * subprocess against the real services (Kafka, PostgreSQL, ClickHouse) and the test LLM
 * server, with resource config overridden from the command line and an env file. It checks
 * what the original design promises: one audit per suspicious transaction, joined with the
 * right country and velocity score; rejected rows in `dlq_alerts` with their error; and no
 * transaction lost across a SIGTERM and a restart, or while PostgreSQL is away. The topic
 * names are fixed by the program, so the test moves the program's consumer group past old
 * records and recognises its own rows by user ids no earlier run used.
 */
import assert from "node:assert/strict";
import { serviceConfig, serviceTest } from "../services/mod.ts";
import { expectedCompletion, startLlmServer } from "../llm_server.ts";
import {
  chClient,
  createTopics,
  endOffsets,
  pgClient,
  produce,
  readTopic,
  type Record_,
  skipToEnd,
} from "../connectors/_fixtures.ts";

const PROGRAM = new URL("../../examples/fraud_detection.he", import.meta.url).pathname;
const CLI = new URL("../../cli/main.ts", import.meta.url).pathname;
const GROUP = "FraudDetection";
const USERS = 20;

interface Transaction {
  user_id: number;
  amount: number | string;
}

/** Users no earlier run used, in both databases: user `base + i` lives in country `C<i>`. */
async function seedUsers(): Promise<number> {
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
function transactions(base: number, from: number, to: number): Transaction[] {
  const out: Transaction[] = [];
  for (let k = from; k < to; k++) {
    const user_id = base + (k % USERS);
    const amount = k % 10 === 0 ? 11_000 + k * 1000 : k % 10 === 1 ? 10_000.5 + k : 20 + k % 500;
    out.push({ user_id, amount });
  }
  return out;
}

function suspicious(txs: Transaction[]): Transaction[] {
  return txs.filter((t) =>
    typeof t.amount === "number" && t.amount > 10_000 && t.amount % 1000 === 0
  );
}

class HeddleRun {
  #child: Deno.ChildProcess;
  #output = "";
  #done: Promise<Deno.CommandStatus>;

  constructor(args: string[], env: Record<string, string>) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "run", ...args, PROGRAM],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) this.#output += text;
    };
    const reading = Promise.all([collect(this.#child.stdout), collect(this.#child.stderr)]);
    this.#done = this.#child.status.then(async (s) => {
      await reading;
      return s;
    });
  }

  get output(): string {
    return this.#output.slice(-4000);
  }

  /** Sends SIGTERM (drain) and waits for the exit; kills it if it does not stop in time. */
  async stop(): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }, 60_000);
    try {
      return await this.#done;
    } finally {
      clearTimeout(timer);
    }
  }
}

interface Audit {
  user_id: number;
  amount: number;
  fraud_score: number;
  country: string;
  velocity_score: number;
  completion: string;
}

function ours(records: Record_[], base: number): Audit[] {
  return records.map((r) => JSON.parse(r.value) as Audit).filter((a) =>
    a.user_id >= base && a.user_id < base + USERS
  );
}

async function setup() {
  await createTopics(["live_transactions", "fraud_audits", "dlq_alerts"]);
  await skipToEnd(GROUP, "live_transactions");
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
      `pg_db.password=${pg.password}`,
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
  const env = { OPENAI_BASE_URL: llm.baseUrl, OPENAI_API_KEY: "test-key" };
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

serviceTest(
  "heddle run executes fraud_detection.he end to end and a restart loses no transaction",
  ["kafka", "postgres", "clickhouse"],
  async () => {
    const base = await seedUsers();
    const s = await setup();
    const marker = `bad-${base}`;
    const first = transactions(base, 0, 1500);
    const second = transactions(base, 1500, 3000);
    // Amounts the plugin rejects (not finite) and records that are not JSON at all.
    const rejected = [1, 2, 3].map((i) => ({ user_id: base + i, amount: "Infinity" }));
    const malformed = [`{"user_id": ${base}, "amount": ${marker}`, `not json ${marker}`];
    const expected = suspicious([...first, ...second]);
    let run: HeddleRun | null = null;
    try {
      await produce("live_transactions", [...first, ...rejected, ...malformed]);
      run = new HeddleRun(s.args, s.env);
      // Stop mid-stream once some audits went out, then restart and send the rest.
      const early = await readTopic(
        "fraud_audits",
        s.audits,
        (r) => ours(r, base).length >= 20,
        90_000,
      );
      assert.ok(ours(early, base).length >= 20, `no audits arrived:\n${run.output}`);
      const stopped = await run.stop();
      // Exit 3: stopped on request and drained (docs/cli.md); the topics keep what was sent.
      assert.equal(stopped.code, 3, `the drained run should exit as stopped:\n${run.output}`);
      assert.match(run.output, /run stopped/);
      assert.match(run.output, /rows written to topic `fraud_audits`/);
      await produce("live_transactions", second);
      run = new HeddleRun(s.args, s.env);
      const records = await readTopic(
        "fraud_audits",
        s.audits,
        (r) => ours(r, base).length >= expected.length,
        120_000,
      );
      const alerts = await readTopic(
        "dlq_alerts",
        s.dlq,
        (r) => r.filter((x) => x.value.includes(marker) || isRejected(x, base)).length >= 5,
        60_000,
      );
      await run.stop();
      const audits = ours(records, base);
      const byAmount = new Map<number, Audit[]>();
      for (const a of audits) byAmount.set(a.amount, [...(byAmount.get(a.amount) ?? []), a]);
      const missing = expected.filter((t) => !byAmount.has(t.amount as number));
      assert.equal(missing.length, 0, `transactions without an audit: ${missing.length}`);
      for (const t of expected) {
        const [a, ...dupes] = byAmount.get(t.amount as number)!;
        assert.equal(dupes.length, 0, `transaction ${t.amount} was audited more than once`);
        const i = a.user_id - base;
        assert.equal(a.user_id, t.user_id);
        assert.equal(a.country, `C${i}`);
        assert.equal(a.velocity_score, i / 10);
        assert.ok(a.fraud_score >= 0.5);
        assert.ok(a.completion.startsWith(expectedCompletion("")), a.completion);
        assert.ok(a.completion.includes(String(t.amount)), a.completion);
      }
      assert.equal(audits.length, expected.length, "only suspicious transactions are audited");
      const dlqRows = alerts.map((r) => JSON.parse(r.value) as Record<string, unknown>);
      const pluginErrors = dlqRows.filter((r) =>
        typeof r.user_id === "number" && r.user_id >= base && r.user_id < base + USERS
      );
      assert.equal(pluginErrors.length, rejected.length, JSON.stringify(pluginErrors));
      for (const r of pluginErrors) {
        assert.equal(r._error_step, "fraud-score/detect.process");
        assert.match(String(r._error_message), /not a valid amount/);
      }
      const decodeErrors = dlqRows.filter((r) => String(r._error_message).includes(marker));
      assert.equal(decodeErrors.length, malformed.length, JSON.stringify(dlqRows.slice(0, 5)));
      for (const r of decodeErrors) assert.equal(r._error_step, "fhub/kafka.consume");
    } finally {
      await run?.stop();
      await s.cleanup();
    }
  },
);

function isRejected(r: Record_, base: number): boolean {
  const row = JSON.parse(r.value) as { user_id?: unknown };
  return typeof row.user_id === "number" && row.user_id >= base && row.user_id < base + USERS;
}

const POSTGRES_SH = new URL("../services/postgres.sh", import.meta.url).pathname;

async function postgres(action: "start" | "stop"): Promise<void> {
  const out = await new Deno.Command(POSTGRES_SH, {
    args: [action],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  assert.ok(out.success, `postgres.sh ${action} failed: ${new TextDecoder().decode(out.stderr)}`);
}

serviceTest(
  "a PostgreSQL outage mid-run quarantines the lookup's rows to the handler and the run recovers",
  ["kafka", "postgres", "clickhouse"],
  async () => {
    const base = await seedUsers();
    const s = await setup();
    let run: HeddleRun | null = null;
    let stopped = false;
    try {
      const before = transactions(base, 0, 100);
      const during = transactions(base, 100, 200);
      const after = transactions(base, 200, 300);
      await produce("live_transactions", before);
      run = new HeddleRun(s.args, s.env);
      const warm = await readTopic(
        "fraud_audits",
        s.audits,
        (r) => ours(r, base).length >= suspicious(before).length,
        90_000,
      );
      assert.equal(ours(warm, base).length, suspicious(before).length, run.output);
      await postgres("stop");
      stopped = true;
      await produce("live_transactions", during);
      // Each suspicious row of the outage is retried, then routed to `alert_on_fail`.
      const failed = await readTopic(
        "dlq_alerts",
        s.dlq,
        (r) => r.filter((x) => isRejected(x, base)).length >= suspicious(during).length,
        120_000,
      );
      const alerts = failed.filter((x) => isRejected(x, base)).map((x) => JSON.parse(x.value));
      assert.deepEqual(
        alerts.map((a) => a.amount).sort((a, b) => a - b),
        suspicious(during).map((t) => t.amount),
        run.output,
      );
      for (const a of alerts) {
        assert.equal(a._error_step, "prql");
        assert.match(a._error_message, /postgresql/);
        assert.equal(a._error_attempt, 3);
      }
      await postgres("start");
      stopped = false;
      await produce("live_transactions", after);
      const records = await readTopic(
        "fraud_audits",
        s.audits,
        (r) => ours(r, base).length >= suspicious([...before, ...after]).length,
        120_000,
      );
      const amounts = new Set(ours(records, base).map((a) => a.amount));
      for (const t of suspicious(after)) assert.ok(amounts.has(t.amount as number), run.output);
      const status = await run.stop();
      assert.equal(status.code, 3, run.output);
    } finally {
      if (stopped) await postgres("start");
      await run?.stop();
      await s.cleanup();
    }
  },
);
