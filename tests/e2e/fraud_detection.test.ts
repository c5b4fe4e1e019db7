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
import { serviceTest } from "../services/mod.ts";
import { expectedCompletion } from "../llm_server.ts";
import { produce, readTopic } from "../connectors/_fixtures.ts";
import {
  type Audit,
  awaitOutputs,
  FRAUD_PROGRAM as PROGRAM,
  isRejected,
  ours,
  seedUsers,
  setup,
  suspicious,
  transactions,
  USERS,
} from "../_fraud.ts";
const CLI = new URL("../../cli/main.ts", import.meta.url).pathname;
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
      const { records, alerts } = await awaitOutputs(
        s,
        base,
        expected.length,
        (r) => r.filter((x) => x.value.includes(marker) || isRejected(x, base)).length >= 5,
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
