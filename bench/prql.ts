/**
 * Benchmark of the PRQL engine's relational stages (filter, derive, group/aggregate, join,
 * sort, sort + take, take, a running sum per key) against DuckDB and Polars, each on one thread, over the same rows
 * written once as Arrow IPC files. Every engine runs in a process of its own that loads the
 * files, then runs each query once cold (Heddle's cold run includes compiling the PRQL) and
 * `runs` times warm (wall-clock and, since the machine may be shared, CPU time too); every run materialises the whole result as an Arrow table, starting
 * from Arrow tables in memory, so the cost of getting data into each engine is counted
 * (Polars' conversion from Arrow is in its load time, reported apart). DuckDB runs the SQL
 * prql-js generates; Polars runs hand-written equivalents (bench/_prql_peers.py). Row
 * counts must agree across engines: a disagreement is reported as FAILED. A peer whose
 * Python package is missing is skipped with one line. This file must never assert speed.
 */
import * as arrow from "apache-arrow";
import process from "node:process";
import { compilePrql, execute } from "../runtime/prql/mod.ts";
import { type BenchRow, median, row } from "./_report.ts";

export type { BenchRow };

const ROOT = new URL("..", import.meta.url).pathname;

/** The queries, named; Polars' equivalents carry the same names in bench/_prql_peers.py. */
export const QUERIES: Record<string, string> = {
  filter: "from input | filter amount > 10000 | select {user_id, amount}",
  derive: "from input | derive {v = amount * qty / 100} | filter v > 50 && qty != 7",
  group_aggregate:
    "from input | group {name} (aggregate {n = count this, s = sum amount, a = average qty})",
  join: "from input | join users (==user_id) | select {input.user_id, amount, country}",
  sort: "from input | sort {-amount}",
  sort_take: "from input | sort {-amount} | take 100",
  take: "from input | take 1000",
  window: "from input | group {name} (window expanding:true (derive {running = sum amount}))",
};

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Utf8 vector built straight from offsets and bytes (vectorFromArray is slow at 10M). */
function utf8Vector(n: number, value: (i: number) => string): arrow.Vector {
  const enc = new TextEncoder();
  const offsets = new Int32Array(n + 1);
  const parts: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const b = enc.encode(value(i));
    parts.push(b);
    offsets[i + 1] = at += b.length;
  }
  const bytes = new Uint8Array(at);
  for (let i = 0; i < n; i++) bytes.set(parts[i], offsets[i]);
  return arrow.makeVector(
    arrow.makeData({ type: new arrow.Utf8(), length: n, valueOffsets: offsets, data: bytes }),
  );
}

/** `input` (rows) with a 1,000-value text key, and `users` (rows / 10) to join with. */
function makeTables(rows: number): Record<string, arrow.Table> {
  const rnd = prng(1);
  const userCount = Math.max(10, Math.floor(rows / 10));
  const uid = new Int32Array(rows), amount = new Float64Array(rows), qty = new Int32Array(rows);
  const merchant = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    uid[i] = Math.floor(rnd() * userCount);
    amount[i] = Math.floor(rnd() * 2_000_000) / 100;
    qty[i] = Math.floor(rnd() * 50);
    merchant[i] = Math.floor(rnd() * 1000);
  }
  const countries = ["FR", "DE", "US", "JP", "BR", "IN"];
  return {
    input: new arrow.Table({
      user_id: arrow.makeVector(uid),
      amount: arrow.makeVector(amount),
      qty: arrow.makeVector(qty),
      name: utf8Vector(rows, (i) => `merchant-${merchant[i]}`),
    }),
    users: new arrow.Table({
      user_id: arrow.makeVector(new Int32Array(userCount).map((_, i) => i)),
      country: utf8Vector(userCount, (i) => countries[i % countries.length]),
    }),
  };
}

/** What each engine's process reports. */
interface EngineResult {
  skipped?: string;
  load_ms?: number;
  queries?: Record<string, { cold_ms: number; warm_ms: number; warm_cpu_ms: number; rows: number }>;
}

/** Heddle's side, run in a process of its own (`--worker`): same shape as the peers' JSON. */
async function heddleWorker(
  dir: string,
  runs: number,
  queries: Record<string, string>,
): Promise<EngineResult> {
  const t0 = performance.now();
  const tables: Record<string, arrow.Table> = {};
  for (const name of ["input", "users"]) {
    tables[name] = arrow.tableFromIPC(await Deno.readFile(`${dir}/${name}.arrow`));
  }
  const schemas = Object.fromEntries(Object.entries(tables).map(([k, t]) => [k, t.schema]));
  const out: EngineResult = { load_ms: performance.now() - t0, queries: {} };
  for (const [name, text] of Object.entries(queries)) {
    const times: number[] = [], cpu: number[] = [];
    let rows = 0;
    // The cold run compiles, as a stage does the first time it meets a block.
    let t = performance.now();
    const q = compilePrql(text, schemas).value!;
    for (let r = 0; r <= runs; r++) {
      if (r > 0) t = performance.now();
      const c = process.cpuUsage();
      rows = execute(q, tables).numRows;
      times.push(performance.now() - t);
      const used = process.cpuUsage(c);
      cpu.push((used.user + used.system) / 1000);
    }
    out.queries![name] = {
      cold_ms: times[0],
      warm_ms: median(times.slice(1)),
      warm_cpu_ms: median(cpu.slice(1)),
      rows,
    };
  }
  return out;
}

async function runEngine(
  engine: "heddle" | "duckdb" | "polars",
  dir: string,
  runs: number,
  sql: Record<string, string>,
): Promise<EngineResult> {
  const cmd = engine === "heddle"
    ? new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}bench/prql.ts`,
        "--worker",
        dir,
        String(runs),
        Object.keys(sql).join(","),
      ],
      stdout: "piped",
      stderr: "piped",
    })
    : new Deno.Command("python3", {
      args: [`${ROOT}bench/_prql_peers.py`, engine, dir, String(runs)],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    });
  let child: Deno.ChildProcess;
  try {
    child = cmd.spawn();
  } catch (e) {
    return { skipped: `${engine}: cannot start (${e instanceof Error ? e.message : e})` };
  }
  if (engine !== "heddle") {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(JSON.stringify(sql)));
    await w.close();
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(
      `${engine} failed (exit ${out.code}): ${new TextDecoder().decode(out.stderr).slice(-600)}`,
    );
  }
  return JSON.parse(text.split("\n").pop()!) as EngineResult;
}

const PEERS = [
  { engine: "duckdb", label: "DuckDB (1 thread)" },
  { engine: "polars", label: "Polars (1 thread)" },
] as const;

/**
 * Runs every query on Heddle, DuckDB and Polars over `rows` input rows; one row per
 * measurement, Heddle's time against each peer's (ratio > 1: Heddle is faster).
 */
export async function benchPrql(
  rows: number,
  runs: number,
  only: string[] = Object.keys(QUERIES),
): Promise<{ rows: BenchRow[]; notes: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "heddle-bench-prql-" });
  try {
    const tables = makeTables(rows);
    for (const [name, t] of Object.entries(tables)) {
      await Deno.writeFile(`${dir}/${name}.arrow`, arrow.tableToIPC(t, "file"));
    }
    const schemas = Object.fromEntries(Object.entries(tables).map(([k, t]) => [k, t.schema]));
    const sql = Object.fromEntries(
      only.map((k) => [k, compilePrql(QUERIES[k], schemas).value!.sql]),
    );
    const mine = await runEngine("heddle", dir, runs, sql);
    const out: BenchRow[] = [];
    const notes: string[] = [];
    const size = rows >= 1e6 ? `${rows / 1e6}M` : `${rows / 1e3}k`;
    out.push(row(`prql.${size}.heddle.load`, mine.load_ms!, "ms", null, {
      note: "read the Arrow IPC files",
    }));
    const peers = [];
    for (const p of PEERS) {
      const r = await runEngine(p.engine, dir, runs, sql);
      if (r.skipped) notes.push(`${p.label} skipped: ${r.skipped}`);
      else {
        peers.push({ ...p, r });
        out.push(row(`prql.${size}.${p.engine}.load`, r.load_ms!, "ms", null, {
          note: p.engine === "polars" ? "read the files + pl.from_arrow" : "read the files",
        }));
      }
    }
    for (const name of only) {
      const m = mine.queries![name];
      for (const { engine, label, r } of peers) {
        const t = r.queries![name];
        if (!t) continue;
        const wrong = t.rows !== m.rows
          ? `FAILED: ${label} returned ${t.rows} rows, Heddle ${m.rows}`
          : undefined;
        for (const phase of ["warm", "warm_cpu", "cold"] as const) {
          const v = m[`${phase}_ms`], b = t[`${phase}_ms`];
          out.push(row(`prql.${size}.${name}.${phase}.vs_${engine}`, v, "ms", b, {
            baselineName: label,
            note: wrong ?? (phase === "warm" && engine === "duckdb" ? "goal: ratio >= 0.5" : ""),
          }));
        }
      }
    }
    notes.push(
      `${size} rows (1,000 distinct text keys); the join dimension has ` +
        `${tables.users.numRows.toLocaleString("en-US")} rows`,
    );
    return { rows: out, notes };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--worker") {
    const names = Deno.args[3].split(",");
    const queries = Object.fromEntries(names.map((k) => [k, QUERIES[k]]));
    console.log(JSON.stringify(await heddleWorker(Deno.args[1], Number(Deno.args[2]), queries)));
  } else {
    // `deno run -A bench/prql.ts [rows] [query,query..] [runs]`: one size, some queries
    // (e.g. `10000000 join` to look at one stage at 10M rows without the whole suite).
    const only = Deno.args[1]?.split(",") ?? Object.keys(QUERIES);
    const unknown = only.filter((k) => !(k in QUERIES));
    if (unknown.length > 0) {
      console.error(`unknown queries: ${unknown.join(", ")}; known: ${Object.keys(QUERIES)}`);
      Deno.exit(2);
    }
    const runs = Number(Deno.args[2] ?? 3);
    const { rows } = await benchPrql(Number(Deno.args[0] ?? 1_000_000), runs, only);
    for (const r of rows) {
      console.log(
        `${r.name.padEnd(44)} ${r.value.toFixed(1).padStart(9)} ${r.unit}` +
          (r.baseline === null
            ? ""
            : `  ${r.baselineName} ${r.baseline.toFixed(1)}  ratio ${r.ratio?.toFixed(2)}`) +
          (r.note ? `  ${r.note}` : ""),
      );
    }
  }
}
