/**
 * Real `heddle cluster` processes on the namespaces of `_netns.ts`, for the tests that run
 * workflows across hosts (cluster_run.test.ts, recovery.test.ts) and the recovery benchmark:
 * a control plane on the first node and a worker on each other, the CLI on the host as the
 * client, the quickstart's outputs read back, and a one-host `heddle run` to compare with.
 */
import assert from "node:assert/strict";
import { NetnsCluster, type NetnsNode, type NodeProcess } from "./_netns.ts";
import { quickstartCopy, quickstartEnv } from "../_quickstart.ts";
import { announced, cli, ended, heddle, logLines, root } from "./_heddle.ts";

export { cli, ended, logLines };

/** The quickstart's outputs in `dir`, lines sorted, the directory's name replaced. */
export async function outputs(dir: string): Promise<Record<string, string[]>> {
  const found: Record<string, string[]> = {};
  for await (const entry of Deno.readDir(`${dir}/data/out`)) {
    // A worker killed while writing leaves its unpublished temporary file behind.
    if (entry.name.includes(".heddle-tmp-")) continue;
    const text = await Deno.readTextFile(`${dir}/data/out/${entry.name}`);
    found[entry.name] = text.replaceAll(dir, "DIR").split("\n").filter((l) => l).sort();
  }
  return found;
}

/** The port the control plane listens on in its node (fixed, so that it restarts there). */
const CONTROL_PORT = 7447;

export interface Started {
  control: string;
  /** The control plane's process, and how to start it again on the same state and address. */
  cp: NodeProcess;
  restartControl(): Promise<NodeProcess>;
  /** Each worker's node, process, control address and Flight address. */
  workers: { node: NetnsNode; process: NodeProcess; address: string; flight: string }[];
}

/**
 * A control plane on the first node and a worker on each other node, sharing one token;
 * `controlArgs` are added to the control plane's arguments (`--worker-timeout`).
 */
export async function startCluster(
  cluster: NetnsCluster,
  dir: string,
  token: string,
  env: Record<string, string> = quickstartEnv,
  controlArgs: string[] = [],
): Promise<Started> {
  const [first, ...rest] = cluster.nodes;
  const common = ["--token-file", token, "--insecure", "--output", "json"];
  const startControl = async () => {
    const cp = first.spawn([
      ...heddle,
      "cluster",
      "--control-plane",
      "--listen",
      `${first.address}:${CONTROL_PORT}`,
      "--state",
      `${dir}/state-cp`,
      ...controlArgs,
      ...common,
    ], { cwd: root, env });
    return { cp, control: await announced(cp, "control plane") };
  };
  const { cp, control } = await startControl();
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
    ], { cwd: root, env });
    const address = await announced(process, "worker");
    workers.push({ node, process, address, flight: await announced(process, "flight") });
  }
  const restartControl = async () => (await startControl()).cp;
  return { control, cp, restartControl, workers };
}

/** The plan of `file`'s workflow once `workers` workers registered (the control plane places it). */
export async function planOnBoth(file: string, client: string[], workers = 2): Promise<Plan> {
  for (let i = 0;; i++) {
    const plan = await cli(["inspect", "--plan", file, ...client]) as Plan;
    if (new Set(plan.stages.map((s) => s.worker)).size === workers) return plan;
    assert.ok(i < 100, `the ${workers} workers never registered`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface Plan {
  stages: { id: string; label: string; worker: string }[];
  edges: { crossesHosts: boolean }[];
}

/** The quickstart copy in `dir` run on one host with `heddle run`. */
export async function runAlone(dir: string): Promise<void> {
  const single = await new Deno.Command(heddle[0], {
    args: [...heddle.slice(1), "run", `${dir}/quickstart.he`],
    env: quickstartEnv,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(single.code, 0, new TextDecoder().decode(single.stderr));
}

/** The quickstart's transactions and `extra` generated ones after them. */
export async function moreTransactions(dirs: string[], extra: number): Promise<void> {
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

/** Bytes a node's interface sent and received so far (its side of the veth). */
export async function interfaceBytes(node: NetnsNode): Promise<number> {
  const output = await new Deno.Command("ip", {
    args: ["netns", "exec", node.namespace, "ip", "-j", "-s", "link", "show", "eth0"],
    stdout: "piped",
  }).output();
  const [link] = JSON.parse(new TextDecoder().decode(output.stdout));
  return link.stats64.rx.bytes + link.stats64.tx.bytes;
}

/**
 * Rewrites the quickstart in `dir` so that its settled payments pass a step that holds each
 * batch until `${dir}/gate` exists (`faulty.run`'s `wait_for`), with a timeout long enough
 * never to fire while the test holds it.
 */
export async function holdQuickstart(dir: string): Promise<string> {
  const path = `${dir}/quickstart.he`;
  const text = await Deno.readTextFile(path);
  const held = text
    .replace(
      'import "ts-enrich/enrich" enrich\n',
      'import "ts-enrich/enrich" enrich\nimport "faulty/steps" faulty\n' +
        `step hold = faulty.run { wait_for: "${dir}/gate" } retry { attempts: 1, timeout: 10m }\n`,
    )
    .replace(
      "select {tx_id, user_id, amount, merchant, ts}",
      "select {tx_id, user_id, amount, merchant, ts, n = tx_id}",
    )
    .replace("  | to_cents\n", "  | to_cents\n  | hold\n");
  assert.notEqual(held, text);
  await Deno.writeTextFile(path, held);
  return `${dir}/gate`;
}

/** Two copies of the held quickstart with `extra` more transactions; the second's gate open. */
export async function heldCopies(extra: number) {
  const dir = await quickstartCopy();
  const alone = await quickstartCopy();
  await moreTransactions([dir, alone], extra);
  const gate = await holdQuickstart(dir);
  await Deno.writeTextFile(await holdQuickstart(alone), "");
  return { dir, alone, gate };
}

/** Waits (three minutes at most) until `check` holds for the run's status. */
export async function until(
  runId: string,
  client: string[],
  what: string,
  check: (status: { status: string; worker: string; summaryJson: string }) => boolean,
) {
  const deadline = Date.now() + 180_000;
  while (true) {
    const status = await cli(["workflow", "status", runId, ...client]) as {
      status: string;
      worker: string;
      summaryJson: string;
      error: string;
    };
    if (check(status)) return status;
    const last = JSON.stringify(status);
    assert.ok(["pending", "running"].includes(status.status), `ended before: ${what} (${last})`);
    assert.ok(Date.now() < deadline, `never: ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Whether some stage of the run has read rows (its counters reached the control plane). */
export function moving(status: { summaryJson: string }): boolean {
  const stages = JSON.parse(status.summaryJson).stages ?? {};
  return Object.values(stages).some((s) => Number((s as { rowsOut?: number }).rowsOut) > 0);
}

/** What a test on a cluster running the quickstart gets (`onQuickstartCluster`). */
export interface QuickstartCluster {
  started: Started;
  client: string[];
  token: string;
  plan: Plan;
}

/**
 * A 3-node cluster with the quickstart copy in `dir` deployed and both workers registered;
 * after `fn` the nodes are stopped and `dir` and `alone` removed.
 */
export async function onQuickstartCluster(
  dir: string,
  alone: string,
  fn: (on: QuickstartCluster) => Promise<void>,
): Promise<void> {
  await using cluster = await NetnsCluster.create(3);
  try {
    const token = `${dir}/token`;
    await Deno.writeTextFile(token, crypto.randomUUID() + "\n", { mode: 0o600 });
    const started = await startCluster(cluster, dir, token);
    const client = ["--server", started.control, "--token-file", token];
    await cli(["workflow", "deploy", `${dir}/quickstart.he`, ...client]);
    const plan = await planOnBoth(`${dir}/quickstart.he`, client);
    await fn({ started, client, token, plan });
  } finally {
    for (const node of cluster.nodes) await node.stop();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(alone, { recursive: true });
  }
}

/** Starts a run of the quickstart; its id. */
export async function startQuickstart(client: string[]): Promise<string> {
  const run = await cli(["workflow", "start", "Quickstart", ...client]) as {
    runs: { id: string }[];
  };
  return run.runs[0].id;
}

/** The run ended `succeeded` with the outputs of a one-host `heddle run` of `alone`. */
export async function succeededAsAlone(
  status: { status: string; error: string },
  dir: string,
  alone: string,
): Promise<void> {
  assert.equal(status.status, "succeeded", status.error);
  await runAlone(alone);
  assert.deepEqual(await outputs(dir), await outputs(alone));
}
