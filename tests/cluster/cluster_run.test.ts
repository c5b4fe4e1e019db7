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

const root = new URL("../../", import.meta.url).pathname;
const heddle = [Deno.execPath(), "run", "-A", `${root}cli/main.ts`];

/** The address the node announces for `role` (`--output json` lines on stdout). */
async function announced(process: NodeProcess, role: string): Promise<string> {
  while (true) {
    const line = await process.lines.next();
    if (line.done) throw new Error(`the node exited before announcing its ${role}`);
    const { role: r, address } = JSON.parse(line.value);
    if (r === role) return address;
  }
}

/** `heddle ARGS` on the host (the client side), as JSON. */
async function cli(args: string[], env: Record<string, string> = quickstartEnv): Promise<unknown> {
  const output = await new Deno.Command(heddle[0], {
    args: [...heddle.slice(1), ...args, "--output", "json"],
    env,
    cwd: root,
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `heddle ${args.join(" ")}: ${stderr}`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

/** The quickstart's outputs in `dir`, lines sorted, the directory's name replaced. */
async function outputs(dir: string): Promise<Record<string, string[]>> {
  const found: Record<string, string[]> = {};
  for await (const entry of Deno.readDir(`${dir}/data/out`)) {
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
async function startCluster(cluster: NetnsCluster, dir: string, token: string): Promise<Started> {
  const [first, ...rest] = cluster.nodes;
  const common = ["--token-file", token, "--insecure", "--output", "json"];
  const cp = first.spawn([
    ...heddle,
    "cluster",
    "--control-plane",
    "--listen",
    `${first.address}:0`,
    "--state",
    `${dir}/state-cp`,
    ...common,
  ], { cwd: root, env: quickstartEnv });
  const control = await announced(cp, "control plane");
  const workers = [];
  for (const [i, node] of rest.entries()) {
    const process = node.spawn([
      ...heddle,
      "cluster",
      "--worker",
      "--join",
      control,
      "--worker-listen",
      `${node.address}:0`,
      "--flight-listen",
      `${node.address}:0`,
      "--allow-path",
      dir,
      "--state",
      `${dir}/state-w${i}`,
      ...common,
    ], { cwd: root, env: quickstartEnv });
    await announced(process, "worker");
    workers.push({ node, process, flight: await announced(process, "flight") });
  }
  return { control, workers };
}

clusterTest(
  "the quickstart runs spread over two worker hosts, rows identical to one host",
  async () => {
    const dir = await quickstartCopy();
    const alone = await quickstartCopy();
    await using cluster = await NetnsCluster.create(3);
    try {
      const token = `${dir}/token`;
      await Deno.writeTextFile(token, crypto.randomUUID() + "\n", { mode: 0o600 });
      const { control, workers } = await startCluster(cluster, dir, token);
      const client = ["--server", control, "--token-file", token];
      await cli(["workflow", "deploy", `${dir}/quickstart.he`, ...client]);
      // Workers register once they listen; the plan names both when both did.
      let plan: { stages: { id: string; worker: string }[]; edges: { crossesHosts: boolean }[] };
      for (let i = 0;; i++) {
        plan = await cli(["inspect", "--plan", `${dir}/quickstart.he`, ...client]) as typeof plan;
        if (new Set(plan.stages.map((s) => s.worker)).size === 2) break;
        assert.ok(i < 100, "both workers never registered");
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(plan.stages.every((s) => s.worker), "every stage has a worker");
      assert.ok(plan.edges.some((e) => e.crossesHosts), "an edge crosses hosts");

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
      const single = await new Deno.Command(heddle[0], {
        args: [...heddle.slice(1), "run", `${alone}/quickstart.he`],
        env: quickstartEnv,
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(single.code, 0, new TextDecoder().decode(single.stderr));
      const spread = await outputs(dir);
      const expected = await outputs(alone);
      assert.deepEqual(spread, expected);
      assert.ok(Object.keys(expected).length >= 3);
      for (const w of workers) await w.node.stop();
    } finally {
      for (const node of cluster.nodes) await node.stop();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(alone, { recursive: true });
    }
  },
);
