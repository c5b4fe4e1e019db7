/**
 * Checking throughput: every compiler phase (parse, resolve, infer, lower, optimise) over
 * the 10,000-line program of bench/parse.ts, with the seed's plugin manifest on the module
 * path, and over a 10,000-line program of seed workflows that passes every phase (the
 * generated one stops at name resolution: it uses made-up config keys). Reports
 * milliseconds per check (median) and lines per second. It must never assert: the numbers
 * go to `deno task bench`.
 */
import { check } from "../compiler/mod.ts";
import { type BenchResult, generateProgram } from "./parse.ts";

const SEED = new URL("../examples/fraud_detection.he", import.meta.url);

/** The seed program with its workflow repeated under new names up to `lines` lines. */
export function seedProgram(lines: number): string {
  const seed = Deno.readTextFileSync(SEED);
  const at = seed.indexOf("workflow FraudDetection");
  const parts = [seed];
  let count = seed.split("\n").length;
  for (let k = 0; count < lines; k++) {
    const wf = seed.slice(at).replace("FraudDetection", `FraudDetection${k}`)
      .replaceAll("tx_stream", `tx_${k}`).replace("live_transactions", `live_${k}`);
    parts.push(wf);
    count += wf.split("\n").length;
  }
  return parts.join("\n");
}

function measure(name: string, source: string, runs: number): BenchResult[] {
  const lines = source.split("\n").length - 1;
  const modulePath = [new URL("../examples/plugins/", import.meta.url).pathname];
  const snapshot = Deno.readTextFileSync(new URL("../examples/fraud_detection.schema.json", SEED));
  const run = () => check(source, "/tmp/bench.he", { modulePath, snapshot });
  run();
  const times: number[] = [];
  for (let k = 0; k < runs; k++) {
    const t0 = performance.now();
    run();
    times.push(performance.now() - t0);
  }
  const ms = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
  return [
    { name, unit: "ms", value: Math.round(ms) },
    { name, unit: "lines/s", value: Math.round(lines / (ms / 1000)) },
  ];
}

export function benchCheck(runs = 5): Promise<BenchResult[]> {
  return Promise.resolve([
    ...measure("check generated 10k-line program", generateProgram(10_000), runs),
    ...measure("check 10k lines of seed workflows", seedProgram(10_000), runs),
  ]);
}

if (import.meta.main) {
  for (const r of await benchCheck()) console.log(`${r.name}: ${r.value} ${r.unit}`);
}
