/**
 * `/metrics` scraped by a real Prometheus: after the quickstart runs on `heddle local`, a
 * PromQL query over Prometheus' HTTP API returns the rows the run wrote (the rows in its
 * output files) and the rows its handler received; the worker is up, and the registry's
 * gauges are exported. Real daemon, real files, real Prometheus.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import { toolTest } from "../_tools.ts";
import { EXAMPLE_PLUGINS } from "../e2e/_fixtures.ts";
import { deploy, startDaemon } from "../ui/_daemon.ts";
import { PROMETHEUS, startPrometheus } from "./_prometheus.ts";
import { metricLine } from "./_scrape.ts";

/** The ids and paths of the quickstart's sinks, from `heddle inspect --ir`. */
async function sinks(file: string): Promise<{ id: string; path: string; graph: string }[]> {
  const inspected = await heddle(["inspect", "--ir", "--output", "json", file], {
    env: { HEDDLE_PATH: EXAMPLE_PLUGINS },
  });
  assert.equal(inspected.code, 0, inspected.stderr);
  const ir = JSON.parse(inspected.stdout) as {
    graphs: { kind: string; stages: { id: string; kind: string; config: { path: string } }[] }[];
  };
  return ir.graphs.flatMap((g) =>
    g.stages.filter((s) => s.kind === "sink").map((s) => ({
      id: s.id,
      path: s.config.path,
      graph: g.kind,
    }))
  );
}

async function rowsIn(path: string): Promise<number> {
  const lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
  return path.endsWith(".csv") ? lines.length - 1 : lines.length;
}

/** The value of a PromQL query once it has one (Prometheus scrapes every second). */
async function valueOf(
  prometheus: Awaited<ReturnType<typeof startPrometheus>>,
  promql: string,
  expected: number,
): Promise<number> {
  const deadline = Date.now() + 30_000;
  let value = NaN;
  while (Date.now() < deadline) {
    const result = await prometheus.query(promql);
    value = result.length > 0 ? Number(result[0].value[1]) : NaN;
    if (value === expected) return value;
    await new Promise((r) => setTimeout(r, 500));
  }
  return value;
}

toolTest(
  "Prometheus scrapes /metrics: the rows the quickstart wrote, by PromQL",
  [PROMETHEUS],
  async () => {
    const daemon = await startDaemon();
    let prometheus: Awaited<ReturnType<typeof startPrometheus>> | null = null;
    try {
      assert.equal(await deploy(daemon, "quickstart.he"), 0);
      const started = await heddle(
        ["workflow", "start", "--output", "json", ...daemon.server, "Quickstart"],
      );
      assert.equal(started.code, 0, started.stderr);
      const id = JSON.parse(started.stdout).runs[0].id as string;
      const auth = { headers: { authorization: `Bearer ${daemon.token}` } };
      let status = "running";
      while (["pending", "running", "draining"].includes(status)) {
        await new Promise((r) => setTimeout(r, 200));
        status = (await (await fetch(`${daemon.origin}/api/runs/${id}`, auth)).json()).run.status;
      }
      assert.equal(status, "succeeded");

      prometheus = await startPrometheus(new URL(daemon.origin).host, daemon.token);
      const all = await sinks(`${daemon.dir}/quickstart.he`);
      const main = all.filter((s) => s.graph === "workflow");
      let written = 0;
      for (const s of main) written += await rowsIn(`${daemon.dir}/${s.path}`);
      const stages = main.map((s) => s.id.replace(".", "\\\\.")).join("|");
      const query = `sum(heddle_rows_out_total{workflow="Quickstart",stage=~"${stages}"})`;
      assert.equal(await valueOf(prometheus, query, written), written, query);

      const handled = await rowsIn(`${daemon.dir}/data/out/rejected.jsonl`);
      const quarantined =
        'sum(heddle_quarantined_rows_total{workflow="Quickstart",handler="rejected"})';
      assert.equal(await valueOf(prometheus, quarantined, handled), handled);
      assert.equal(await valueOf(prometheus, "sum(heddle_worker_up)", 1), 1);
      const finished = 'heddle_runs_finished_total{workflow="Quickstart",status="succeeded"}';
      assert.equal(await valueOf(prometheus, finished, 1), 1);

      // Scraped without the token, /metrics answers 401 like every page of the UI.
      assert.equal(
        await fetch(`${daemon.origin}/metrics`).then(async (r) => {
          await r.body?.cancel();
          return r.status;
        }),
        401,
      );
      const text = await (await fetch(`${daemon.origin}/metrics`, auth)).text();
      assert.match(text, /^heddle_registry_memory_bytes\{worker="[^"]+"\} \d+$/m);
      assert.match(
        text,
        /^heddle_stage_latency_seconds_count\{workflow="Quickstart",stage="Quickstart\.2"\} [1-9]/m,
      );
      assert.doesNotMatch(text, /^(?!heddle_)[a-z_]+[{ ]/m, "every metric is named heddle_*");
      const bytes = text.match(
        /^heddle_bytes_out_total\{workflow="Quickstart",stage="Quickstart\.0"\} (\d+)$/m,
      );
      assert.ok(bytes && Number(bytes[1]) > 0, "the source's batches have a size");

      // A plugin that crashes on every batch: restarted for the retry, which is counted too.
      await Deno.writeTextFile(
        `${daemon.dir}/crash.he`,
        [
          'import "fhub/file" file',
          'import "faulty/steps" faulty',
          "workflow Crash {",
          '  file.read { path: "numbers.csv", format: "csv" } : { n: int64 }',
          "  | faulty.run { crash: true } retry { attempts: 2, backoff: 10ms }",
          '  | file.write { path: "crash_out.csv", format: "csv" }',
          "}",
          "",
        ].join("\n"),
      );
      assert.equal(await deploy(daemon, "crash.he"), 0);
      const crash = await heddle([
        "workflow",
        "start",
        "--output",
        "json",
        ...daemon.server,
        "Crash",
      ]);
      assert.equal(crash.code, 0, crash.stderr);
      await metricLine(
        daemon,
        auth,
        /^heddle_retries_total\{workflow="Crash",stage="Crash\.1"\} [1-9]/m,
      );
      await metricLine(
        daemon,
        auth,
        /^heddle_plugin_restarts_total\{worker="[^"]+",plugin="[^"]*faulty"\} [1-9]/m,
      );
    } finally {
      await prometheus?.stop();
      await daemon.stop();
    }
  },
);
