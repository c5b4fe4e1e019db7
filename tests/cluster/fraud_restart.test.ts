/**
 * The seed's fraud pipeline (examples/fraud_detection.he, real Kafka, PostgreSQL, ClickHouse
 * and the test LLM server on the host) on a 3-node cluster through a kill -9 of the control
 * plane and its restart: no transaction is lost (at least once).
 *
 * The pipeline reads Kafka and never ends by itself, so the test knows it is done by its
 * outputs: transactions go in four lots, the first before the kill (the run is mid-run
 * once its audits are out), the second just before the kill (some of it in flight when
 * the control plane dies, however much: the assertions hold for any split), the third while
 * the control plane is dead (its workers stopped their parts when its streams broke: only
 * the resumed run can read them), the fourth after the run was resumed. The test waits
 * until the audit of every suspicious transaction of the four lots (its amount is unique: the transaction's id) is on
 * `fraud_audits` and the rejected rows of the first and last lots on `dlq_alerts`, then
 * stops the run, which must end `stopped`. The audits are checked as the one-host run's and
 * the fraud cluster test's are (user, country, velocity score of each); an audit may come
 * twice, for rows read again from the committed offsets after the restart.
 */
import assert from "node:assert/strict";
import { clusterTest } from "./_netns.ts";
import * as fraud from "../_fraud.ts";
import { produce, readTopic } from "../connectors/_fixtures.ts";
import { cli, ended, resumed } from "./_heddle_cluster.ts";
import { assertAudit, onFraudCluster, rejectedRows } from "./_fraud_cluster.ts";

clusterTest(
  "the fraud pipeline through a kill -9 of the control plane and its restart loses no transaction",
  async () => {
    // A restarted control plane has lost a deploy's plain-text secrets: the password comes
    // from the workers' environment instead.
    await onFraudCluster(async ({ started, client, base, setup: s }) => {
      const lots = [[0, 200], [200, 400], [400, 600], [600, 800]].map(([from, to]) =>
        fraud.transactions(base, from, to)
      );
      const rejected = (i: number) => ({ user_id: base + i, amount: "Infinity" });
      /** Waits until every suspicious transaction of `txs` has its audit; all audits so far. */
      const audited = async (txs: fraud.Transaction[]) => {
        const amounts = fraud.suspicious(txs).map((t) => t.amount);
        const records = await readTopic("fraud_audits", s.audits, (r) => {
          const seen = new Set(fraud.ours(r, base).map((a) => a.amount));
          return amounts.every((a) => seen.has(a as number));
        }, 180_000);
        const seen = new Set(fraud.ours(records, base).map((a) => a.amount));
        const missing = amounts.filter((a) => !seen.has(a as number));
        assert.deepEqual(missing, [], "transactions without an audit");
        return fraud.ours(records, base);
      };

      await produce("live_transactions", [...lots[0], rejected(1)]);
      const run = await cli(["workflow", "start", "FraudDetection", ...client]) as {
        runs: { id: string }[];
      };
      const runId = run.runs[0].id;
      await audited(lots[0]);

      // Rows in flight (read, crossing to the plugin's host, not yet audited) when it dies.
      await produce("live_transactions", lots[1]);
      started.cp.child.kill("SIGKILL");
      await started.cp.child.status;
      await produce("live_transactions", lots[2]);
      await started.restartControl();
      assert.equal((await resumed(runId, client)).length, 2, "resumed on both workers");
      await produce("live_transactions", [...lots[3], rejected(2)]);

      const audits = await audited(lots.flat());
      const alerts = await readTopic(
        "dlq_alerts",
        s.dlq,
        (r) => r.filter((x) => fraud.isRejected(x, base)).length >= 2,
        60_000,
      );
      await cli(["workflow", "stop", runId, ...client]);
      const status = await ended(runId, client);
      assert.equal(status.status, "stopped", status.error);

      const expected = fraud.suspicious(lots.flat());
      for (const audit of audits) {
        const t = expected.find((e) => e.amount === audit.amount);
        assert.ok(t, `an audit of no suspicious transaction: ${JSON.stringify(audit)}`);
        assertAudit(audit, t, base);
      }
      console.log(
        `${expected.length} suspicious transactions, ${audits.length} audits ` +
          `(${audits.length - expected.length} read again after the restart)`,
      );
      assert.deepEqual(
        [...new Set(rejectedRows(alerts, base).map((e) => e.user_id))].sort(),
        [base + 1, base + 2],
        "both rejected rows reached dlq_alerts",
      );
    }, { passwordFromEnv: true });
  },
);
