/**
 * Benchmark of `fhub/file` against DuckDB on one thread (its Python package), both reading
 * the same generated CSV in the same run: the reader alone (in process, every column typed
 * and materialised: Arrow batches for Heddle, a table for DuckDB) and a whole-process copy
 * CSV → CSV (`heddle run` against DuckDB's `COPY (SELECT * FROM read_csv(..)) TO ..`), and
 * issue 11.5's goal: a whole-process CSV → group by a text key → CSV, answers compared.
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
con.execute("SET enable_progress_bar = false")  # it prints to stdout after 2 s
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

/**
 * Runs a whole process and returns its wall time and CPU time (user + system, from the
 * kernel's accounting of the finished child: robust on a shared machine), both in ms.
 */
async function timed(cmd: string[]): Promise<{ wall: number; cpu: number }> {
  const out = await new Deno.Command("python3", {
    args: ["-c", TIMED, ...cmd],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).trim().slice(-400));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

const TIMED = `
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = (time.perf_counter() - t0) * 1000
if done.returncode != 0:
    sys.stderr.write(done.stderr.decode()[-400:])
    sys.exit(1)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "cpu": (r.ru_utime + r.ru_stime) * 1000}))
`;

const COPY_PROGRAM = `import "fhub/file" file
workflow Copy {
  file.read { path: "in.csv", format: "csv" }
  | file.write { path: "out.csv", format: "csv" }
}
`;

/** Issue 11.5's goal: read a CSV, group it by a text key, write the groups as CSV. */
const GROUP_PROGRAM = `import "fhub/file" file
workflow Group {
  file.read { path: "in.csv", format: "csv" }
  | (
    from input
    group {note} (aggregate {n = count this, total = sum amount, top = max amount})
  )
  | file.write { path: "groups.csv", format: "csv" }
}
`;

const DUCKDB_GROUP = "SELECT note, count(*) AS n, sum(amount) AS total, max(amount) AS top " +
  "FROM read_csv('IN') GROUP BY note";

/** Rows of a grouped CSV by key; null when the text is not one. */
function groupsOf(text: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const line of text.trim().split("\n").slice(1)) {
    const [note, ...nums] = line.split(",");
    out.set(note, nums.map(Number));
  }
  return out;
}

/** Why Heddle's groups differ from DuckDB's, or null: counts and maxima exact, sums to 1e-9. */
function groupsDiffer(heddle: string, duck: string): string | null {
  const h = groupsOf(heddle), d = groupsOf(duck);
  if (h.size !== d.size) return `${h.size} groups against DuckDB's ${d.size}`;
  for (const [key, [dn, dt, dm]] of d) {
    const got = h.get(key);
    if (!got) return `group \`${key}\` is missing`;
    const [n, t, m] = got;
    if (n !== dn || m !== dm || Math.abs(t - dt) > 1e-9 * Math.abs(dt)) {
      return `group \`${key}\`: ${got} against DuckDB's ${[dn, dt, dm]}`;
    }
  }
  return null;
}

/** `runs` whole-process runs of Heddle and DuckDB, interleaved; first = cold. */
async function processes(
  runs: number,
  heddle: string[],
  duck: string,
): Promise<{ heddle: { wall: number; cpu: number }[]; duck: { wall: number; cpu: number }[] }> {
  const h: { wall: number; cpu: number }[] = [], d: { wall: number; cpu: number }[] = [];
  for (let i = 0; i < runs; i++) {
    h.push(await timed(heddle));
    d.push(await timed(["python3", "-c", duck]));
  }
  return { heddle: h, duck: d };
}

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

    const heddleRun = (program: string) => [
      Deno.execPath(),
      "run",
      "-A",
      `${ROOT}cli/main.ts`,
      "run",
      `${dir}/${program}`,
    ];
    const duckdb = (sql: string) =>
      `import duckdb; con = duckdb.connect(); con.execute("SET threads = 1"); ` +
      `con.execute("SET enable_progress_bar = false"); ` +
      `con.execute("COPY (${sql}) TO '${dir}/duck.csv' (HEADER)")`;
    Deno.writeTextFileSync(`${dir}/copy.he`, COPY_PROGRAM);
    const copy = await processes(
      1,
      heddleRun("copy.he"),
      duckdb(`SELECT * FROM read_csv('${path}')`),
    );
    log(
      `files: copy: heddle ${Math.round(copy.heddle[0].wall)} ms, duckdb ${
        Math.round(copy.duck[0].wall)
      } ms`,
    );
    Deno.writeTextFileSync(`${dir}/group.he`, GROUP_PROGRAM);
    const group = await processes(
      runs,
      heddleRun("group.he"),
      duckdb(DUCKDB_GROUP.replace("IN", path)),
    );
    const wrong = groupsDiffer(
      Deno.readTextFileSync(`${dir}/groups.csv`),
      Deno.readTextFileSync(`${dir}/duck.csv`),
    );
    const show = (xs: { wall: number; cpu: number }[]) =>
      xs.map((x) => `${Math.round(x.wall)}/${Math.round(x.cpu)}`).join(" ");
    log(`files: group (wall/cpu ms): heddle ${show(group.heddle)}, duckdb ${show(group.duck)}`);
    const warmOf = (xs: { wall: number; cpu: number }[], k: "wall" | "cpu") =>
      median(xs.slice(1).map((x) => x[k]));
    const baselineName = "DuckDB read_csv, 1 thread";
    const groupBaseline = "DuckDB read_csv + GROUP BY + COPY TO csv, 1 thread, whole process";
    const groupRow = (phase: string, value: number, baseline: number, note: string) =>
      row(`files.csv_group.process.${phase}`, value, "ms", baseline, {
        baselineName: groupBaseline,
        note,
      });
    const groupNote = wrong ? `FAILED: ${wrong}` : "goal: ratio >= 0.5 (issue 11.5)";
    return {
      name: "files",
      title,
      runs,
      rows: [
        row("files.csv_read.cold", rate(heddle[0]), "MB/s", rate(duck[0]), { baselineName }),
        row("files.csv_read.warm", rate(warm(heddle)), "MB/s", rate(warm(duck)), {
          baselineName,
        }),
        row("files.csv_copy.process", copy.heddle[0].wall, "ms", copy.duck[0].wall, {
          baselineName: "DuckDB COPY .. TO csv, 1 thread, whole process",
          note: "heddle run: start, compile, read, write, publish",
        }),
        groupRow("cold", group.heddle[0].wall, group.duck[0].wall, wrong ? groupNote : ""),
        groupRow("warm", warmOf(group.heddle, "wall"), warmOf(group.duck, "wall"), groupNote),
        groupRow(
          "warm_cpu",
          warmOf(group.heddle, "cpu"),
          warmOf(group.duck, "cpu"),
          "CPU time (user + system) of the same processes",
        ),
      ],
      notes: [
        `${mb.toFixed(1)} MB; reads type every column (int64, int64, float64, utf8, utf8) ` +
        "into memory: Arrow batches of 1,024 rows for Heddle, a table for DuckDB; " +
        "the goal (issue 11.5) is 100 MB/s per core",
        "csv_group: `heddle run` of file.read -> group {note} (count, sum, max) -> file.write " +
        "against the same in DuckDB, each a whole process (start-up included), answers compared; " +
        `cold = first run, warm = median of the others; load average at the start: ${
          Deno.loadavg()[0].toFixed(1)
        }`,
      ],
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
