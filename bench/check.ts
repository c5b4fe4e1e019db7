/**
 * Checking throughput: parse plus every compiler phase (resolve, infer, lower, optimise)
 * over exactly the 10,000-line program that bench/parse.ts generates, which passes them all
 * with the built-in modules alone. Reports milliseconds per check and lines per second, as
 * the median of several runs. It must never assert: the numbers go to `deno task bench`.
 */
import { check } from "../compiler/mod.ts";
import { row } from "./_report.ts";
import { type BenchResult, generateProgram, timeMedian } from "./parse.ts";

export function benchCheck(runs = 5, targetLines = 10_000): Promise<BenchResult[]> {
  const source = generateProgram(targetLines);
  const lines = source.split("\n").length - 1;
  const run = () => check(source, "/tmp/bench.he", { snapshot: null });
  const first = run();
  const errors = first.diagnostics.filter((d) => d.severity !== "info");
  if (errors.length > 0 || first.value.optimised === null) {
    // A benchmark of a program that stops early would time the wrong thing.
    throw new Error(`the generated program does not pass every phase: ${errors[0]?.message}`);
  }
  const ms = timeMedian(run, runs);
  return Promise.resolve([
    row(`compiler.check_${lines}_lines`, ms, "ms"),
    row(`compiler.check_${lines}_lines.rate`, lines / (ms / 1000), "lines/s"),
  ]);
}

if (import.meta.main) {
  for (const r of await benchCheck()) console.log(`${r.name}: ${r.value} ${r.unit}`);
}
