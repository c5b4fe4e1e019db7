/**
 * Per-stage overhead of the streaming executor: a chain of trivial PRQL stages (`filter id >=
 * 0`, which keeps every row) over small batches through `runWorkflow`, against the floor: the
 * same compiled query executed the same number of times per batch by a plain in-process loop
 * (no registry, no queues, no lineage). Adjacent PRQL blocks fuse into one query, so each
 * block gets its own `? handler`, which the optimiser never fuses across; a second variant
 * without handlers shows what fusion does. The cost per stage is the difference between a
 * chain of `stages + 1` and a chain of 1, so reading the file and writing the output cancel
 * out. It must never assert on timings.
 */
import * as arrow from "apache-arrow";
import { check } from "../compiler/mod.ts";
import { runWorkflow } from "../runtime/executor/mod.ts";
import { compilePrql, execute } from "../runtime/prql/mod.ts";
import { Registry } from "../runtime/registry/mod.ts";
import { type BenchSection, median, row } from "./_report.ts";

export interface StagesOptions {
  stages: number;
  rows: number;
  batchRows: number;
  runs: number;
  log?: (line: string) => void;
}

const QUERY = "from input | filter id >= 0";

function program(stages: number, fusable: boolean): string {
  const block = `  | (${QUERY})${fusable ? "" : " ? rejected"}\n`;
  return `import "fhub/file" file

handler rejected {
  *
  | file.write { path: "rejected.jsonl", format: "jsonl" }
}

workflow Chain {
  file.read { path: "in.jsonl", format: "jsonl" }: { id: int64, amount: float64 }
${block.repeat(stages)}  | file.write { path: "out.jsonl", format: "jsonl" }
}
`;
}

/** Milliseconds of one `runWorkflow` over the file, median of `runs`; fails on a failed run. */
async function timeChain(
  dir: string,
  stages: number,
  fusable: boolean,
  o: StagesOptions,
): Promise<{ ms: number; prqlStages: number }> {
  const file = `${dir}/chain.he`;
  const source = program(stages, fusable);
  Deno.writeTextFileSync(file, source);
  const ir = check(source, file).value.optimised;
  if (!ir) throw new Error("the generated chain program does not compile");
  const prqlStages = ir.graphs.flatMap((g) => g.stages).filter((s) => s.kind === "prql").length;
  const times: number[] = [];
  for (let r = 0; r < o.runs + 1; r++) {
    using registry = new Registry();
    const t0 = performance.now();
    const summary = await runWorkflow(ir, { registry, batchRows: o.batchRows, workflow: "Chain" });
    const ms = performance.now() - t0;
    if (summary.status !== "completed") {
      throw new Error(`the chain run ended ${summary.status}: ${JSON.stringify(summary.error)}`);
    }
    if (r > 0) times.push(ms); // the first run warms the JIT up
  }
  return { ms: median(times), prqlStages };
}

/** The floor: the same query, the same number of times per batch, in a plain loop. */
function timeFloor(batches: arrow.Table[], stages: number, runs: number): number {
  const query = compilePrql(QUERY, { input: batches[0].schema }).value!;
  const once = () => {
    for (const batch of batches) {
      let t = batch;
      for (let s = 0; s < stages; s++) t = execute(query, { input: t });
      if (t.numRows !== batch.numRows) throw new Error("the floor chain lost rows");
    }
  };
  once();
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    once();
    times.push(performance.now() - t0);
  }
  return median(times);
}

export async function benchStages(o: StagesOptions): Promise<BenchSection> {
  const log = o.log ?? (() => {});
  const dir = await Deno.makeTempDir({ prefix: "heddle-bench-stages-" });
  try {
    const lines: string[] = [];
    for (let i = 0; i < o.rows; i++) lines.push(`{"id":${i},"amount":${i / 4}}`);
    Deno.writeTextFileSync(`${dir}/in.jsonl`, lines.join("\n") + "\n");
    const batchCount = Math.ceil(o.rows / o.batchRows);
    const batches = Array.from({ length: batchCount }, (_, b) => {
      const n = Math.min(o.batchRows, o.rows - b * o.batchRows);
      const id = BigInt64Array.from({ length: n }, (_, i) => BigInt(b * o.batchRows + i));
      const amount = Float64Array.from({ length: n }, (_, i) => (b * o.batchRows + i) / 4);
      return new arrow.Table({ id: arrow.makeVector(id), amount: arrow.makeVector(amount) });
    });

    const one = await timeChain(dir, 1, false, o);
    const many = await timeChain(dir, o.stages + 1, false, o);
    // A failure of the fused variant is a finding to report, not a reason to lose the rest.
    const fused = await timeChain(dir, o.stages + 1, true, o).catch((e: Error) => e);
    const floorOne = timeFloor(batches, 1, o.runs);
    const floorMany = timeFloor(batches, o.stages + 1, o.runs);
    const perStage = (a: number, b: number) => (b - a) * 1000 / (o.stages * batchCount);
    const heddle = perStage(one.ms, many.ms);
    const floor = perStage(floorOne, floorMany);
    // Fused, the chain is one stage: compare its whole run with the plain loop of 101 queries.
    const fusedName = `stages.fused_chain_of_${o.stages + 1}.run`;
    const fusedRow = fused instanceof Error
      ? row(fusedName, NaN, "ms", null, { note: `FAILED: ${fused.message.slice(0, 240)}` })
      : row(fusedName, fused.ms, "ms", floorMany, {
        baselineName: "in-process chain of the same query",
        note: `without handlers the optimiser fuses the chain into ${fused.prqlStages} stage(s)`,
      });
    log(`stages: ${heddle.toFixed(1)} µs/stage/batch, floor ${floor.toFixed(1)}`);
    const floorName = "in-process chain of the same query";
    return {
      name: "stages",
      title:
        `Per-stage overhead (${o.stages} stages, ${batchCount} batches of ${o.batchRows} rows)`,
      runs: o.runs,
      rows: [
        row("stages.per_stage_per_batch", heddle, "µs", floor, {
          baselineName: floorName,
          note: `overhead over the floor: ${(heddle - floor).toFixed(1)} µs (goal: <= 50 µs)`,
        }),
        fusedRow,
        row("stages.chain_of_1.run", one.ms, "ms", floorOne, { baselineName: floorName }),
        row(`stages.chain_of_${o.stages + 1}.run`, many.ms, "ms", floorMany, {
          baselineName: floorName,
          note: `${many.prqlStages} PRQL stages after optimisation`,
        }),
      ],
      notes: [
        `per stage per batch = (time of ${o.stages + 1} stages - time of 1 stage) / ` +
        `(${o.stages} x ${batchCount} batches); the run includes reading ${o.rows} JSONL rows ` +
        "and writing them back, which cancels out in the difference",
        `each stage is \`${QUERY}\` with its own \`? rejected\` handler, which keeps the ` +
        "optimiser from fusing adjacent blocks (fused blocks become one query)",
        "floor: the same compiled PRQL query run on the same Arrow batches in a plain loop, " +
        "so the difference is what the executor adds (queues, lineage, fault handling, " +
        "events; in-process stages hand tables over without the registry)",
      ],
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
