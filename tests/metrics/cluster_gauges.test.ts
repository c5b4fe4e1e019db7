/**
 * A cluster control plane's `/metrics` exports the gauges of workers in other processes:
 * `heddle cluster --control-plane` (no worker of its own) and `heddle cluster --worker`
 * joined to it, two real processes talking gRPC on loopback. The worker's registry memory
 * and spill bytes (a small `--memory-budget` makes it spill) and its plugin's restarts
 * come back labelled with the worker's id, because the control plane asks each worker's
 * health at every scrape. Before, only workers sharing the control plane's process had them.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import { EXAMPLE_PLUGINS, freePort, writeCopyProgram, writeNumbers } from "../e2e/_fixtures.ts";
import { type LoopbackNode, startNode, stopNode } from "../cluster/_loopback.ts";
import { metricLine } from "./_scrape.ts";

const env = { HEDDLE_PATH: EXAMPLE_PLUGINS };
const start = (args: string[]) => startNode(args, env);

Deno.test({
  name: "a cluster control plane exports its remote worker's registry and plugin gauges",
  // Scrapes keep HTTP connections in the pool until the test ends.
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "heddle-cluster-gauges-" });
    const state = `${dir}/state-cp`;
    const listen = `127.0.0.1:${freePort()}`;
    const control = start([
      "--control-plane",
      "--listen",
      listen,
      "--state",
      state,
      "--ui-listen",
      "127.0.0.1:0",
    ]);
    let worker: LoopbackNode | null = null;
    try {
      const [, url] = await control.stderr.waitFor(/ui listening on (\S+)/);
      const token = (await Deno.readTextFile(`${state}/token`)).trim();
      worker = start([
        "--worker",
        "--join",
        listen,
        "--allow-path",
        dir,
        "--state",
        `${dir}/state-w`,
        "--token-file",
        `${state}/token`,
        "--memory-budget",
        "16KiB",
      ]);
      await worker.stderr.waitFor(/worker listening on/);
      const id = `${Deno.hostname()}-${worker.child.pid}`;
      const node = { origin: new URL(url).origin };
      const auth = { headers: { authorization: `Bearer ${token}` } };
      const gauge = (name: string, value = "\\d+") =>
        new RegExp(`^${name}\\{worker="${id}"\\} ${value}$`, "m");
      await metricLine(node, auth, gauge("heddle_worker_up", "1"));

      // A plugin that crashes on every batch: restarted on the worker for each retry.
      await writeNumbers(dir, 10);
      await writeCopyProgram(
        dir,
        "crash.he",
        "Crash",
        "faulty.run { crash: true } retry { attempts: 3, backoff: 10ms }",
      );
      // A slow step behind a fast source: batches wait in the worker's registry, past its
      // 16 KiB budget, while the run goes on.
      await Deno.mkdir(`${dir}/slow`);
      await writeNumbers(`${dir}/slow`, 100_000);
      await writeCopyProgram(dir, "slow.he", "Slow", "faulty.run { sleep_ms: 300 }", {
        input: "slow/numbers.csv",
        output: "slow/out.csv",
      });
      const server = ["--server", listen, "--state", state];
      for (const file of ["crash.he", "slow.he"]) {
        const deployed = await heddle(["workflow", "deploy", ...server, `${dir}/${file}`], { env });
        assert.equal(deployed.code, 0, deployed.stderr);
      }
      const crash = await heddle(["workflow", "start", "--wait", ...server, "Crash"]);
      assert.equal(crash.code, 1, "the run fails once every attempt crashed");
      const restarts = await metricLine(
        node,
        auth,
        new RegExp(
          `^heddle_plugin_restarts_total\\{worker="${id}",plugin="[^"]*faulty"\\} (\\d+)$`,
          "m",
        ),
      );
      assert.ok(Number(restarts.split(" ")[1]) >= 2, restarts);

      const slow = await heddle(["workflow", "start", "--output", "json", ...server, "Slow"]);
      assert.equal(slow.code, 0, slow.stderr);
      const runId = JSON.parse(slow.stdout).runs[0].id as string;
      await metricLine(node, auth, gauge("heddle_registry_memory_bytes", "[1-9]\\d*"));
      await metricLine(node, auth, gauge("heddle_registry_spill_bytes", "[1-9]\\d*"));
      await metricLine(node, auth, gauge("heddle_worker_active_runs", "1"));
      const stopped = await heddle(["workflow", "stop", ...server, runId]);
      assert.equal(stopped.code, 0, stopped.stderr);
    } finally {
      // The worker first: it leaves before its servers close, so the control plane's client
      // to it is closed by then (docs/cluster.md, "Failures"); the control plane stays up.
      if (worker) await stopNode(worker);
      await stopNode(control);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
