/**
 * The cluster rows about the control plane (issue 10): how many bytes it moves for a run
 * whose data crosses hosts (it must not grow with the data: batches go worker to worker over
 * Flight), and how long a run takes to be placed again after a worker dies (SIGKILL: its
 * stream breaks) or freezes (SIGSTOP: silent until `--worker-timeout`, 10 s by default).
 *
 * Real `heddle cluster` processes on four network namespaces (tests/cluster): the control
 * plane on one, three workers on the others. The bytes are the control plane's veth
 * counters over a run, with nobody asking it anything meanwhile (the end of the run is seen
 * from its output file), so they hold the run's deploy-free traffic: the start, the parts
 * sent to workers, their reports, and the workers' heartbeats, which are taken out at the
 * rate measured with no run (a larger run lasts longer). The goal (flat: the largest run
 * within twice the smallest's bytes) is a check: a miss is a FAILED note. The recovery run
 * is the quickstart held by a gated step (tests/cluster/recovery.test.ts), so it is mid-run by
 * construction; its outputs are checked against a one-host run.
 */
import assert from "node:assert/strict";
import {
  cli,
  ended,
  heldCopies,
  interfaceBytes,
  logLines,
  moving,
  NetnsCluster,
  outputs,
  planOnBoth,
  runAlone,
  startCluster,
  startQuickstart,
  until,
} from "../tests/cluster/mod.ts";
import { type BenchRow, row } from "./_report.ts";

export interface ClusterRecoveryOptions {
  /** Megabytes of CSV crossing hosts per run, one row each; the first is the baseline. */
  sizes: number[];
  log: (line: string) => void;
}

/** The recovery goal of issue 10: a dead worker's stages run again within 15 s. */
const RECOVERY_GOAL_S = 15;
/** The largest run's control-plane bytes may be this many times the smallest's (flat). */
const FLAT_FACTOR = 2;
/** How long the control plane's idle traffic (heartbeats) is measured. */
const IDLE_WINDOW_MS = 10_000;
/** Bytes of one CSV row of the bytes program (an id and a 1,000-character string). */
const ROW_BYTES = 1_000;

/** One workflow per size: a file crosses to the plugin's worker and is counted. */
function bytesProgram(sizes: number[]): string {
  const workflows = sizes.map((mb) => `
workflow Bytes${mb} {
  file.read { path: "data/wide-${mb}.csv", format: "csv" }
  | faulty.run {}
  | (
    from input
    aggregate { rows = count this }
  )
  | file.write { path: "data/counted/${mb}.csv", format: "csv" }
}
`);
  return `import "fhub/file" file\nimport "faulty/steps" faulty\n${workflows.join("")}`;
}

/** Writes `megabytes` of `n,pad` rows; returns the row count. */
async function writeWide(path: string, megabytes: number): Promise<number> {
  const rows = Math.max(1, Math.round((megabytes * 1e6) / (ROW_BYTES + 8)));
  const pad = "x".repeat(ROW_BYTES);
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  await file.write(encoder.encode("n,pad\n"));
  for (let start = 0; start < rows; start += 1000) {
    const lines = [];
    for (let n = start; n < Math.min(rows, start + 1000); n++) lines.push(`${n},${pad}\n`);
    const bytes = encoder.encode(lines.join(""));
    for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
  }
  return rows;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

export async function benchClusterRecovery(
  o: ClusterRecoveryOptions,
): Promise<{ rows: BenchRow[]; notes: string[] }> {
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  const { dir, alone, gate } = await heldCopies(20_000);
  try {
    const counts = new Map<number, number>();
    for (const mb of o.sizes) counts.set(mb, await writeWide(`${dir}/data/wide-${mb}.csv`, mb));
    await Deno.writeTextFile(`${dir}/bytes.he`, bytesProgram(o.sizes));
    await using cluster = await NetnsCluster.create(4);
    const token = `${dir}/token`;
    await Deno.writeTextFile(token, crypto.randomUUID() + "\n", { mode: 0o600 });
    o.log("cluster: control plane and three workers");
    const started = await startCluster(cluster, dir, token);
    const client = ["--server", started.control, "--token-file", token];
    await cli(["workflow", "deploy", `${dir}/bytes.he`, ...client]);
    await cli(["workflow", "deploy", `${dir}/quickstart.he`, ...client]);
    await planOnBoth(`${dir}/quickstart.he`, client, 3);
    const cp = cluster.nodes[0];

    // The control plane's traffic while no run is live: the workers' heartbeats (each
    // re-registers every 2 s). It goes on during a run too, and a larger run lasts longer,
    // so it is taken out of each run's bytes at this rate.
    const idleBefore = await interfaceBytes(cp);
    const idleAt = performance.now();
    await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
    const idleRate = ((await interfaceBytes(cp)) - idleBefore) /
      ((performance.now() - idleAt) / 1000);

    // Control-plane bytes per run, as the data crossing hosts grows.
    const measured: {
      mb: number;
      raw: number;
      cp: number;
      workers: number;
      seconds: number;
      batches: number;
    }[] = [];
    for (const mb of o.sizes) {
      o.log(`cluster: control-plane bytes, ${mb} MB crossing hosts`);
      const before = await interfaceBytes(cp);
      const workersBefore = await Promise.all(started.workers.map((w) => interfaceBytes(w.node)));
      const startedAt = performance.now();
      const run = await cli(["workflow", "start", `Bytes${mb}`, ...client]) as {
        runs: { id: string }[];
      };
      const out = `${dir}/data/counted/${mb}.csv`;
      while (!(await exists(out))) await new Promise((r) => setTimeout(r, 100));
      const seconds = (performance.now() - startedAt) / 1000;
      const raw = (await interfaceBytes(cp)) - before;
      const workerBytes = (await Promise.all(started.workers.map((w) => interfaceBytes(w.node))))
        .reduce((sum, b, i) => sum + b - workersBefore[i], 0) - raw;
      const status = await ended(run.runs[0].id, client);
      assert.equal(status.status, "succeeded", status.error);
      assert.equal(
        (await Deno.readTextFile(out)).trim().split("\n")[1],
        String(counts.get(mb)),
        "every row crossed and was counted",
      );
      const stages = Object.values(
        JSON.parse(status.summaryJson).stages as Record<string, { batches: number }>,
      );
      measured.push({
        mb,
        raw,
        cp: Math.max(0, raw - idleRate * seconds),
        workers: workerBytes,
        seconds,
        batches: Math.max(...stages.map((s) => s.batches)),
      });
    }
    const base = measured[0];
    const largest = measured[measured.length - 1];
    const flat = largest.cp <= FLAT_FACTOR * base.cp;
    for (const m of measured) {
      const goal = m !== largest || m === base
        ? undefined
        : flat
        ? `goal met: at most ${FLAT_FACTOR}x the ${base.mb} MB run's (flat as the data grows)`
        : `FAILED: ${(m.cp / 1000).toFixed(0)} KB is more than ${FLAT_FACTOR}x the ` +
          `${base.mb} MB run's ${(base.cp / 1000).toFixed(0)} KB: the control plane's ` +
          `traffic grows with the data`;
      rows.push(row(`cluster.control-plane.bytes.${m.mb}MB`, m.cp / 1000, "KB", base.cp / 1000, {
        baselineName: `the ${base.mb} MB run`,
        note: [
          `${m.batches} batches, ${m.seconds.toFixed(1)} s, ${(m.raw / 1000).toFixed(0)} KB ` +
          `with heartbeats`,
          goal,
        ].filter((n) => n).join("; "),
      }));
    }
    notes.push(
      "control-plane bytes: its veth's rx+tx over one run (start to output published), less " +
        `the heartbeats' ${(idleRate / 1000).toFixed(2)} KB/s measured over ` +
        `${IDLE_WINDOW_MS / 1000} s with no run; the workers moved ` +
        measured.map((m) =>
          `${(m.workers / 1e6).toFixed(1)} MB for ${m.mb} MB in ${m.seconds.toFixed(1)} s`
        ).join(", ") +
        " (their veths, the control plane's share taken out)",
    );

    // Time from a worker's death to its groups being placed again, killed then frozen.
    o.log("cluster: recovery after SIGKILL and SIGSTOP of a worker");
    const runId = await startQuickstart(client);
    await until(runId, client, "rows moved", (s) => s.status === "running" && moving(s));
    const placedOn = async () =>
      (await cli(["workflow", "status", runId, ...client]) as { worker: string }).worker
        .split(",");
    const victim = async (signal: Deno.Signal) => {
      const [id] = await placedOn();
      const pid = Number(id.split("-").pop());
      const at = Date.now();
      Deno.kill(pid, signal);
      await until(runId, client, `placed again without ${id}`, (s) => !s.worker.includes(id));
      return { pid, at };
    };
    const killed = await victim("SIGKILL");
    const frozen = await victim("SIGSTOP");
    Deno.kill(frozen.pid, "SIGCONT");
    await Deno.writeTextFile(gate, "");
    const status = await ended(runId, client);
    assert.equal(status.status, "succeeded", status.error);
    await runAlone(alone);
    assert.deepEqual(await outputs(dir), await outputs(alone), "no row lost or doubled");
    // When the control plane placed the run again: its own log lines' times, so the CLI's
    // polling does not count.
    const logs = (await logLines(runId, client)) as unknown as { time: string; message: string }[];
    const placed = (n: number) =>
      Date.parse(logs.find((l) => l.message.startsWith(`placed again (placement ${n})`))!.time);
    const seconds = {
      sigkill: (placed(2) - killed.at) / 1000,
      sigstop: (placed(3) - frozen.at) / 1000,
    };
    const goal = { baselineName: `goal: ${RECOVERY_GOAL_S} s (issue 10)` };
    rows.push(
      row("cluster.recovery.sigkill", seconds.sigkill, "s", RECOVERY_GOAL_S, goal),
      row("cluster.recovery.sigstop", seconds.sigstop, "s", RECOVERY_GOAL_S, {
        ...goal,
        note: "includes the default --worker-timeout of 10 s",
      }),
    );
    notes.push(
      "recovery: from the signal to the control plane's `placed again` log line (the new " +
        "placement's parts are being started), the quickstart held " +
        "mid-run by a gated step; the run then ended succeeded with a one-host run's outputs",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(alone, { recursive: true });
  }
  return { rows, notes };
}
