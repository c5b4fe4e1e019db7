/**
 * Parser and formatter throughput. `generateProgram` builds a realistic program of a given
 * length that passes every compiler phase (so the fuzz and hostile-input tests and
 * bench/check.ts can reuse it); `benchParse` measures lines per second of `parse` and `format` on a
 * 10,000-line program, as the median of several runs. It must never assert: the numbers
 * go to `deno task bench`, not to the test suite.
 */
import { format, parse } from "../compiler/syntax/mod.ts";
import { type BenchRow, median, row } from "./_report.ts";

/** The common result shape of every benchmark (bench/_report.ts). */
export type BenchResult = BenchRow;

const HEADER = `import "fhub/kafka" kafka
import "fhub/llm" openai

// Shared connections.
resource llm = openai.connection {
  base_url: env("OPENAI_BASE_URL", "http://llm.internal/v1")
  api_key: secret("OPENAI_API_KEY")
  model: "small"
}
resource kf_broker = kafka.connection {
  broker: "kafka.internal:9092"
  client_id: "bench"
  ssl: false
}

type Transaction = {
  user_id: int64
  amount: float64
  tags: [utf8]
  note: utf8?
  ..
}

handler alert_on_fail {
  *
  | kafka.produce <broker=kf_broker> { topic: "dlq_alerts" }
}
`;

function block(k: number): string {
  return `
// Block ${k}: a step and a workflow that uses it.
step summarise_${k} = <connection=llm> openai.prompt {
  system: "Summarise the transaction."
  temperature: 0.5
  max_concurrency: 1_000
} retry { attempts: 3, backoff: 200ms, timeout: 30s }

workflow Flow${k} ? alert_on_fail {
  kafka.consume <broker=kf_broker> { topic: "live_${k}", from: "earliest" }: Transaction
  > stream_${k}

  stream_${k}
  | (
    from input
    filter amount > ${k} # PRQL comment with a ) inside
    select {user_id, amount, label = "a (quoted) string"}
  )
  | summarise_${k} ? alert_on_fail
  | openai.prompt { system: "Translate." } retry { attempts: 5 }: { user_id: int64, .. }
  | kafka.produce <broker=kf_broker> { topic: "audits_${k}" }
}
`;
}

/**
 * A program of about `lines` lines (never fewer) that passes every compiler phase with the
 * built-in modules alone, using every construct that needs no plugin or SQL snapshot.
 */
export function generateProgram(lines: number): string {
  const parts = [HEADER];
  let count = HEADER.split("\n").length - 1;
  for (let k = 0; count < lines; k++) {
    const b = block(k);
    parts.push(b);
    count += b.split("\n").length - 1;
  }
  return parts.join("");
}

/** Median milliseconds of `run` after one untimed warm-up. */
export function timeMedian(run: () => unknown, runs: number): number {
  run();
  const times: number[] = [];
  for (let k = 0; k < runs; k++) {
    const t0 = performance.now();
    run();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Parse and format times of a generated program of `targetLines` lines (10,000 by default). */
export function benchParse(runs = 7, targetLines = 10_000): Promise<BenchResult[]> {
  const source = generateProgram(targetLines);
  const lines = source.split("\n").length - 1;
  const parseMs = timeMedian(() => parse(source), runs);
  const formatMs = timeMedian(() => format(source), runs);
  return Promise.resolve([
    row(`compiler.parse_${lines}_lines`, parseMs, "ms", 100, {
      baselineName: "target (issue 2)",
      note: "goal: under 100 ms",
    }),
    row(`compiler.parse_${lines}_lines.rate`, lines / (parseMs / 1000), "lines/s"),
    row(`compiler.format_${lines}_lines.rate`, lines / (formatMs / 1000), "lines/s"),
  ]);
}

if (import.meta.main) {
  for (const r of await benchParse()) console.log(`${r.name}: ${r.value} ${r.unit}`);
}
