/**
 * Checking throughput: parse plus every compiler phase (resolve, infer, lower, optimise)
 * over exactly the 10,000-line program that bench/parse.ts generates, which passes them all
 * with the built-in modules alone. Reports the cold number first: the first check in a fresh
 * process (no PRQL block cached; its blocks are all lowered without prql-js, see
 * compiler/types/_prql_resolve.ts, so prql-js is not even started), and a whole `heddle check`
 * of the file as a user runs it, against the 1 s goal as pass/fail rows, with a hello world's
 * `deno run` as the start-up no program can cut; then the warm median, where every PRQL block is already cached (what the LSP
 * sees on an edit). A warm number alone would hide the cold cost (issues 11.6, 12.1). Then the
 * large inputs that were quadratic (issue 16.6): tens of thousands of unused declarations and of
 * workflows. It must never assert: the numbers go to `deno task bench`.
 */
import process from "node:process";
import { check } from "../compiler/mod.ts";
import { cpuMs, goalRow, row } from "./_report.ts";
import { type BenchResult, generateProgram, timeMedian } from "./parse.ts";

const COLD_FLAG = "--cold-child";

/**
 * The generated program with every PRQL block of its own shape: its blocks differ only in a
 * threshold, which one prql-js lowering by shape used to serve (compiler/types/_prql_shape.ts);
 * here each block's alias differs too, so each is lowered: the cold cost of a program of
 * distinct blocks (once 1.3 s of CPU, mostly prql-js's first WebAssembly runs).
 */
export function distinctBlocks(source: string): string {
  let k = 0;
  return source.replaceAll("label = ", () => `label_${k++} = `);
}

/** `n` resources that nothing uses: each a warning, and once a quadratic pass (issue 16.6). */
export function unusedDeclarations(n: number): string {
  const decls = Array.from(
    { length: n },
    (_, k) => `resource kf_${k} = kafka.connection { broker: "k:9092" }`,
  );
  return `import "fhub/kafka" kafka\n${decls.join("\n")}\n`;
}

/** `n` small workflows, each with the same PRQL block (issue 16.6: once a quadratic pass). */
export function manyWorkflows(n: number): string {
  const workflows = Array.from({ length: n }, (_, k) =>
    `workflow W${k} {
  file.read { path: "in${k}.csv", format: "csv" }
  | (
    from input
    filter amount > 1
  )
  | file.write { path: "o${k}.csv", format: "csv" }
}`);
  return `import "fhub/file" file\n${workflows.join("\n")}\n`;
}

/** Wall and CPU milliseconds of one check of `source`, whatever it reports. */
function timeLarge(source: string): { ms: number; cpu: number } {
  const before = process.cpuUsage();
  const t0 = performance.now();
  check(source, "/tmp/bench-large.he", { snapshot: null });
  const ms = since(t0);
  const used = process.cpuUsage(before);
  return { ms, cpu: (used.user + used.system) / 1000 };
}

/** Milliseconds from `start` to the end of `run`. */
function since(start: number): number {
  return performance.now() - start;
}

function checkOnce(source: string): number {
  const t0 = performance.now();
  const r = check(source, "/tmp/bench.he", { snapshot: null });
  const ms = since(t0);
  const errors = r.diagnostics.filter((d) => d.severity !== "info");
  if (errors.length > 0 || r.value.optimised === null) {
    // A benchmark of a program that stops early would time the wrong thing.
    throw new Error(`the generated program does not pass every phase: ${errors[0]?.message}`);
  }
  return ms;
}

/**
 * Runs `deno run -A <args>` and returns its stdout, wall time and CPU time (null when not
 * known); throws when it fails.
 */
async function child(args: string[]): Promise<{ stdout: string; ms: number; cpu: number | null }> {
  const cpu0 = cpuMs("self", "children");
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const ms = since(t0);
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  if (!out.success) throw new Error(`${args.join(" ")} failed: ${text(out.stderr).slice(0, 400)}`);
  const cpu1 = cpuMs("self", "children");
  return { stdout: text(out.stdout), ms, cpu: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0 };
}

export async function benchCheck(runs = 5, targetLines = 10_000): Promise<BenchResult[]> {
  const source = generateProgram(targetLines);
  const lines = source.split("\n").length - 1;
  const name = `compiler.check_${lines}_lines`;
  const here = new URL(import.meta.url).pathname;
  const coldOf = async (variant: string) =>
    JSON.parse((await child([here, COLD_FLAG, String(targetLines), variant])).stdout) as {
      ms: number;
      cpu: number;
    };
  const cold = await coldOf("same");
  const distinct = await coldOf("distinct");
  const dir = await Deno.makeTempDir();
  let cli: { ms: number; cpu: number | null };
  let cliDistinct: { ms: number; cpu: number | null };
  let hello: { ms: number; cpu: number | null };
  try {
    await Deno.writeTextFile(`${dir}/bench.he`, source);
    await Deno.writeTextFile(`${dir}/distinct.he`, distinctBlocks(source));
    await Deno.writeTextFile(`${dir}/hello.ts`, 'console.log("hello");\n');
    const main = new URL("../cli/main.ts", import.meta.url).pathname;
    cli = await child([main, "check", `${dir}/bench.he`]);
    cliDistinct = await child([main, "check", `${dir}/distinct.he`]);
    hello = await child([`${dir}/hello.ts`]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  checkOnce(source);
  const warm = timeMedian(() => checkOnce(source), runs);
  // The large inputs of issue 16.6, scaled with the program (75,000 and 44,000 at 10,000 lines).
  const unused = Math.round(targetLines * 7.5);
  const workflows = Math.round(targetLines * 4.4);
  const large = [
    {
      // With 100 PRQL blocks: each unused name was once searched for in every block.
      name: `compiler.check_${unused}_unused_declarations`,
      ...timeLarge(`${unusedDeclarations(unused)}${manyWorkflows(100)}`),
    },
    { name: `compiler.check_${workflows}_workflows`, ...timeLarge(manyWorkflows(workflows)) },
  ];
  return [
    row(`${name}.cold`, cold.ms, "ms", 1000, {
      baselineName: "target (issue 12.1)",
      note: "first check in a fresh process, no block cached; goal under 1 s",
    }),
    row(`${name}.cold_cpu`, cold.cpu, "ms", null, {
      note:
        "CPU time (user + system) of that cold check: steadier than wall time on a busy machine",
    }),
    row(`${name}.cold_distinct_blocks`, distinct.ms, "ms", null, {
      note: "the same, every PRQL block of its own shape (`distinctBlocks`)",
    }),
    row(`${name}.cold_distinct_blocks_cpu`, distinct.cpu, "ms", null, {
      note: "CPU time of that cold check",
    }),
    row(`${name}.cold_cli`, cli.ms, "ms", 1000, {
      baselineName: "target (issue 12.1)",
      note: "`heddle check` of the file as a process: Deno start, imports and the cold check",
    }),
    goalRow(`${name}.cold_cli`, cli.ms, 1000, "ms"),
    row(`${name}.cold_cli_distinct_blocks`, cliDistinct.ms, "ms", 1000, {
      baselineName: "target (issue 12.1)",
      note: "the same, every PRQL block of its own shape (`distinctBlocks`)",
    }),
    goalRow(`${name}.cold_cli_distinct_blocks`, cliDistinct.ms, 1000, "ms"),
    row("compiler.start_hello", hello.ms, "ms", null, {
      note: "`deno run` of a file that prints one line: the part of `cold_cli` no program can cut",
    }),
    ...(cli.cpu === null ? [] : [
      row(`${name}.cold_cli_cpu`, cli.cpu, "ms", 1000, {
        baselineName: "target (issue 12.1)",
        note: "CPU time of that process (all its threads): steadier than wall time when loaded",
      }),
    ]),
    row(`${name}.warm`, warm, "ms", null, {
      note: "median of repeated checks in one process, every PRQL block cached",
    }),
    row(`${name}.warm.rate`, lines / (warm / 1000), "lines/s"),
    ...large.flatMap((l) => [
      row(l.name, l.ms, "ms", null, { note: "one check (issue 16.6: was quadratic)" }),
      row(`${l.name}.cpu`, l.cpu, "ms", null, { note: "CPU time of that check" }),
    ]),
  ];
}

if (import.meta.main) {
  if (Deno.args[0] === COLD_FLAG) {
    // The child of the cold measurement: one check, nothing warmed, its times on stdout.
    const generated = generateProgram(Number(Deno.args[1]));
    const source = Deno.args[2] === "distinct" ? distinctBlocks(generated) : generated;
    const before = process.cpuUsage();
    const ms = checkOnce(source);
    const used = process.cpuUsage(before);
    console.log(JSON.stringify({ ms, cpu: (used.user + used.system) / 1000 }));
  } else {
    for (const r of await benchCheck()) console.log(`${r.name}: ${r.value} ${r.unit}`);
  }
}
