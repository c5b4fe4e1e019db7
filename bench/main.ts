/**
 * `deno task bench`: runs Heddle's benchmark suite and reports every result against the
 * baseline a user would otherwise pick, measured in the same run, as a ratio. Flags:
 * `--quick` (the whole suite in under two minutes on a 2-core machine), `--tiny` (toy sizes,
 * for the smoke test only: the numbers mean nothing), `--only NAME` (one benchmark),
 * `--output json` (one JSON document on stdout; tables and progress go to stderr), `--chart
 * PATH` (where the handoff SVG goes; a full run writes docs/benchmarks/handoff.svg). It must
 * never hide a failed benchmark: a failure is reported in its section and the exit code is 1.
 */
import { benchCheck } from "./check.ts";
import { benchCluster } from "./cluster.ts";
import { benchClusterRecovery } from "./_cluster_recovery.ts";
import { benchCompiled } from "./compiled.ts";
import { handoffSvg } from "./_chart.ts";
import { benchE2e } from "./e2e.ts";
import { benchFaults } from "./faults.ts";
import { benchFiles } from "./files.ts";
import { benchHandoff } from "./handoff.ts";
import { benchLsp } from "./lsp.ts";
import { benchMemory } from "./memory.ts";
import { benchParse } from "./parse.ts";
import { benchPrql } from "./prql.ts";
import { benchRecovery } from "./recovery.ts";
import {
  type BenchRow,
  type BenchSection,
  type Machine,
  machine,
  renderSection,
} from "./_report.ts";
import { benchStages } from "./stages.ts";

/** How big a run is. */
export type Scale =
  /** The full suite, including 1 GB batches and 10 million rows. */
  | "full"
  /** Everything, smaller, in under two minutes. */
  | "quick"
  /** Toy sizes that only exercise the code paths (the smoke test). */
  | "tiny";

export interface Report {
  scale: Scale;
  startedAt: string;
  machine: Machine;
  sections: BenchSection[];
}

interface Context {
  scale: Scale;
  chart: string | null;
  log: (line: string) => void;
}

const pick = <T>(scale: Scale, full: T, quick: T, tiny: T) =>
  scale === "full" ? full : scale === "quick" ? quick : tiny;

/** A section over the generated program of bench/parse.ts (10,000 lines but with `--tiny`). */
async function compilerSection(
  ctx: Context,
  name: string,
  title: string,
  bench: (runs: number, lines: number) => Promise<BenchRow[]>,
  note: string,
): Promise<BenchSection> {
  const lines = pick(ctx.scale, 10_000, 10_000, 300);
  const runs = pick(ctx.scale, 7, 5, 2);
  return {
    name,
    title: `${title}: generated ${lines.toLocaleString("en-US")}-line program`,
    runs,
    rows: await bench(runs, lines),
    notes: [`program from bench/parse.ts \`generateProgram\`; ${note}`],
  };
}

const BENCHMARKS: Record<string, (ctx: Context) => Promise<BenchSection>> = {
  handoff: async (ctx) => {
    const { section, points } = await benchHandoff({
      sizesMB: pick(ctx.scale, [1, 10, 100, 1000], [1, 10], [0.05, 0.2]),
      runs: pick(ctx.scale, 5, 3, 2),
      consumers: ["ts", "python", "go", "rust"],
      peers: ["vineyard", "ray"],
      log: ctx.log,
    });
    if (ctx.chart && points.length > 0) {
      const slash = ctx.chart.lastIndexOf("/");
      if (slash > 0) await Deno.mkdir(ctx.chart.slice(0, slash), { recursive: true });
      await Deno.writeTextFile(ctx.chart, handoffSvg(points));
      section.notes.push(`chart written to ${ctx.chart}`);
    }
    return section;
  },
  stages: (ctx) =>
    benchStages({
      stages: pick(ctx.scale, 100, 100, 5),
      rows: pick(ctx.scale, 20_000, 5_000, 200),
      batchRows: 100,
      runs: pick(ctx.scale, 3, 2, 1),
      log: ctx.log,
    }),
  compiler: (ctx) =>
    compilerSection(
      ctx,
      "compiler",
      "Compiler",
      benchParse,
      "the parse row's baseline is the 100 ms target of issue 2; checking it is the `check` section",
    ),
  check: (ctx) =>
    compilerSection(
      ctx,
      "check",
      "heddle check",
      benchCheck,
      "check = parse + resolve + infer + lower + optimise; cold = a fresh process, warm = " +
        "every PRQL block cached",
    ),
  lsp: async (ctx) => {
    const lines = pick(ctx.scale, 10_000, 10_000, 300);
    const keystrokes = pick(ctx.scale, 50, 20, 3);
    return {
      name: "lsp",
      title: `Language server while typing: generated ${
        lines.toLocaleString("en-US")
      }-line program`,
      runs: 1,
      rows: await benchLsp({ lines, keystrokes, log: ctx.log }),
      notes: [
        "a real server over stdio; one digit typed every 100 ms into a PRQL block mid-file, " +
        "each followed by a completion and a hover request; baselines are the goals of issue 12",
      ],
    };
  },
  e2e: (ctx) =>
    benchE2e({
      events: pick(ctx.scale, 50_000, 10_000, 100),
      preloaded: pick(ctx.scale, 1_000_000, 100_000, 200),
      log: ctx.log,
    }),
  recovery: (ctx) =>
    benchRecovery({
      runs: pick(ctx.scale, 3, 1, 1),
      // The old behaviour waits out a 60 s session: only the full suite pays for it.
      dynamic: ctx.scale === "full",
      log: ctx.log,
    }),
  memory: (ctx) =>
    benchMemory({
      rows: pick(ctx.scale, 10_000_000, 300_000, 2_000),
      budget: pick(ctx.scale, 256, 16, 1) * 1024 * 1024,
      log: ctx.log,
    }),
  cluster: async (ctx) => {
    const section = await benchCluster({
      megabytes: pick(ctx.scale, 256, 64, 1),
      runs: pick(ctx.scale, 5, 3, 1),
      log: ctx.log,
    });
    if (section.skipped) return section;
    // Control-plane bytes and recovery times (bench/_cluster_recovery.ts).
    const more = await benchClusterRecovery({
      sizes: pick(ctx.scale, [1, 100, 1000], [1, 100], [1]),
      log: ctx.log,
    });
    return {
      ...section,
      rows: [...section.rows, ...more.rows],
      notes: [...section.notes, ...more.notes],
    };
  },
  files: (ctx) =>
    benchFiles({
      rows: pick(ctx.scale, 1_000_000, 300_000, 2_000),
      runs: pick(ctx.scale, 5, 3, 2),
      log: ctx.log,
    }),
  compiled: (ctx) => benchCompiled({ runs: pick(ctx.scale, 3, 1, 1), log: ctx.log }),
  faults: (ctx) =>
    benchFaults({
      rows: pick(ctx.scale, 1024, 20, 4),
      timeoutMs: pick(ctx.scale, 2000, 1000, 200),
      runs: pick(ctx.scale, 3, 1, 1),
      log: ctx.log,
    }),
  prql: async (ctx) => {
    const sizes = pick(ctx.scale, [1_000_000, 10_000_000], [200_000], [2_000]);
    const runs = pick(ctx.scale, 5, 3, 1);
    const rows: BenchRow[] = [], notes: string[] = [];
    for (const n of sizes) {
      const r = await benchPrql(n, runs);
      rows.push(...r.rows);
      notes.push(...r.notes);
    }
    return {
      name: "prql",
      title: "PRQL stages: Heddle's engine vs DuckDB and Polars (1 thread each)",
      runs,
      rows,
      notes: [
        ...notes,
        "each engine runs in its own process over the same Arrow IPC files; cold = first run " +
        "(Heddle's includes compiling the PRQL), warm = median of the next runs, warm_cpu = " +
        "the same runs' CPU time (robust on a shared machine); every run materialises the " +
        `whole result as Arrow; load average at the start: ${Deno.loadavg()[0].toFixed(1)}`,
      ],
    };
  },
};

export const BENCHMARK_NAMES = Object.keys(BENCHMARKS);

export interface SuiteOptions {
  scale: Scale;
  only?: string;
  chart?: string | null;
  log?: (line: string) => void;
}

/**
 * The failures a section reports: its own (it could not run) and its rows' failed checks (a
 * wrong answer, a memory budget exceeded), each a note starting with FAILED.
 */
export function failedChecks(s: BenchSection): string[] {
  const own = s.skipped?.startsWith("FAILED") ? [`${s.name}: ${s.skipped}`] : [];
  const rows = s.rows.filter((r) => r.note?.startsWith("FAILED")).map((r) =>
    `${r.name}: ${r.note}`
  );
  return [...own, ...rows];
}

/** Runs the selected benchmarks; a failing one becomes a section with `skipped` set. */
export async function runSuite(o: SuiteOptions): Promise<{ report: Report; failed: boolean }> {
  const ctx: Context = { scale: o.scale, chart: o.chart ?? null, log: o.log ?? (() => {}) };
  const names = o.only ? [o.only] : BENCHMARK_NAMES;
  const report: Report = {
    scale: o.scale,
    startedAt: new Date().toISOString(),
    machine: await machine(),
    sections: [],
  };
  let failed = false;
  for (const name of names) {
    ctx.log(`running ${name} (${o.scale})`);
    try {
      const section = await BENCHMARKS[name](ctx);
      if (failedChecks(section).length > 0) failed = true;
      report.sections.push(section);
    } catch (e) {
      failed = true;
      const message = e instanceof Error ? e.message : String(e);
      report.sections.push({
        name,
        title: name,
        runs: 0,
        rows: [],
        notes: [],
        skipped: `FAILED: ${message}`,
      });
    }
  }
  return { report, failed };
}

function parseArgs(args: string[]): SuiteOptions & { output: "text" | "json" } | string {
  const o: SuiteOptions & { output: "text" | "json" } = { scale: "full", output: "text" };
  let chart: string | null | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--quick") o.scale = o.scale === "tiny" ? "tiny" : "quick";
    else if (a === "--tiny") o.scale = "tiny";
    else if (a === "--only") o.only = args[++i];
    else if (a === "--output") o.output = args[++i] === "json" ? "json" : "text";
    else if (a === "--chart") chart = args[++i];
    else return `unknown argument \`${a}\``;
  }
  if (o.only !== undefined && !BENCHMARK_NAMES.includes(o.only)) {
    return `no benchmark \`${o.only}\` (there are: ${BENCHMARK_NAMES.join(", ")})`;
  }
  o.chart = chart !== undefined ? chart : o.scale === "full" ? "docs/benchmarks/handoff.svg" : null;
  return o;
}

if (import.meta.main) {
  const parsed = parseArgs(Deno.args);
  if (typeof parsed === "string") {
    console.error(`bench: ${parsed}`);
    console.error(
      "usage: deno task bench [--quick] [--only NAME] [--output text|json] [--chart PATH]",
    );
    Deno.exit(2);
  }
  const err = (line: string) => console.error(line);
  const { report, failed } = await runSuite({ ...parsed, log: err });
  const text = report.sections.map((s) => renderSection(s, report.machine)).join("\n");
  if (parsed.output === "json") {
    err(text);
    console.log(JSON.stringify(report, null, 2));
  } else {
    console.log(text);
  }
  Deno.exit(failed ? 1 : 0);
}
