/**
 * Benchmark of `fhub/file` against DuckDB on one thread (its Python package), both reading
 * the same generated CSV in the same run: the reader alone (in process, every column typed
 * and materialised: Arrow batches for Heddle, a table for DuckDB) and a whole-process copy
 * CSV → CSV (`heddle run` against DuckDB's `COPY (SELECT * FROM read_csv(..)) TO ..`).
 * Cold numbers are the first run, warm ones the median of the others. It must never assert
 * anything: a missing DuckDB skips the section with one line.
 */
import { builtinConnectors, type Source } from "../runtime/connectors/mod.ts";
import { type BenchSection, median, row } from "./_report.ts";

const ROOT = new URL("../", import.meta.url).pathname;

export interface FilesOptions {
  rows: number;
  runs: number;
  log?: (line: string) => void;
}

/** A CSV like the issue's: ids, a foreign key, an amount, a short and a longer text. */
async function writeCsv(path: string, rows: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const countries = ["DE", "FR", "US", "GB", "JP"];
  const encoder = new TextEncoder();
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0);
  let chunk = "id,user_id,amount,country,note\n";
  for (let i = 0; i < rows; i++) {
    const cents = next() % 200_000;
    chunk += `${i},${next() % 100_000},${Math.floor(cents / 100)}.${cents % 100},` +
      `${countries[i % 5]},note number ${i % 997}\n`;
    if (chunk.length > 1 << 20) {
      await file.write(encoder.encode(chunk));
      chunk = "";
    }
  }
  await file.write(encoder.encode(chunk));
  file.close();
}

async function heddleRead(path: string): Promise<number> {
  const t0 = performance.now();
  const source = await builtinConnectors().get("fhub/file.read")!.open({
    config: { path, format: "csv" },
    resources: {},
    schema: null,
    batchRows: 1024,
    resumeAfter: null,
    baseDir: "/",
    workflow: "bench",
  }) as Source;
  let rows = 0;
  for await (const b of source.batches(new AbortController().signal)) rows += b.table.numRows;
  await source.close();
  if (rows === 0) throw new Error("the reader returned no rows");
  return performance.now() - t0;
}

const DUCKDB_READ = `
import duckdb, json, sys, time
path, runs = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute("SET threads = 1")
times = []
for i in range(runs):
    t0 = time.perf_counter()
    con.execute(f"CREATE OR REPLACE TABLE t AS SELECT * FROM read_csv('{path}')")
    times.append((time.perf_counter() - t0) * 1000)
print(json.dumps(times))
`;

async function python(args: string[]): Promise<string> {
  const out = await new Deno.Command("python3", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).trim());
  return new TextDecoder().decode(out.stdout);
}

async function timed(cmd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).trim().slice(-400));
  return performance.now() - t0;
}

const COPY_PROGRAM = `import "fhub/file" file
workflow Copy {
  file.read { path: "in.csv", format: "csv" }
  | file.write { path: "out.csv", format: "csv" }
}
`;

export async function benchFiles(o: FilesOptions): Promise<BenchSection> {
  const log = o.log ?? (() => {});
  const title = `Files: CSV of ${o.rows.toLocaleString("en-US")} rows, Heddle vs DuckDB (1 thread)`;
  try {
    await python(["-c", "import duckdb"]);
  } catch {
    return {
      name: "files",
      title,
      runs: 0,
      rows: [],
      notes: [],
      skipped: "the Python package duckdb is not installed",
    };
  }
  const dir = await Deno.makeTempDir({ prefix: "heddle-bench-files-" });
  try {
    const path = `${dir}/in.csv`;
    await writeCsv(path, o.rows);
    const mb = Deno.statSync(path).size / 1e6;
    const runs = Math.max(2, o.runs);
    const heddle: number[] = [];
    for (let i = 0; i < runs; i++) heddle.push(await heddleRead(path));
    const duck = JSON.parse(await python(["-c", DUCKDB_READ, path, String(runs)])) as number[];
    log(
      `files: read ${mb.toFixed(1)} MB: heddle ${heddle.map(Math.round)} ms, duckdb ${
        duck.map(Math.round)
      } ms`,
    );
    const rate = (ms: number) => mb / (ms / 1000);
    const warm = (xs: number[]) => median(xs.slice(1));

    Deno.writeTextFileSync(`${dir}/copy.he`, COPY_PROGRAM);
    const heddleCopy = await timed(Deno.execPath(), [
      "run",
      "-A",
      `${ROOT}cli/main.ts`,
      "run",
      `${dir}/copy.he`,
    ]);
    const duckCopy = await timed("python3", [
      "-c",
      `import duckdb; con = duckdb.connect(); con.execute("SET threads = 1"); ` +
      `con.execute("COPY (SELECT * FROM read_csv('${path}')) TO '${dir}/duck.csv' (HEADER)")`,
    ]);
    log(`files: copy: heddle ${Math.round(heddleCopy)} ms, duckdb ${Math.round(duckCopy)} ms`);
    const baselineName = "DuckDB read_csv, 1 thread";
    return {
      name: "files",
      title,
      runs,
      rows: [
        row("files.csv_read.cold", rate(heddle[0]), "MB/s", rate(duck[0]), { baselineName }),
        row("files.csv_read.warm", rate(warm(heddle)), "MB/s", rate(warm(duck)), {
          baselineName,
        }),
        row("files.csv_copy.process", heddleCopy, "ms", duckCopy, {
          baselineName: "DuckDB COPY .. TO csv, 1 thread, whole process",
          note: "heddle run: start, compile, read, write, publish",
        }),
      ],
      notes: [
        `${mb.toFixed(1)} MB; reads type every column (int64, int64, float64, utf8, utf8) ` +
        "into memory: Arrow batches of 1,024 rows for Heddle, a table for DuckDB; " +
        "the goal (issue 11.5) is 100 MB/s per core",
      ],
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
