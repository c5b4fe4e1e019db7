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
import { clusterTest } from "./_netns.ts";
import {
  ended,
  heldCopies,
  moving,
  onQuickstartCluster,
  resumedToEnd,
  startHeld,
  startQuickstart,
  succeededAsAlone,
  until,
} from "./_heddle_cluster.ts";
import { connectWorker } from "../../runtime/protocol/mod.ts";

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

clusterTest(
  "the control plane killed mid-run and restarted: workers come back, the run is resumed and loses no row",
  async () => {
    const held = await heldCopies(20_000);
    await onQuickstartCluster(held.dir, held.alone, async ({ started, client }) => {
      // Rows are moving, and the held step keeps the run from ending.
      const runId = await startHeld(client);
      started.cp.child.kill("SIGKILL");
      await started.cp.child.status;
      await started.restartControl();
      // Not failed, not done: adopted, and placed again once both workers registered again.
      await resumedToEnd(runId, client, held);
    });
  },
);

clusterTest(
  "a worker frozen with SIGSTOP is declared dead, its groups run elsewhere, and its late part is fenced off",
  async () => {
    const { dir, alone, gate } = await heldCopies(20_000);
    let frozen = 0;
    try {
      // The default --worker-timeout (10 s): shorter ones flap on a loaded machine.
      await onQuickstartCluster(dir, alone, async ({ started, client, token, plan }) => {
        const runId = await startQuickstart(client);
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
        await succeededAsAlone(status, dir, alone);
        assert.equal(status.worker, survivor, "only the survivor's placement counted");
      });
    } finally {
      if (frozen) Deno.kill(frozen, "SIGCONT");
    }
  },
);
