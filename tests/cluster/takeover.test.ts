/**
 * Two control planes on one PostgreSQL state database, each on its own host, and two
 * workers joined to both: the leader is killed with SIGKILL mid-run, the standby takes the
 * lease, and the run the dead leader had running is resumed (not failed) on the workers,
 * which follow the new leader by themselves, and ends with the outputs of a one-host run.
 *
 * Mid-run by construction, as in recovery.test.ts: the quickstart's held step keeps every
 * batch until the test creates the gate file, which it does only once the run was resumed.
 */
import { clusterTest } from "./_netns.ts";
import assert from "node:assert/strict";
import {
  heldCopies,
  leads,
  onQuickstartCluster,
  resumed,
  resumedToEnd,
  startHeld,
} from "./_heddle_cluster.ts";
import { requireService, serviceConfig } from "../services/mod.ts";
import { stateDatabase } from "../state/_fixtures.ts";

clusterTest(
  "PostgreSQL state: the leader killed mid-run, the standby takes over and resumes its run without losing a row",
  async () => {
    if (!(await requireService("postgres"))) return;
    await using db = await stateDatabase();
    const held = await heldCopies(20_000);
    await onQuickstartCluster(held.dir, held.alone, async ({ started, token }) => {
      const [leader, standby] = started.controls;
      const runId = await startHeld(["--server", leader.address, "--token-file", token]);
      const killed = Date.now();
      leader.process.child.kill("SIGKILL");
      await leader.process.child.status;
      // The standby leads once the 3 s lease expired; the workers follow it by themselves.
      await leads(standby.address, token);
      const next = ["--server", standby.address, "--token-file", token];
      assert.equal((await resumed(runId, next)).length, 2, "resumed on both workers");
      console.log(`the run was resumed ${Date.now() - killed} ms after the leader was killed`);
      await resumedToEnd(runId, next, held);
    }, {
      state: db.url,
      controlPlanes: 2,
      controlArgs: ["--leader-lease", "3"],
      hostPorts: [serviceConfig.postgres.port],
    });
  },
);
