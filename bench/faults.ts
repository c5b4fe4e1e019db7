/**
 * What a fault costs a run, as the batch grows: a plugin that hangs on every invocation
 * (every attempt ends by its timeout), and a plugin that cannot start (an unresolvable
 * import). Each is measured over a batch of `rows` rows against the same fault over one row,
 * in the same run: a ratio near 1 means the cost does not grow with the batch (the split
 * halves share one deadline; a fatal error fails the run at its first attempt), where
 * splitting down to single rows with a full timeout each made it grow with the row count
 * (20 rows at a 2 s timeout took 69 s; a plugin that could not start was retried row by row).
 * Real plugin processes; every run starts them anew (cold). It must never assert on timings.
 */
import { check } from "../compiler/mod.ts";
import { runWorkflow } from "../runtime/executor/mod.ts";
import { PluginHost } from "../runtime/plugins/mod.ts";
import { Registry } from "../runtime/registry/mod.ts";
import { type BenchSection, median, row } from "./_report.ts";

export interface FaultsOptions {
  rows: number;
  /** The step's `retry { timeout }` in milliseconds. */
  timeoutMs: number;
  runs: number;
  log?: (line: string) => void;
}

const EXAMPLE_PLUGINS = new URL("../examples/plugins", import.meta.url).pathname;
const ATTEMPTS = 3;

/** Milliseconds of one run of `step` over `rows` numbers, with plugins found in `roots`. */
async function timeRun(dir: string, roots: string[], step: string, rows: number) {
  const lines = ["n", ...Array.from({ length: rows }, (_, i) => String(i))];
  Deno.writeTextFileSync(`${dir}/numbers.csv`, lines.join("\n") + "\n");
  const file = `${dir}/faults.he`;
  const source = `import "fhub/file" file
import "${step.split(".")[0]}/steps" ${step.split(".")[0]}
handler rejected {
  *
  | file.write { path: "rejected.jsonl", format: "jsonl" }
}
workflow Faults ? rejected {
  file.read { path: "numbers.csv", format: "csv" } : { n: int64 }
  | ${step}
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`;
  Deno.writeTextFileSync(file, source);
  const ir = check(source, file, { modulePath: roots }).value.optimised;
  if (!ir) throw new Error("the faults program does not compile");
  using registry = new Registry();
  const plugins = new PluginHost({ registry, search: { programDir: dir, modulePath: roots } });
  try {
    const t0 = performance.now();
    const summary = await runWorkflow(ir, { registry, plugins, batchRows: Math.max(rows, 1) });
    const ms = performance.now() - t0;
    return { ms, status: summary.status };
  } finally {
    await plugins.close();
  }
}

/** A package `broken/steps` (the faulty plugin's manifest) whose entry cannot start. */
function brokenPlugin(root: string): void {
  const manifest = JSON.parse(
    Deno.readTextFileSync(`${EXAMPLE_PLUGINS}/faulty/heddle.manifest.json`),
  );
  manifest.package = "broken";
  manifest.modules = { "broken/steps": manifest.modules["faulty/steps"] };
  Deno.mkdirSync(`${root}/broken`, { recursive: true });
  Deno.writeTextFileSync(`${root}/broken/heddle.manifest.json`, JSON.stringify(manifest));
  Deno.writeTextFileSync(`${root}/broken/main.ts`, 'import "./does_not_exist.ts";\n');
}

export async function benchFaults(o: FaultsOptions): Promise<BenchSection> {
  const dir = Deno.makeTempDirSync({ prefix: "heddle-bench-faults-" });
  const roots = [EXAMPLE_PLUGINS, `${dir}/plugins`];
  brokenPlugin(`${dir}/plugins`);
  const cases = [
    {
      name: "hung_plugin",
      step: `faulty.run { hang: true } retry { attempts: ${ATTEMPTS}, backoff: 10ms, ` +
        `timeout: ${o.timeoutMs}ms }`,
      expect: "completed",
    },
    { name: "plugin_cannot_start", step: "broken.run { }", expect: "failed" },
  ];
  const rows = [];
  try {
    for (const c of cases) {
      const times: Record<number, number[]> = { 1: [], [o.rows]: [] };
      for (let r = 0; r < o.runs; r++) {
        for (const n of [1, o.rows]) {
          const { ms, status } = await timeRun(dir, roots, c.step, n);
          if (status !== c.expect) throw new Error(`${c.name}: the run ${status}`);
          times[n].push(ms);
          o.log?.(`faults ${c.name} ${n} rows: ${Math.round(ms)} ms`);
        }
      }
      rows.push(
        row(`faults.${c.name}.${o.rows}_rows`, median(times[o.rows]), "ms", median(times[1]), {
          baselineName: "the same fault over 1 row",
        }),
      );
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  return {
    name: "faults",
    title: `Faults: cost of a batch of ${o.rows} rows against one row (timeout ${o.timeoutMs} ms)`,
    runs: o.runs,
    rows,
    notes: [
      `the hung plugin gets ${ATTEMPTS} attempts; a ratio near 1 means the cost does not grow ` +
      "with the batch; every run starts its plugin processes anew (cold)",
    ],
  };
}
