/**
 * `heddle run` and `heddle local` end to end, as processes: the quickstart's outputs are
 * compared row for row with what an independent reading of its input says they must be;
 * a restarted `heddle local` still knows what ran; and a run killed with SIGKILL leaves no
 * shared memory behind once the next run has started.
 */
import assert from "node:assert/strict";
import { heddle, spawnHeddle, waitForLine } from "../_cli.ts";
import { quickstartCopy, quickstartEnv as env } from "../_quickstart.ts";
import {
  deployAndRun,
  freePort,
  HANGING_STEP,
  segmentsOf,
  startLocal,
  writeCopyProgram,
  writeNumbers,
} from "./_fixtures.ts";

const examples = new URL("../../examples/", import.meta.url).pathname;

interface Tx {
  tx_id: string;
  user_id: number;
  amount: number;
  status: string;
}

/** The quickstart's input as a plain reading of the CSV: the well-formed rows only. */
async function transactions(): Promise<{ good: Tx[]; malformed: number }> {
  const lines = (await Deno.readTextFile(`${examples}data/transactions.csv`)).trim().split("\n");
  const good: Tx[] = [];
  let malformed = 0;
  for (const line of lines.slice(1)) {
    const f = line.split(",");
    if (f.length !== 6 || !Number.isFinite(Number(f[2])) || f[2] === "") {
      malformed++;
      continue;
    }
    good.push({ tx_id: f[0], user_id: Number(f[1]), amount: Number(f[2]), status: f[4] });
  }
  return { good, malformed };
}

function cents(amount: number): number {
  return Math.sign(amount) * Math.round(Math.abs(amount) * 100);
}

Deno.test("heddle run computes the quickstart's outputs row for row", async () => {
  const dir = await quickstartCopy();
  const r = await heddle(["run", `${dir}/quickstart.he`], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /run succeeded/);

  const { good, malformed } = await transactions();
  const settled = good.filter((t) => t.status === "settled" && t.amount > 0);
  const written = (await Deno.readTextFile(`${dir}/data/out/settled.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    written.map((w) => [String(w.tx_id), w.user_id, w.amount, w.amount_cents]).sort(),
    settled.map((t) => [t.tx_id, t.user_id, t.amount, cents(t.amount)]).sort(),
  );

  const totals = new Map<number, { payments: number; total: number; largest: number }>();
  for (const t of settled) {
    const s = totals.get(t.user_id) ?? { payments: 0, total: 0, largest: -Infinity };
    totals.set(t.user_id, {
      payments: s.payments + 1,
      total: s.total + cents(t.amount),
      largest: Math.max(s.largest, t.amount),
    });
  }
  const csv = (await Deno.readTextFile(`${dir}/data/out/totals_by_user.csv`)).trim().split("\n");
  assert.equal(csv[0], "user_id,payments,total_cents,largest");
  const rows = csv.slice(1).map((l) => l.split(",").map(Number));
  assert.deepEqual(
    rows,
    [...totals].map(([user, s]) => [user, s.payments, s.total, s.largest])
      .sort((a, b) => b[2] - a[2]),
  );

  const rejected = (await Deno.readTextFile(`${dir}/data/out/rejected.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(rejected.length, malformed);
  for (const row of rejected) {
    assert.equal(row._error_step, "fhub/file.read");
    assert.match(row._error_message, /transactions\.csv: record \d+/);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("heddle run --output json streams events and ends with a summary", async () => {
  const dir = await quickstartCopy();
  const r = await heddle(["run", "--output", "json", `${dir}/quickstart.he`], { env });
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(events[0].kind, "run-started");
  assert.ok(events.some((e) => e.kind === "stage-progress"));
  const summary = events.at(-1);
  assert.equal(summary.kind, "summary");
  assert.equal(summary.status, "succeeded");
  assert.equal(summary.stages["Quickstart.0"].rowsOut, (await transactions()).good.length);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a program with errors does not run and exits 1 with its diagnostics", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/bad.he`,
    'import "fhub/file" file\nworkflow W {\n  file.read { path: "x.csv" }\n}\n',
  );
  const r = await heddle(["run", `${dir}/bad.he`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[HE\d+\]/);
  assert.match(r.stderr, /format/);
  await Deno.remove(dir, { recursive: true });
});

async function stopLocal(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGTERM");
  const status = await child.status;
  await child.stdout.cancel();
  assert.equal(status.code, 0);
}

Deno.test("heddle local runs deployed workflows and remembers them after a restart", async () => {
  const dir = await quickstartCopy();
  const state = await Deno.makeTempDir();
  const port = freePort();
  const server = ["--server", `127.0.0.1:${port}`, "--state", state];
  let local = await startLocal(state, port, dir, env);
  try {
    const { deployed, run } = await deployAndRun(server, `${dir}/quickstart.he`, "Quickstart");
    assert.equal(deployed, "deployed Quickstart\n");
    assert.equal(run.status, "succeeded");
    assert.ok(await Deno.stat(`${dir}/data/out/settled.jsonl`));

    await stopLocal(local);
    local = await startLocal(state, port, dir, env);
    const runs = await heddle(["workflow", "runs", "--output", "json", ...server]);
    assert.deepEqual(
      JSON.parse(runs.stdout).runs.map((r: { id: string; status: string }) => [r.id, r.status]),
      [[run.id, "succeeded"]],
    );
    const status = await heddle(["workflow", "status", ...server, run.id]);
    assert.match(status.stdout, /Quickstart\.0 fhub\/file\.read: \d+ rows in/);
    const list = await heddle(["workflow", "list", ...server]);
    assert.match(list.stdout, /^Quickstart v1 /);
  } finally {
    await stopLocal(local);
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(state, { recursive: true });
  }
});

/** The pids of `parent`'s child processes, read from /proc. */
function childrenOf(parent: number): number[] {
  const children: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      // The parent pid is the second field after the parenthesised command name.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) children.push(Number(entry.name));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

async function gone(pid: number, withinMs: number): Promise<boolean> {
  for (const end = Date.now() + withinMs; Date.now() < end;) {
    if (!(await Deno.stat(`/proc/${pid}`).then(() => true, () => false))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

Deno.test("after kill -9 of a run, its plugin exits and the next start removes its memory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "heddle-kill-" });
  await writeNumbers(dir, 50_000);
  await Deno.symlink(`${examples}plugins/faulty`, `${dir}/faulty`);
  await writeCopyProgram(dir, "stuck.he", "Stuck", HANGING_STEP);
  const child = spawnHeddle(["run", "--batch-rows", "1000", `${dir}/stuck.he`]);
  await waitForLine(child.stderr, /file\.read: \d+ in/);
  // Batches are now waiting in shared memory behind the hanging plugin.
  assert.ok(segmentsOf(child.pid).length > 0, "the run holds shared-memory segments");
  const plugins = childrenOf(child.pid);
  assert.equal(plugins.length, 1, "the hanging plugin runs as a child process");
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel();
  assert.ok(segmentsOf(child.pid).length > 0, "SIGKILL leaves them behind");
  assert.ok(await gone(plugins[0], 10_000), "the orphaned plugin exits by itself");

  const next = await heddle(["run", `${examples}quickstart.he`]);
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(segmentsOf(child.pid), [], "the next start swept them");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("three adjacent PRQL blocks fuse into one query that computes what they would", async () => {
  const dir = await Deno.makeTempDir({ prefix: "heddle-fuse-" });
  await Deno.writeTextFile(`${dir}/in.csv`, "n\n" + [5, 12, 7, 30, 18, 1].join("\n") + "\n");
  const program = [
    'import "fhub/file" file',
    "workflow Fused {",
    '  file.read { path: "in.csv", format: "csv" } : { n: int64 }',
    "  | (",
    "    from input",
    "    filter n > 6",
    "  )",
    "  | ( from input | derive { m = n * 10 } )",
    "  | (",
    "    from input",
    "    sort {-m}",
    "    select {n, m}",
    "  )",
    '  | file.write { path: "out.csv", format: "csv" }',
    "}",
    "",
  ].join("\n");
  await Deno.writeTextFile(`${dir}/fused.he`, program);
  const ir = await heddle(["inspect", "--ir", `${dir}/fused.he`]);
  assert.equal((ir.stdout.match(/adjacent PRQL blocks/g) ?? []).length, 2, ir.stdout);
  const r = await heddle(["run", `${dir}/fused.he`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    await Deno.readTextFile(`${dir}/out.csv`),
    "n,m\n30,300\n18,180\n12,120\n7,70\n",
  );
  await Deno.remove(dir, { recursive: true });
});
