/**
 * A run spread over hosts: real `heddle cluster` processes, the control plane on one
 * network namespace and each worker on its own (with its own /dev/shm), so batches between
 * stage groups on different workers can only cross through Arrow Flight. The placement is
 * read back from the control plane (`inspect --plan --server`, `workflow status`), and the
 * outputs must be those of a one-host `heddle run`.
 */
import assert from "node:assert/strict";
import { clusterTest, NetnsCluster, type NetnsNode, type NodeProcess } from "./_netns.ts";
import { quickstartCopy, quickstartEnv } from "../_quickstart.ts";
import * as fraud from "../_fraud.ts";
import { requireService, serviceConfig } from "../services/mod.ts";
import { produce } from "../connectors/_fixtures.ts";
import {
  announced,
  cli,
  controlPlaneCommand,
  ended,
  heddle,
  root,
  workerCommand,
} from "./_heddle.ts";
import {
  heldCopies,
  moving,
  onQuickstartCluster,
  startQuickstart,
  succeededAsAlone,
  until,
} from "./_heddle_cluster.ts";

/** The quickstart's outputs in `dir`, lines sorted, the directory's name replaced. */
async function outputs(dir: string): Promise<Record<string, string[]>> {
  const found: Record<string, string[]> = {};
  for await (const entry of Deno.readDir(`${dir}/data/out`)) {
    // A worker killed while writing leaves its unpublished temporary file behind.
    if (entry.name.includes(".heddle-tmp-")) continue;
    const text = await Deno.readTextFile(`${dir}/data/out/${entry.name}`);
    found[entry.name] = text.replaceAll(dir, "DIR").split("\n").filter((l) => l).sort();
  }
  return found;
}

interface Started {
  control: string;
  workers: { node: NetnsNode; process: NodeProcess; flight: string }[];
}

/** A control plane on the first node and a worker on each other node, sharing one token. */
async function startCluster(
  cluster: NetnsCluster,
  dir: string,
  token: string,
  env: Record<string, string> = quickstartEnv,
): Promise<Started> {
  const [first, ...rest] = cluster.nodes;
  const common = ["--token-file", token, "--insecure", "--output", "json"];
  const cp = first.spawn(controlPlaneCommand(first.address, `${dir}/state-cp`, ...common), {
    cwd: root,
    env,
  });
  const control = await announced(cp, "control plane");
  const workers = [];
  for (const [i, node] of rest.entries()) {
    const process = node.spawn(
      workerCommand(control, node.address, dir, `${dir}/state-w${i}`, ...common),
      { cwd: root, env },
    );
    await announced(process, "worker");
    workers.push({ node, process, flight: await announced(process, "flight") });
  }
  return { control, workers };
}

/** The plan of `file`'s workflow once both workers registered (the control plane places it). */
async function planOnBoth(file: string, client: string[]): Promise<Plan> {
  for (let i = 0;; i++) {
    const plan = await cli(["inspect", "--plan", file, ...client]) as Plan;
    if (new Set(plan.stages.map((s) => s.worker)).size === 2) return plan;
    assert.ok(i < 100, "both workers never registered");
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Plan {
  stages: { id: string; worker: string }[];
  edges: { crossesHosts: boolean }[];
}

/** The quickstart copy in `dir` run on one host with `heddle run`. */
async function runAlone(dir: string): Promise<void> {
  const single = await new Deno.Command(heddle[0], {
    args: [...heddle.slice(1), "run", `${dir}/quickstart.he`],
    env: quickstartEnv,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(single.code, 0, new TextDecoder().decode(single.stderr));
}

/** The quickstart's transactions and `extra` generated ones after them. */
async function moreTransactions(dirs: string[], extra: number): Promise<void> {
  const merchants = ["Coffee Corner", "Book Nook", "Grocer Bio"];
  const lines = Array.from(
    { length: extra },
    (_, i) =>
      `${1000 + i},${i % 40},${(i % 997) + 0.25},${merchants[i % 3]},` +
      `${i % 4 === 0 ? "pending" : "settled"},2026-04-01T00:00:00Z`,
  );
  for (const dir of dirs) {
    await Deno.writeTextFile(`${dir}/data/transactions.csv`, lines.join("\n") + "\n", {
      append: true,
    });
  }
}

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

/** Bytes a node's interface sent and received so far (its side of the veth). */
async function interfaceBytes(node: NetnsNode): Promise<number> {
  const output = await new Deno.Command("ip", {
    args: ["netns", "exec", node.namespace, "ip", "-j", "-s", "link", "show", "eth0"],
    stdout: "piped",
  }).output();
  const [link] = JSON.parse(new TextDecoder().decode(output.stdout));
  return link.stats64.rx.bytes + link.stats64.tx.bytes;
}

clusterTest("the fraud pipeline runs over two worker hosts against the real services", async () => {
  for (const service of ["kafka", "postgres", "clickhouse"] as const) {
    if (!(await requireService(service))) return;
  }
  // The cluster first: making it ends what a killed earlier test left running.
  await using cluster = await NetnsCluster.create(3);
  const base = await fraud.seedUsers();
  const s = await fraud.setup();
  const dir = await Deno.makeTempDir({ prefix: "heddle-cluster-" });
  try {
    const llmPort = Number(new URL(s.llm.baseUrl).port);
    await cluster.reachHostServices([
      serviceConfig.kafka.port,
      serviceConfig.postgres.port,
      serviceConfig.clickhouse.port,
      llmPort,
    ]);
    const token = `${dir}/token`;
    await Deno.writeTextFile(token, crypto.randomUUID() + "\n", { mode: 0o600 });
    const env = { ...quickstartEnv, ...s.env };
    const { control } = await startCluster(cluster, dir, token, env);
    const client = ["--server", control, "--token-file", token];
    const overrides = s.args.slice(0, s.args.indexOf("--batch-rows"));
    await cli(["workflow", "deploy", fraud.FRAUD_PROGRAM, ...overrides, ...client], env);
    await planOnBoth(fraud.FRAUD_PROGRAM, client);
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
      const i = found[0].user_id - base;
      assert.equal(found[0].user_id, t.user_id);
      assert.equal(found[0].country, `C${i}`);
      assert.equal(found[0].velocity_score, i / 10);
    }
    const errors = alerts.map((r) => JSON.parse(r.value)).filter((r) =>
      typeof r.user_id === "number" && r.user_id >= base && r.user_id < base + fraud.USERS
    );
    assert.equal(errors.length, rejected.length);
    for (const e of errors) assert.equal(e._error_step, "fraud-score/detect.process");
    const placement = JSON.parse(status.summaryJson).placement;
    const python = placement.groups.find((g: { requires: string[] }) =>
      g.requires.includes("python")
    );
    const consumer = placement.groups.find((g: { stages: string[] }) =>
      g.stages.includes("FraudDetection.0")
    );
    assert.notEqual(python.worker, consumer.worker, "the plugin ran on the other host");
  } finally {
    for (const node of cluster.nodes) await node.stop();
    await s.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
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
