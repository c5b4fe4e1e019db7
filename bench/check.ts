/**
 * Checking throughput: parse plus every compiler phase (resolve, infer, lower, optimise)
 * over exactly the 10,000-line program that bench/parse.ts generates, which passes them all
 * with the built-in modules alone. Reports milliseconds per check and lines per second, as
 * the median of several runs. It must never assert: the numbers go to `deno task bench`.
 */
import { check } from "../compiler/mod.ts";
import { type BenchResult, generateProgram } from "./parse.ts";

export function benchCheck(runs = 5): Promise<BenchResult[]> {
  const name = "check generated 10k-line program";
  const source = generateProgram(10_000);
  const lines = source.split("\n").length - 1;
  const run = () => check(source, "/tmp/bench.he", { snapshot: null });
  const first = run();
  const errors = first.diagnostics.filter((d) => d.severity !== "info");
  if (errors.length > 0 || first.value.optimised === null) {
    // A benchmark of a program that stops early would time the wrong thing.
    throw new Error(`the generated program does not pass every phase: ${errors[0]?.message}`);
  }
  const times: number[] = [];
  for (let k = 0; k < runs; k++) {
    const t0 = performance.now();
    run();
    times.push(performance.now() - t0);
  }
  const ms = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
  return Promise.resolve([
    { name, unit: "ms", value: Math.round(ms) },
    { name, unit: "lines/s", value: Math.round(lines / (ms / 1000)) },
  ]);
}

if (import.meta.main) {
  for (const r of await benchCheck()) console.log(`${r.name}: ${r.value} ${r.unit}`);
}
