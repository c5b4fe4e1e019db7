/**
 * A worker stopped with SIGTERM leaves its control plane before its servers close: the
 * control plane closes its client to the worker, places nothing more on it, and shows it
 * as left, not dead. Before, the worker's servers sent GOAWAY to the control plane's live
 * client, and Deno 2.9.6's node:http2 could crash the control plane with SIGSEGV
 * (denoland/deno#36788; docs/cluster.md, "Failures"). Real `heddle cluster` processes on
 * loopback: one control plane, and a worker started, used by a run (so that the control
 * plane holds a live connection to it) and stopped, several times over.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import { freePort, writeCopyProgram, writeNumbers } from "../e2e/_fixtures.ts";
import { type LoopbackNode, startNode, stopNode } from "./_loopback.ts";

const ROUNDS = 4;

Deno.test("a worker stopped first leaves its control plane, which stays up and answers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "heddle-leave-" });
  const state = `${dir}/state-cp`;
  const listen = `127.0.0.1:${freePort()}`;
  // A worker timeout far beyond the test: only its leave can take the worker out.
  const control = startNode([
    "--control-plane",
    "--listen",
    listen,
    "--state",
    state,
    "--worker-timeout",
    "600",
  ]);
  let worker: LoopbackNode | null = null;
  try {
    await control.stderr.waitFor(/control plane listening on/);
    await writeNumbers(dir, 50);
    await writeCopyProgram(dir, "copy.he", "Copy", "(\n    from input\n    select {n}\n  )");
    const server = ["--server", listen, "--state", state];
    const deployed = await heddle(["workflow", "deploy", ...server, `${dir}/copy.he`]);
    assert.equal(deployed.code, 0, deployed.stderr);
    for (let round = 1; round <= ROUNDS; round++) {
      worker = startNode([
        "--worker",
        "--join",
        listen,
        "--allow-path",
        dir,
        "--state",
        `${dir}/state-w`,
        "--token-file",
        `${state}/token`,
      ]);
      await worker.stderr.waitFor(/worker listening on/);
      const id = `${Deno.hostname()}-${worker.child.pid}`;
      const run = await heddle(["workflow", "start", "--wait", ...server, "Copy"]);
      assert.equal(run.code, 0, `round ${round}: ${run.stderr}`);

      const stopped = await stopNode(worker);
      worker = null;
      assert.equal(stopped.code, 0, `round ${round}: the worker exits cleanly`);
      await control.stderr.waitFor(new RegExp(`worker ${id} left\\n`));
      assert.doesNotMatch(control.stderr.text, /declared dead/);

      // The control plane is up, answers, and places nothing on the worker that left.
      const runs = await heddle(["workflow", "runs", "--output", "json", ...server]);
      assert.equal(runs.code, 0, `round ${round}: ${runs.stderr}\n${control.stderr.text}`);
      assert.equal(JSON.parse(runs.stdout).runs.length, round);
      const orphan = await heddle(["workflow", "start", ...server, "Copy"]);
      assert.equal(orphan.code, 1, orphan.stdout);
      assert.match(orphan.stderr, /no worker is available/);
    }
    const status = await stopNode(control);
    assert.equal(status.code, 0, `the control plane ended cleanly:\n${control.stderr.text}`);
  } finally {
    if (worker) await stopNode(worker);
    // Only if the test failed before stopping it: the control plane ends with the test.
    if (!control.stderr.text.includes("stopping")) await stopNode(control);
    await Deno.remove(dir, { recursive: true });
  }
});
