/**
 * Real `heddle cluster` processes on the namespaces of `_netns.ts`, for the tests that run
 * workflows across hosts (cluster_run.test.ts, recovery.test.ts) and the recovery benchmark:
 * a control plane on the first node and a worker on each other, the CLI on the host as the
 * client, the quickstart's outputs read back, and a one-host `heddle run` to compare with.
 */
import assert from "node:assert/strict";
import { NetnsCluster, type NetnsNode, type NodeProcess } from "./_netns.ts";
import { quickstartCopy, quickstartEnv } from "../_quickstart.ts";
import { announced, cli, ended, heddle, logLines, root, workerCommand } from "./_heddle.ts";

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
  /** Every control plane's address and process, the first (the leader) first. */
  controls: { address: string; process: NodeProcess }[];
  /** Each worker's node, process, control address and Flight address. */
  workers: { node: NetnsNode; process: NodeProcess; address: string; flight: string }[];
}

/** How `startCluster` starts the control planes. */
export interface ClusterOptions {
  env?: Record<string, string>;
  /** Added to each control plane's arguments (`--worker-timeout`, `--leader-lease`). */
  controlArgs?: string[];
  /**
   * The control planes' `--state`: by default `DIR/state-cp`; a `postgres://` database lets
   * several share it (each then keeps its token and packages in `DIR/state-cpN`).
   */
  state?: string;
  /** Control planes, one per node from the first (default 1); workers join them all. */
  controlPlanes?: number;
}

/**
 * Control planes on the first nodes and a worker on each other node, sharing one token.
 * With several control planes the first leads: the others start once it answers.
 */
export async function startCluster(
  cluster: NetnsCluster,
  dir: string,
  token: string,
  options: ClusterOptions = {},
): Promise<Started> {
  const { env = quickstartEnv, controlArgs = [], controlPlanes = 1 } = options;
  const common = ["--token-file", token, "--insecure", "--output", "json"];
  const startControl = async (i: number) => {
    const node = cluster.nodes[i];
    const process = node.spawn([
      ...heddle,
      "cluster",
      "--control-plane",
      "--listen",
      `${node.address}:${CONTROL_PORT}`,
      "--state",
      options.state ?? `${dir}/state-cp`,
      ...controlArgs,
      ...common,
    ], {
      cwd: root,
      env: options.state ? { ...env, HEDDLE_STATE_DIR: `${dir}/state-cp${i}` } : env,
    });
    return { process, address: await announced(process, "control plane") };
  };
  const controls = [await startControl(0)];
  if (controlPlanes > 1) await leads(controls[0].address, token, env);
  for (let i = 1; i < controlPlanes; i++) controls.push(await startControl(i));
  const workers = [];
  for (const [i, node] of cluster.nodes.slice(controlPlanes).entries()) {
    const join = controls.map((c) => c.address).join(",");
    const process = node.spawn(
      workerCommand(join, node.address, dir, `${dir}/state-w${i}`, ...common),
      { cwd: root, env },
    );
    const address = await announced(process, "worker");
    workers.push({ node, process, address, flight: await announced(process, "flight") });
  }
  const restartControl = async () => (await startControl(0)).process;
  const [{ address: control, process: cp }] = controls;
  return { control, cp, restartControl, controls, workers };
}

/**
 * Waits (two minutes at most) until the control plane at `address` leads: it answers a call
 * instead of refusing it as a standby.
 */
export async function leads(
  address: string,
  token: string,
  env: Record<string, string> = quickstartEnv,
): Promise<void> {
  for (let i = 0;; i++) {
    const output = await new Deno.Command(heddle[0], {
      args: [...heddle.slice(1), "workflow", "list", "--server", address, "--token-file", token],
      env,
      cwd: root,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (output.success) return;
    const why = new TextDecoder().decode(output.stderr);
    assert.ok(i < 600, `the control plane at ${address} never led: ${why}`);
    await new Promise((r) => setTimeout(r, 200));
  }
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
  cluster: NetnsCluster;
  started: Started;
  client: string[];
  token: string;
  plan: Plan;
}

/**
 * A cluster with the quickstart copy in `dir` deployed and both workers registered (3
 * nodes; one more per further control plane); after `fn` the nodes are stopped and `dir`
 * and `alone` removed. `hostPorts` are host services the nodes reach at `127.0.0.1`.
 */
export async function onQuickstartCluster(
  dir: string,
  alone: string,
  fn: (on: QuickstartCluster) => Promise<void>,
  options: ClusterOptions & { hostPorts?: number[] } = {},
): Promise<void> {
  await using cluster = await NetnsCluster.create(2 + (options.controlPlanes ?? 1));
  try {
    if (options.hostPorts) await cluster.reachHostServices(options.hostPorts);
    const token = `${dir}/token`;
    await Deno.writeTextFile(token, crypto.randomUUID() + "\n", { mode: 0o600 });
    const started = await startCluster(cluster, dir, token, options);
    const client = ["--server", started.control, "--token-file", token];
    await cli(["workflow", "deploy", `${dir}/quickstart.he`, ...client]);
    const plan = await planOnBoth(`${dir}/quickstart.he`, client);
    await fn({ cluster, started, client, token, plan });
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

/** A run of the held quickstart (`heldCopies`), once rows moved: mid-run by construction. */
export async function startHeld(client: string[]): Promise<string> {
  const runId = await startQuickstart(client);
  await until(runId, client, "rows moved", (s) => s.status === "running" && moving(s));
  return runId;
}

/**
 * Waits until a control plane that restarted or took over resumed the run (its log says
 * so), the run staying `running` meanwhile (never failed, never done: a minute at most);
 * returns the workers it was placed on.
 */
export async function resumed(runId: string, client: string[]): Promise<string[]> {
  for (let i = 0;; i++) {
    const status = await cli(["workflow", "status", runId, ...client]) as {
      status: string;
      error: string;
    };
    assert.equal(status.status, "running", `the control plane now: ${status.error}`);
    const logs = (await logLines(runId, client)).map((l) => l.message);
    if (logs.some((l) => l.includes("resumed after a control plane restart"))) break;
    assert.ok(i < 300, `the run was never resumed:\n${logs.join("\n")}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const status = await cli(["workflow", "status", runId, ...client]) as { worker: string };
  return status.worker.split(",");
}

/**
 * After its control plane restarted or was taken over: the held run is resumed on both
 * workers, and once the gate opens ends `succeeded` with the outputs of a one-host run.
 */
export async function resumedToEnd(
  runId: string,
  client: string[],
  held: { dir: string; alone: string; gate: string },
): Promise<void> {
  assert.equal((await resumed(runId, client)).length, 2, "resumed on both workers");
  await planOnBoth(`${held.dir}/quickstart.he`, client);
  await Deno.writeTextFile(held.gate, "");
  await succeededAsAlone(await ended(runId, client), held.dir, held.alone);
}
