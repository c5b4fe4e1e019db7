/**
 * The one result shape every benchmark returns, and the report built from it: the machine it
 * ran on, one table per benchmark, and the same data as JSON for tooling. Ratios are computed
 * here, from the measured numbers, and nowhere else, so a table can never show a ratio that
 * does not follow from its own columns. This file must never measure anything itself.
 */

/** One measurement, optionally against the baseline a user would otherwise pick. */
export interface BenchRow {
  /** Dotted name, e.g. `handoff.ts-ts.100MB.shm.total`. */
  name: string;
  /** Heddle's measured value (median of the runs), unrounded. */
  value: number;
  unit: string;
  /** The baseline's measured value in the same unit, or null when there is none. */
  baseline: number | null;
  /** What the baseline is (e.g. `JSON over HTTP`). */
  baselineName?: string;
  /** How many times better Heddle is than the baseline (>1: Heddle wins); see `ratioOf`. */
  ratio: number | null;
  note?: string;
}

/** The result of one benchmark: its rows and what a reader must know to interpret them. */
export interface BenchSection {
  name: string;
  title: string;
  /** Runs each median is taken over. */
  runs: number;
  rows: BenchRow[];
  notes: string[];
  /** Set when the benchmark could not run here (e.g. no Kafka broker); rows are then empty. */
  skipped?: string;
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  deno: string;
  v8: string;
  pyarrow: string | null;
  python: string | null;
  kernel: string;
}

/** Units where a larger number is better; every other unit is a cost (time, bytes). */
const HIGHER_IS_BETTER = new Set(["lines/s", "events/s", "MB/s", "rows/s"]);

/**
 * The speed-up of Heddle over its baseline: baseline / value for costs, value / baseline for
 * rates. Null when either number is missing or zero.
 */
export function ratioOf(value: number, baseline: number | null, unit: string): number | null {
  if (baseline === null || !(value > 0) || !(baseline > 0)) return null;
  return HIGHER_IS_BETTER.has(unit) ? value / baseline : baseline / value;
}

/** Builds a row, computing its ratio from `value` and `baseline`. */
export function row(
  name: string,
  value: number,
  unit: string,
  baseline: number | null = null,
  extra: { baselineName?: string; note?: string } = {},
): BenchRow {
  return { name, value, unit, baseline, ratio: ratioOf(value, baseline, unit), ...extra };
}

/**
 * CPU milliseconds (user + system, every thread) of a process (`self` or a pid), or of its
 * waited-for children, from `/proc/<pid>/stat`; null where there is no such file.
 */
export function cpuMs(pid: number | "self", whose: "own" | "children" = "own"): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces), from the 3rd: utime and stime are
    // the 14th and 15th, cutime and cstime the 16th and 17th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const at = whose === "own" ? 11 : 13;
    return (Number(fields[at]) + Number(fields[at + 1])) * 10; // clock ticks of 10 ms
  } catch {
    return null;
  }
}

/**
 * A goal as a pass/fail row: 1 when `value` is under `limit`, else 0, with the machine's load
 * average at the time in its note (a goal missed on a loaded machine says so). Never a FAILED
 * note: a timing goal is reported, not asserted.
 */
export function goalRow(name: string, value: number, limit: number, unit: string): BenchRow {
  const met = value < limit;
  const load = Deno.loadavg()[0].toFixed(1);
  return row(`${name}.goal`, met ? 1 : 0, "pass", null, {
    note:
      `${met ? "met" : "missed"}: ${formatNumber(value)} ${unit} against under ${limit} ${unit}` +
      ` (load average ${load})`,
  });
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = values.toSorted((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = values.toSorted((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function cpuModel(): { cpu: string; cores: number } {
  const text = readOr("/proc/cpuinfo", "");
  const model = text.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? "unknown";
  const cores = (text.match(/^processor\s*:/gm) ?? []).length || navigator.hardwareConcurrency;
  return { cpu: model, cores };
}

function readOr(path: string, fallback: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return fallback;
  }
}

/** Available memory in bytes (`MemAvailable`), for deciding whether a 1 GB batch fits. */
export function memoryAvailable(): number {
  const kb = readOr("/proc/meminfo", "").match(/^MemAvailable:\s+(\d+)/m)?.[1];
  return kb ? Number(kb) * 1024 : 0;
}

/** Why a Python peer cannot run here, or null when its package imports. */
export async function missingPeer(module: string): Promise<string | null> {
  try {
    const r = await new Deno.Command("python3", {
      args: ["-c", `import ${module}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success ? null : `python3 cannot import \`${module}\` (pip install it to compare)`;
  } catch {
    return "no python3";
  }
}

async function pythonVersions(): Promise<{ python: string | null; pyarrow: string | null }> {
  try {
    const out = await new Deno.Command("python3", {
      args: ["-c", "import sys, pyarrow; print(sys.version.split()[0], pyarrow.__version__)"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const [python, pyarrow] = new TextDecoder().decode(out.stdout).trim().split(" ");
    return out.success ? { python, pyarrow } : { python: null, pyarrow: null };
  } catch {
    return { python: null, pyarrow: null };
  }
}

export async function machine(): Promise<Machine> {
  const kb = readOr("/proc/meminfo", "").match(/^MemTotal:\s+(\d+)/m)?.[1];
  return {
    ...cpuModel(),
    memoryGiB: kb ? Math.round(Number(kb) / 1024 / 1024 * 10) / 10 : 0,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    ...(await pythonVersions()),
    kernel: Deno.osRelease(),
  };
}

export function machineLine(m: Machine): string {
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; Linux ${m.kernel}; Deno ${m.deno}` +
    ` (V8 ${m.v8}); Python ${m.python ?? "absent"}, pyarrow ${m.pyarrow ?? "absent"}`;
}

/** Three significant digits, without exponent notation for ordinary magnitudes. */
export function formatNumber(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return "-";
  const abs = Math.abs(x);
  if (abs >= 1000) return Math.round(x).toLocaleString("en-US");
  if (abs === 0) return "0";
  const digits = Math.max(0, 2 - Math.floor(Math.log10(abs)));
  return x.toFixed(Math.min(digits, 6));
}

/** A Markdown table (readable in a terminal, pasteable into docs/benchmarks.md). */
export function renderSection(s: BenchSection, m: Machine): string {
  const lines = [`### ${s.title} (\`--only ${s.name}\`)`, ""];
  lines.push(`Machine: ${machineLine(m)}. Median of ${s.runs} runs.`, "");
  if (s.skipped) return [...lines, `SKIPPED: ${s.skipped}`, ""].join("\n");
  const header = ["measurement", "Heddle", "unit", "baseline", "baseline value", "ratio", "note"];
  const body = s.rows.map((r) => [
    r.name,
    formatNumber(r.value),
    r.unit,
    r.baselineName ?? "",
    formatNumber(r.baseline),
    r.ratio === null ? "" : `${formatNumber(r.ratio)}x`,
    r.note ?? "",
  ]);
  lines.push(`| ${header.join(" | ")} |`, `|${header.map(() => " --- ").join("|")}|`);
  for (const cells of body) lines.push(`| ${cells.join(" | ")} |`);
  if (s.notes.length) lines.push("", ...s.notes.map((n) => `- ${n}`));
  return lines.join("\n") + "\n";
}
