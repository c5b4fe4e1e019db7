/**
 * Failures a cluster recovers from without losing or doubling a row: the control plane
 * killed with SIGKILL mid-run and started again (the run is resumed, not failed or marked
 * done), and a worker frozen with SIGSTOP (alive, its sockets open, but silent) that is
 * declared dead, its groups placed again, and whose stale part is stopped when it wakes.
 *
 * The runs are mid-run by construction, not by timing: the quickstart gets a step of the
 * `faulty` test plugin that holds every batch until a gate file exists, and the test
 * creates it only once the failure has been dealt with. The outputs must equal a one-host
 * `heddle run` of the same program.
 */
import assert from "node:assert/strict";
import { clusterTest, NetnsCluster } from "./_netns.ts";
import { quickstartCopy } from "../_quickstart.ts";
import {
  cli,
  cliText,
  ended,
  moreTransactions,
  outputs,
  planOnBoth,
  runAlone,
  startCluster,
} from "./_heddle_cluster.ts";
import { connectWorker } from "../../runtime/protocol/mod.ts";

/**
 * Rewrites the quickstart in `dir` so that its settled payments pass a step that holds each
 * batch until `${dir}/gate` exists (`faulty.run`'s `wait_for`), with a timeout long enough
 * never to fire while the test holds it.
 */
async function holdQuickstart(dir: string): Promise<string> {
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
async function heldCopies(extra: number) {
  const dir = await quickstartCopy();
  const alone = await quickstartCopy();
  await moreTransactions([dir, alone], extra);
  const gate = await holdQuickstart(dir);
  await Deno.writeTextFile(await holdQuickstart(alone), "");
  return { dir, alone, gate };
}

/** Waits (three minutes at most) until `check` holds for the run's status. */
async function until(
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

/**
 * Waits (two minutes at most) until the worker at `address` runs nothing: a part whose
 * control stream is gone stops.
 */
async function idle(address: string, tokenFile: string): Promise<void> {
  const token = (await Deno.readTextFile(tokenFile)).trim();
  const worker = connectWorker(address, { token, tls: null });
  try {
    const deadline = Date.now() + 120_000;
    while ((await worker.health().catch(() => null))?.activeRuns !== 0) {
      assert.ok(Date.now() < deadline, `the worker at ${address} still runs a stale part`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    worker.close();
  }
}

/** Whether some stage of the run has read rows (its counters reached the control plane). */
function moving(status: { summaryJson: string }): boolean {
  const stages = JSON.parse(status.summaryJson).stages ?? {};
  return Object.values(stages).some((s) => Number((s as { rowsOut?: number }).rowsOut) > 0);
}

clusterTest(
  "the control plane killed mid-run and restarted: workers come back, the run is resumed and loses no row",
  async () => {
    const { dir, alone, gate } = await heldCopies(20_000);
    await using cluster = await NetnsCluster.create(3);
    try {
      const token = `${dir}/token`;
      await Deno.writeTextFile(token, crypto.randomUUID() + "\n", { mode: 0o600 });
      const started = await startCluster(cluster, dir, token);
      const client = ["--server", started.control, "--token-file", token];
      await cli(["workflow", "deploy", `${dir}/quickstart.he`, ...client]);
      await planOnBoth(`${dir}/quickstart.he`, client);
      const run = await cli(["workflow", "start", "Quickstart", ...client]) as {
        runs: { id: string }[];
      };
      const runId = run.runs[0].id;
      // Rows are moving, and the held step keeps the run from ending.
      await until(runId, client, "rows moved", (s) => s.status === "running" && moving(s));

      started.cp.child.kill("SIGKILL");
      await started.cp.child.status;
      await started.restartControl();
      // Not failed, not done: adopted, and placed again once both workers registered again.
      for (let i = 0;; i++) {
        const status = await cli(["workflow", "status", runId, ...client]) as {
          status: string;
          error: string;
        };
        assert.equal(status.status, "running", `the restarted control plane: ${status.error}`);
        const logs = (await cliText(["workflow", "logs", runId, ...client])).split("\n")
          .filter((l) => l).map((l) => JSON.parse(l).message as string);
        if (logs.some((l) => l.includes("resumed after a control plane restart"))) break;
        assert.ok(i < 300, `the run was never resumed:\n${logs.join("\n")}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const resumed = await cli(["workflow", "status", runId, ...client]) as { worker: string };
      assert.equal(resumed.worker.split(",").length, 2, "resumed on both workers");
      await planOnBoth(`${dir}/quickstart.he`, client);

      await Deno.writeTextFile(gate, "");
      const status = await ended(runId, client);
      assert.equal(status.status, "succeeded", status.error);
      await runAlone(alone);
      assert.deepEqual(await outputs(dir), await outputs(alone));
    } finally {
      for (const node of cluster.nodes) await node.stop();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(alone, { recursive: true });
    }
  },
);

clusterTest(
  "a worker frozen with SIGSTOP is declared dead, its groups run elsewhere, and its late part is fenced off",
  async () => {
    const { dir, alone, gate } = await heldCopies(20_000);
    await using cluster = await NetnsCluster.create(3);
    let frozen = 0;
    try {
      const token = `${dir}/token`;
      await Deno.writeTextFile(token, crypto.randomUUID() + "\n", { mode: 0o600 });
      // The default --worker-timeout (10 s): shorter ones flap on a loaded machine.
      const started = await startCluster(cluster, dir, token);
      const client = ["--server", started.control, "--token-file", token];
      await cli(["workflow", "deploy", `${dir}/quickstart.he`, ...client]);
      const plan = await planOnBoth(`${dir}/quickstart.he`, client);
      const run = await cli(["workflow", "start", "Quickstart", ...client]) as {
        runs: { id: string }[];
      };
      const runId = run.runs[0].id;
      await until(runId, client, "rows moved", (s) => s.status === "running" && moving(s));

      // The worker holding the gated step freezes: its process and sockets stay, silent.
      const held = plan.stages.find((s) => s.label === "hold")!.worker;
      const survivor = plan.stages.map((s) => s.worker).find((w) => w !== held)!;
      frozen = Number(held.split("-").pop());
      const { address } = started.workers.find((w) => w.process.child.pid === frozen)!;
      Deno.kill(frozen, "SIGSTOP");
      await until(runId, client, "placed on the survivor", (s) => s.worker === survivor);
      Deno.kill(frozen, "SIGCONT");
      frozen = 0;

      // Awake again, the worker learns its stream was cancelled and holds no part of the
      // run any more.
      await idle(address, token);

      await Deno.writeTextFile(gate, "");
      const status = await ended(runId, client);
      const logs = await cliText(["workflow", "logs", runId, ...client]);
      assert.equal(status.status, "succeeded", `${status.error}\n${logs}`);
      assert.equal(status.worker, survivor, "only the survivor's placement counted");
      await runAlone(alone);
      assert.deepEqual(await outputs(dir), await outputs(alone));
    } finally {
      if (frozen) Deno.kill(frozen, "SIGCONT");
      for (const node of cluster.nodes) await node.stop();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(alone, { recursive: true });
    }
  },
);
