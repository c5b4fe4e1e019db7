/**
 * A run spread over hosts: real `heddle cluster` processes, the control plane on one
 * network namespace and each worker on its own (with its own /dev/shm), so batches between
 * stage groups on different workers can only cross through Arrow Flight. The placement is
 * read back from the control plane (`inspect --plan --server`, `workflow status`), and the
 * outputs must be those of a one-host `heddle run`.
 */
import assert from "node:assert/strict";
import { clusterTest, NetnsCluster } from "./_netns.ts";
import { quickstartCopy } from "../_quickstart.ts";
import * as fraud from "../_fraud.ts";
import { produce } from "../connectors/_fixtures.ts";
import { assertAudit, onFraudCluster, rejectedRows } from "./_fraud_cluster.ts";
import { cli, ended } from "./_heddle.ts";
import {
  heldCopies,
  interfaceBytes,
  moreTransactions,
  moving,
  onQuickstartCluster,
  outputs,
  planOnBoth,
  runAlone,
  startCluster,
  startQuickstart,
  succeededAsAlone,
  until,
} from "./_heddle_cluster.ts";

clusterTest(
  "the quickstart runs spread over two worker hosts, rows identical to one host",
  async () => {
    const dir = await quickstartCopy();
    const alone = await quickstartCopy();
    // Enough rows that the batches between the workers outweigh the run's metadata.
    await moreTransactions([dir, alone], 60_000);
    await using cluster = await NetnsCluster.create(3);
    try {
      const token = `${dir}/token`;
      await Deno.writeTextFile(token, crypto.randomUUID() + "\n", { mode: 0o600 });
      const { control, workers } = await startCluster(cluster, dir, token);
      const client = ["--server", control, "--token-file", token];
      await cli(["workflow", "deploy", `${dir}/quickstart.he`, ...client]);
      // Workers register once they listen; the plan names both when both did.
      const plan = await planOnBoth(`${dir}/quickstart.he`, client);
      assert.ok(plan.stages.every((s) => s.worker), "every stage has a worker");
      assert.ok(plan.edges.some((e) => e.crossesHosts), "an edge crosses hosts");

      const before = await interfaceBytes(cluster.nodes[0]);
      const workerBytes = await Promise.all(workers.map((w) => interfaceBytes(w.node)));
      const run = await cli(["workflow", "start", "Quickstart", "--wait", ...client]) as {
        runs: { id: string; status: string; error: string }[];
      };
      assert.equal(run.runs[0].status, "succeeded", run.runs[0].error);
      const status = await cli(["workflow", "status", run.runs[0].id, ...client]) as {
        summaryJson: string;
        worker: string;
      };
      const summary = JSON.parse(status.summaryJson);
      const ran = new Set(summary.placement.groups.map((g: { worker: string }) => g.worker));
      assert.equal(ran.size, 2, "the groups ran on both workers");
      assert.equal(status.worker.split(",").length, 2);
      // Every stage reported its rows, once, from the worker that ran it.
      assert.equal(summary.stages["Quickstart.8"].rowsIn, summary.stages["Quickstart.7"].rowsOut);

      // The same program on one host, with `heddle run`.
      await runAlone(alone);
      const spread = await outputs(dir);
      const expected = await outputs(alone);
      assert.deepEqual(spread, expected);
      assert.ok(Object.keys(expected).length >= 3);
      // The control plane's node carried metadata only (the program, events, the summary):
      // a small part of what the workers exchanged over Flight.
      const controlBytes = (await interfaceBytes(cluster.nodes[0])) - before;
      const moved = (await Promise.all(workers.map((w) => interfaceBytes(w.node))))
        .map((b, i) => b - workerBytes[i] - controlBytes);
      console.log(`control plane ${controlBytes} bytes, workers ${moved.join(", ")} bytes`);
      assert.ok(moved.every((b) => b > 5 * controlBytes), `${controlBytes} vs ${moved}`);
      for (const w of workers) await w.node.stop();
    } finally {
      for (const node of cluster.nodes) await node.stop();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(alone, { recursive: true });
    }
  },
);

clusterTest("the fraud pipeline runs over two worker hosts against the real services", async () => {
  await onFraudCluster(async ({ client, base, setup: s }) => {
    const txs = fraud.transactions(base, 0, 600);
    const rejected = [1, 2].map((i) => ({ user_id: base + i, amount: "Infinity" }));
    const expected = fraud.suspicious(txs);
    await produce("live_transactions", [...txs, ...rejected]);
    const started = await cli(["workflow", "start", "FraudDetection", ...client]) as {
      runs: { id: string }[];
    };
    const runId = started.runs[0].id;
    const { records, alerts } = await fraud.awaitOutputs(
      s,
      base,
      expected.length,
      (r) => r.filter((x) => fraud.isRejected(x, base)).length >= rejected.length,
    );
    await cli(["workflow", "stop", runId, ...client]);
    const status = await ended(runId, client);
    assert.equal(status.status, "stopped", status.error);
    const audits = fraud.ours(records, base);
    assert.equal(audits.length, expected.length, "each suspicious transaction audited once");
    for (const t of expected) {
      const found = audits.filter((a) => a.amount === t.amount);
      assert.equal(found.length, 1, `transaction ${t.amount}`);
      assertAudit(found[0], t, base);
    }
    assert.equal(rejectedRows(alerts, base).length, rejected.length);
    const placement = JSON.parse(status.summaryJson).placement;
    const python = placement.groups.find((g: { requires: string[] }) =>
      g.requires.includes("python")
    );
    const consumer = placement.groups.find((g: { stages: string[] }) =>
      g.stages.includes("FraudDetection.0")
    );
    assert.notEqual(python.worker, consumer.worker, "the plugin ran on the other host");
  });
});

clusterTest(
  "a worker killed mid-run: its groups are placed again and no row is lost or doubled",
  async () => {
    const { dir, alone, gate } = await heldCopies(20_000);
    await onQuickstartCluster(dir, alone, async ({ client, plan }) => {
      const runId = await startQuickstart(client);
      // Mid-run by construction: rows moved, and the held step keeps the run from ending.
      await until(runId, client, "rows moved", (s) => s.status === "running" && moving(s));
      // The worker running the plugin dies while batches are moving (its id ends in its pid).
      const victim = plan.stages.find((s) => s.label === "to_cents")!.worker;
      const survivor = plan.stages.map((s) => s.worker).find((w) => w !== victim)!;
      Deno.kill(Number(victim.split("-").pop()), "SIGKILL");
      await until(runId, client, "placed on the survivor", (s) => s.worker === survivor);
      await Deno.writeTextFile(gate, "");
      const status = await ended(runId, client);
      await succeededAsAlone(status, dir, alone);
      assert.equal(status.worker, survivor, "placed again on the live worker only");
    });
  },
);
