/**
 * Memory under load: rows through five stages (read, filter, derive, a blocking operator that
 * must see every row: a sort, a group, a distinct, a group on a computed key, a window or an
 * aggregate without keys, write) with `heddle run` spawned twice per
 * operator, without and with `--memory-budget`, while
 * a sampler reads the process's resident memory (/proc/<pid>/status VmRSS and VmHWM), the
 * shared-memory segments it owns in /dev/shm and its spill directory. It reports what it saw,
 * marks the run FAILED when peak RSS exceeds the budget plus a fixed overhead, and must never
 * claim a bound it did not measure.
 */
import { type BenchSection, row } from "./_report.ts";

export interface MemoryOptions {
  rows: number;
  /** Only the cases with these row prefixes (all when absent). */
  cases?: string[];
  /** Bytes, passed as `--memory-budget`. */
  budget: number;
  log?: (line: string) => void;
}

interface Peak {
  ms: number;
  rssMiB: number;
  shmMiB: number;
  spillMiB: number;
  status: number;
}

const ROOT = new URL("..", import.meta.url).pathname;
const MiB = 1024 * 1024;

/**
 * What a run may hold beyond its budget: the Deno runtime, compiled code, queues between
 * stages and a blocking operator's working set (issue 11: 256 MiB budget, 768 MiB peak).
 */
export const OVERHEAD_MIB = 512;

/** A FAILED note when peak RSS exceeds the budget plus the fixed overhead, else null. */
export function rssCheck(peakMiB: number, budgetMiB: number): string | null {
  const limit = budgetMiB + OVERHEAD_MIB;
  return peakMiB <= limit ? null : `FAILED: peak RSS ${peakMiB.toFixed(0)} MiB exceeds the ` +
    `${budgetMiB} MiB budget + ${OVERHEAD_MIB} MiB (${limit} MiB)`;
}

/** Where the join case's lookup table lives (created and dropped by the benchmark). */
interface Lookup {
  table: string;
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** The benchmark's program; the join workflow only with a lookup table. */
function program(lookup: Lookup | null): string {
  const ops: Record<string, string> = {
    Memory: "sort {-cents}",
    MemoryGroup: "group {merchant} (aggregate {n = count this, total = sum cents, top = max id})",
    MemoryDistinct: "group {merchant} (take 1)",
    MemoryComputed:
      "derive {bucket = id % 100003} | group {bucket} (aggregate {n = count this, total = sum cents})",
    MemoryWindow:
      "group {merchant} (sort {id} | derive {r = row_number this, prev = lag 1 cents}) | filter r > 1",
    MemoryWhole: "derive {total = sum cents, n = count this} | derive {share = cents / total}",
    MemoryTotal: "aggregate {n = count this, total = sum cents, top = max id, lo = min merchant}",
  };
  let head = "";
  if (lookup) {
    ops.MemoryJoin = "select {id, merchant, cents} | join side:left merchants (==merchant) | " +
      "group {region} (aggregate {n = count this, total = sum cents})";
    head = `import "fhub/postgresql" pg

resource pg_db = pg.connection {
  host: "${lookup.host}"
  port: ${lookup.port}
  user: "${lookup.user}"
  database: "${lookup.database}"
  password: secret("PG_PASSWORD")
}

step merchants = <connection=pg_db> pg.query {
  query: "SELECT name AS merchant, region FROM ${lookup.table} WHERE name = @merchant"
}
`;
  }
  return `import "fhub/file" file
${head}
handler rejected {
  *
  | file.write { path: "rejected.jsonl", format: "jsonl" }
}

${
    Object.entries(ops).map(([name, op]) =>
      `workflow ${name} {
  file.read { path: "in.jsonl", format: "jsonl" }: { id: int64, amount: float64, merchant: utf8 }
  | (from input | filter amount >= 0.0) ? rejected
  | (from input | derive {cents = amount * 100.0}) ? rejected
  | (from input | ${op}) ? rejected
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`
    ).join("\n")
  }`;
}

/** The blocking operators measured: row name prefix and workflow. */
const CASES = [
  { prefix: "memory", workflow: "Memory", what: "sort" },
  { prefix: "memory.group", workflow: "MemoryGroup", what: "group by a text key, 3 aggregates" },
  { prefix: "memory.distinct", workflow: "MemoryDistinct", what: "distinct by a text key" },
  {
    prefix: "memory.computed",
    workflow: "MemoryComputed",
    what: "group by a computed key (100k groups), 2 aggregates",
  },
  {
    prefix: "memory.window",
    workflow: "MemoryWindow",
    what: "window per text key (row_number, lag), all rows out",
  },
  {
    prefix: "memory.whole",
    workflow: "MemoryWhole",
    what: "window over the whole input (sum, count), all rows out",
  },
  { prefix: "memory.total", workflow: "MemoryTotal", what: "aggregate without keys" },
  {
    prefix: "memory.join",
    workflow: "MemoryJoin",
    what: "left join with a PostgreSQL lookup (fetched per batch), then group by its column",
  },
];

/**
 * A table of the input's 997 merchants and their regions (some NULL, some missing) in the
 * PostgreSQL the tests use, for the join case; null (and why) when none answers.
 */
async function makeLookup(): Promise<
  { lookup: Lookup | null; why: string; drop: () => Promise<void> }
> {
  const env = (k: string, d: string) => Deno.env.get(k) ?? d;
  const lookup: Lookup = {
    table: `heddle_bench_merchants_${crypto.randomUUID().slice(0, 8)}`,
    host: env("HEDDLE_PG_HOST", "127.0.0.1"),
    port: Number(env("HEDDLE_PG_PORT", "5432")),
    user: env("HEDDLE_PG_USER", "heddle"),
    password: env("HEDDLE_PG_PASSWORD", "heddle"),
    database: env("HEDDLE_PG_DATABASE", "heddle"),
  };
  const { default: pg } = await import("pg");
  // A connection per use: the server may end idle ones while the runs go on.
  const sql = async (...statements: string[]) => {
    const client = new pg.Client({ ...lookup, connectionTimeoutMillis: 3000 });
    client.on("error", () => {});
    await client.connect();
    try {
      for (const q of statements) await client.query(q);
    } finally {
      await client.end().catch(() => {});
    }
  };
  const regions = ["north", "south", "Östra", "東"];
  const values = Array.from(
    { length: 990 },
    (_, k) => `('m-${k}', ${k % 11 === 0 ? "NULL" : `'${regions[k % regions.length]}'`})`,
  );
  try {
    await sql(
      `CREATE TABLE ${lookup.table} (name text PRIMARY KEY, region text)`,
      `INSERT INTO ${lookup.table} VALUES ${values.join(", ")}`,
    );
  } catch (err) {
    const why = `no PostgreSQL at ${lookup.host}:${lookup.port} (${(err as Error).message}); ` +
      "start one with `tests/services/postgres.sh start`";
    return { lookup: null, why, drop: async () => {} };
  }
  return {
    lookup,
    why: "",
    drop: () => sql(`DROP TABLE IF EXISTS ${lookup.table}`).catch(() => {}),
  };
}

async function writeInput(path: string, rows: number): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  for (let i = 0; i < rows; i += 100_000) {
    const lines: string[] = [];
    for (let k = i; k < Math.min(rows, i + 100_000); k++) {
      lines.push(`{"id":${k},"amount":${(k * 7919) % 100_000 / 100},"merchant":"m-${k % 997}"}`);
    }
    const bytes = enc.encode(lines.join("\n") + "\n");
    for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
  }
}

function kib(status: string, field: string): number {
  return Number(status.match(new RegExp(`^${field}:\\s+(\\d+)`, "m"))?.[1] ?? 0);
}

function bytesOf(dir: string, prefix: string): number {
  let total = 0;
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (!e.name.startsWith(prefix)) continue;
      try {
        total += Deno.statSync(`${dir}/${e.name}`).size;
      } catch { /* removed meanwhile */ }
    }
  } catch { /* no such directory yet */ }
  return total;
}

async function runOnce(dir: string, workflow: string, budget: number | null): Promise<Peak> {
  const tmp = `${dir}/tmp-${budget ?? "none"}`;
  Deno.mkdirSync(tmp, { recursive: true });
  const args = ["run", "-A", `${ROOT}cli/main.ts`, "run", `${dir}/memory.he`, "-w", workflow];
  if (budget !== null) args.push("--memory-budget", String(budget));
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: dir,
    env: { TMPDIR: tmp, PG_PASSWORD: Deno.env.get("HEDDLE_PG_PASSWORD") ?? "heddle" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const peak: Peak = { ms: 0, rssMiB: 0, shmMiB: 0, spillMiB: 0, status: 0 };
  let done = false;
  const status = child.status.then((s) => {
    done = true;
    return s;
  });
  while (!done) {
    try {
      const text = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      peak.rssMiB = Math.max(peak.rssMiB, kib(text, "VmHWM") / 1024, kib(text, "VmRSS") / 1024);
    } catch { /* exited between checks */ }
    peak.shmMiB = Math.max(peak.shmMiB, bytesOf("/dev/shm", `heddle-${child.pid}-`) / MiB);
    peak.spillMiB = Math.max(
      peak.spillMiB,
      bytesOf(`${tmp}/heddle-spill-${Deno.uid()}`, "heddle-") / MiB,
    );
    await new Promise((r) => setTimeout(r, 50));
  }
  const s = await status;
  peak.ms = performance.now() - t0;
  peak.status = s.code;
  if (!s.success) {
    throw new Error(`heddle run failed (exit ${s.code}): ${(await stderr).slice(-800)}`);
  }
  await stderr;
  return peak;
}

/** Whether two files hold the same bytes (read in chunks: outputs reach hundreds of MiB). */
async function sameBytes(a: string, b: string): Promise<boolean> {
  if (Deno.statSync(a).size !== Deno.statSync(b).size) return false;
  using fa = await Deno.open(a), fb = await Deno.open(b);
  const x = new Uint8Array(1 << 20), y = new Uint8Array(1 << 20);
  for (;;) {
    const n = await readFull(fa, x), m = await readFull(fb, y);
    if (n !== m) return false;
    if (n === 0) return true;
    for (let i = 0; i < n; i++) if (x[i] !== y[i]) return false;
  }
}

async function readFull(f: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let at = 0;
  while (at < buf.length) {
    const n = await f.read(buf.subarray(at));
    if (n === null) break;
    at += n;
  }
  return at;
}

/** How many files a finished run left in its spill directory. */
function leftovers(spill: string): number {
  try {
    return [...Deno.readDirSync(spill)].length;
  } catch {
    return 0; // never created
  }
}

export async function benchMemory(o: MemoryOptions): Promise<BenchSection> {
  const log = o.log ?? (() => {});
  const dir = await Deno.makeTempDir({ prefix: "heddle-bench-memory-" });
  let drop = async () => {};
  try {
    const cases = CASES.filter((c) => !o.cases || o.cases.includes(c.prefix));
    const pg = cases.some((c) => c.workflow === "MemoryJoin") ? await makeLookup() : null;
    drop = pg?.drop ?? drop;
    Deno.writeTextFileSync(`${dir}/memory.he`, program(pg?.lookup ?? null));
    await writeInput(`${dir}/in.jsonl`, o.rows);
    const inputMiB = Deno.statSync(`${dir}/in.jsonl`).size / MiB;
    const budgetName = `${o.budget / MiB} MiB budget`;
    const baselineName = "no budget (default 1 GiB)";
    const rows = [];
    const notes: string[] = [];
    for (const c of cases) {
      if (c.workflow === "MemoryJoin" && !pg?.lookup) {
        notes.push(`${c.prefix} skipped: ${pg?.why}`);
        log(`${c.prefix} skipped: ${pg?.why}`);
        continue;
      }
      const free = await runOnce(dir, c.workflow, null);
      await Deno.rename(`${dir}/out.jsonl`, `${dir}/out-unbounded.jsonl`);
      const bounded = await runOnce(dir, c.workflow, o.budget);
      const same = await sameBytes(`${dir}/out.jsonl`, `${dir}/out-unbounded.jsonl`);
      const left = leftovers(`${dir}/tmp-${o.budget}/heddle-spill-${Deno.uid()}`);
      log(
        `${c.prefix}: ${free.rssMiB.toFixed(0)} MiB unbounded, ` +
          `${bounded.rssMiB.toFixed(0)} MiB budgeted`,
      );
      rows.push(
        row(`${c.prefix}.peak_rss`, bounded.rssMiB, "MiB", free.rssMiB, {
          baselineName,
          note: rssCheck(bounded.rssMiB, o.budget / MiB) ??
            `${c.what}; ${budgetName}; VmHWM of the heddle process (includes mapped shm it ` +
              `touched); limit: budget + ${OVERHEAD_MIB} MiB`,
        }),
        row(`${c.prefix}.peak_shm`, bounded.shmMiB, "MiB", free.shmMiB, {
          baselineName,
          note: "bytes of the run's segments in /dev/shm, sampled every 50 ms",
        }),
        row(`${c.prefix}.peak_spill`, bounded.spillMiB, "MiB", free.spillMiB, {
          baselineName,
          note: "bytes in the spill directory, sampled",
        }),
        row(`${c.prefix}.time`, bounded.ms, "ms", free.ms, {
          baselineName,
          note: !same
            ? "FAILED: the budgeted run's output differs from the unbounded run's"
            : left > 0
            ? `FAILED: ${left} spill file(s) left behind`
            : "output identical to the unbounded run's; no spill file left behind",
        }),
      );
    }
    return {
      name: "memory",
      title: `Memory: ${o.rows.toLocaleString("en-US")} rows through five stages`,
      runs: 1,
      rows,
      notes: [
        `input: ${inputMiB.toFixed(0)} MiB of JSONL; a sort, group, distinct, window or ` +
        "aggregate must see every row before its last output row: this is what the budget is for",
        "one run each (a run is long); the time includes process start-up and compiling",
        ...notes,
      ],
    };
  } finally {
    await drop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
