/**
 * Smoke test of the benchmark suite (`deno task bench`): runs every benchmark at toy sizes
 * and checks the report's shape, that every ratio follows from the row's own measured
 * numbers, and that the JSON output is what the tables show. It must never assert anything
 * about timings: speed is what the suite reports, not what tests check.
 */
import assert from "node:assert/strict";
import { BENCHMARK_NAMES, failedChecks, type Report, runSuite } from "../../bench/main.ts";
import { type BenchRow, missingPeer, ratioOf, row } from "../../bench/_report.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
/** The handoff benchmark's peers: the module that must import, its name, its baseline. */
const PEERS = [
  ["vineyard", "Vineyard", "Vineyard (Python producer and consumer)"],
  ["ray", "Ray", "Ray (Python producer, actor consumer)"],
];

function assertRowShape(r: BenchRow): void {
  assert.equal(typeof r.name, "string");
  assert.equal(typeof r.unit, "string");
  // A row reports FAILED when its check failed (a wrong answer, a memory budget exceeded).
  assert.ok(!r.note?.startsWith("FAILED"), `${r.name}: ${r.note}`);
  // No sign check: per-stage rows are differences of two timings, which at toy sizes can
  // come out below zero; asserting otherwise would be a timing assertion.
  assert.ok(Number.isFinite(r.value), `${r.name}: value ${r.value}`);
  assert.ok(r.baseline === null || Number.isFinite(r.baseline), `${r.name}: baseline`);
  assert.equal(r.ratio, ratioOf(r.value, r.baseline, r.unit), `${r.name}: ratio`);
  if (r.baseline !== null && r.baseline > 0 && r.value > 0) {
    assert.ok(r.baselineName, `${r.name} has a baseline without a name`);
  }
}

Deno.test("runSuite() at tiny sizes reports every benchmark with ratios computed from its numbers", async () => {
  const chart = await Deno.makeTempFile({ suffix: ".svg" });
  try {
    const { report, failed } = await runSuite({ scale: "tiny", chart });
    assert.deepEqual(report.sections.map((s) => s.name), BENCHMARK_NAMES);
    assert.ok(report.machine.cpu.length > 0 && report.machine.cores >= 1);
    assert.match(report.machine.deno, /^\d+\.\d+\.\d+/);
    for (const s of report.sections) {
      if (s.skipped) {
        // Only the Kafka benchmark may be skipped, for want of a broker, and the cluster
        // benchmark where network namespaces are not permitted.
        assert.ok(
          ["e2e", "recovery", "cluster"].includes(s.name),
          `${s.name} did not run: ${s.skipped}`,
        );
        assert.match(s.skipped, s.name === "cluster" ? /namespaces need/ : /no Kafka broker/);
        continue;
      }
      assert.ok(s.rows.length > 0, `${s.name} reported no rows`);
      assert.ok(s.runs >= 1);
      s.rows.forEach(assertRowShape);
    }
    assert.deepEqual(report.sections.flatMap(failedChecks), []);
    assert.equal(failed, false, "the suite reported a failure");
    const handoff = report.sections.find((s) => s.name === "handoff")!;
    // The Python consumer is also measured against Vineyard and Ray where they are installed
    // (CI installs both); a peer that is not is skipped with one note saying so.
    const peers: string[] = [];
    for (const [module, label, baselineName] of PEERS) {
      if (await missingPeer(module) === null) peers.push(baselineName);
      else assert.ok(handoff.notes.some((n) => n.startsWith(`the ${label} peer skipped: `)));
    }
    for (const consumer of ["ts", "py", "go", "rust"]) {
      for (const size of [0.05, 0.2]) {
        const at = `handoff.ts->${consumer}.${size}MB`;
        const baselines = (what: string) =>
          handoff.rows.filter((r) => r.name === `${at}.${what}`).map((r) => r.baselineName);
        const its = consumer === "py" ? peers : [];
        assert.deepEqual(baselines("end_to_end"), [
          "JSON over HTTP",
          "Arrow IPC over Unix socket",
          ...its,
        ]);
        // Start-up is reported on its own row, Heddle's and each peer's, never hidden.
        assert.deepEqual(baselines("start"), [undefined, ...its]);
      }
    }
    assert.match(await Deno.readTextFile(chart), /^<svg[^>]*>[\s\S]*<polyline[\s\S]*<\/svg>\n$/);
  } finally {
    await Deno.remove(chart);
  }
});

Deno.test("failedChecks() finds a section's FAILED rows and a section that could not run", () => {
  const ok = row("memory.peak_rss", 300, "MiB", 400, { baselineName: "no budget" });
  const over = row("memory.peak_rss", 900, "MiB", 400, {
    baselineName: "no budget",
    note: "FAILED: peak RSS 900 MiB exceeds the 256 MiB budget + 512 MiB",
  });
  const section = { name: "memory", title: "m", runs: 1, rows: [ok], notes: [] };
  assert.deepEqual(failedChecks(section), []);
  assert.deepEqual(failedChecks({ ...section, rows: [ok, over] }), [
    "memory.peak_rss: FAILED: peak RSS 900 MiB exceeds the 256 MiB budget + 512 MiB",
  ]);
  assert.deepEqual(failedChecks({ ...section, rows: [], skipped: "FAILED: boom" }), [
    "memory: FAILED: boom",
  ]);
  assert.throws(() => assertRowShape(over), /exceeds the 256 MiB budget/);
});

Deno.test("bench/main.ts --output json prints one report document on stdout", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/main.ts", "--tiny", "--only", "compiler", "--output", "json"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const report = JSON.parse(new TextDecoder().decode(out.stdout)) as Report;
  assert.equal(report.scale, "tiny");
  assert.deepEqual(report.sections.map((s) => s.name), ["compiler"]);
  const parse = report.sections[0].rows.find((r) => /^compiler\.parse_\d+_lines$/.test(r.name));
  assert.ok(parse, "the parse row is missing");
  assert.equal(parse.baseline, 100);
  report.sections[0].rows.forEach(assertRowShape);
  // The human tables go to stderr, so stdout stays parseable.
  assert.match(new TextDecoder().decode(out.stderr), /\| measurement \| Heddle \|/);
});

Deno.test("bench/main.ts rejects an unknown benchmark name with usage and exit code 2", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/main.ts", "--only", "nope"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.match(new TextDecoder().decode(out.stderr), /no benchmark `nope` \(there are: handoff/);
});
