/**
 * The seed's fraud pipeline on a 3-node cluster, for the tests that run it across hosts
 * (cluster_run.test.ts, fraud_restart.test.ts): the real Kafka, PostgreSQL, ClickHouse and
 * the test LLM server reached from every node, users seeded, the program deployed with the
 * overrides that point it at them, both workers registered; and the checks of its outputs.
 */
import assert from "node:assert/strict";
import { NetnsCluster } from "./_netns.ts";
import { quickstartEnv } from "../_quickstart.ts";
import * as fraud from "../_fraud.ts";
import { requireService, serviceConfig } from "../services/mod.ts";
import type { Record_ } from "../connectors/_fixtures.ts";
import { cli, planOnBoth, startCluster, type Started } from "./_heddle_cluster.ts";

/** What a test on the fraud cluster gets. */
export interface FraudCluster {
  started: Started;
  client: string[];
  /** The first seeded user's id (`fraud.seedUsers`). */
  base: number;
  setup: Awaited<ReturnType<typeof fraud.setup>>;
}

/**
 * Runs `fn` on a cluster with the fraud pipeline deployed (`options` go to `fraud.setup`);
 * returns without running it when a service is missing and not required.
 */
export async function onFraudCluster(
  fn: (on: FraudCluster) => Promise<void>,
  options: Parameters<typeof fraud.setup>[0] = {},
): Promise<void> {
  for (const service of ["kafka", "postgres", "clickhouse"] as const) {
    if (!(await requireService(service))) return;
  }
  // The cluster first: making it ends what a killed earlier test left running.
  await using cluster = await NetnsCluster.create(3);
  const base = await fraud.seedUsers();
  const setup = await fraud.setup(options);
  const dir = await Deno.makeTempDir({ prefix: "heddle-cluster-" });
  try {
    const llmPort = Number(new URL(setup.llm.baseUrl).port);
    await cluster.reachHostServices([
      serviceConfig.kafka.port,
      serviceConfig.postgres.port,
      serviceConfig.clickhouse.port,
      llmPort,
    ]);
    const token = `${dir}/token`;
    await Deno.writeTextFile(token, crypto.randomUUID() + "\n", { mode: 0o600 });
    const env = { ...quickstartEnv, ...setup.env };
    const started = await startCluster(cluster, dir, token, { env });
    const client = ["--server", started.control, "--token-file", token];
    const overrides = setup.args.slice(0, setup.args.indexOf("--batch-rows"));
    await cli(["workflow", "deploy", fraud.FRAUD_PROGRAM, ...overrides, ...client], env);
    await planOnBoth(fraud.FRAUD_PROGRAM, client);
    await fn({ started, client, base, setup });
  } finally {
    for (const node of cluster.nodes) await node.stop();
    await setup.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
}

/** An audit carries its transaction's user and that user's country and velocity score. */
export function assertAudit(audit: fraud.Audit, t: fraud.Transaction, base: number): void {
  const i = audit.user_id - base;
  assert.equal(audit.user_id, t.user_id);
  assert.equal(audit.country, `C${i}`);
  assert.equal(audit.velocity_score, i / 10);
}

/** The rows of our users on `dlq_alerts`, each rejected by the fraud plugin. */
export function rejectedRows(alerts: Record_[], base: number): { user_id: number }[] {
  const errors = alerts.map((r) => JSON.parse(r.value)).filter((r) =>
    typeof r.user_id === "number" && r.user_id >= base && r.user_id < base + fraud.USERS
  );
  for (const e of errors) assert.equal(e._error_step, "fraud-score/detect.process");
  return errors;
}
