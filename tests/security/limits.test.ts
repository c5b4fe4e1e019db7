/**
 * Issue 15, "unbounded costs per request": a deploy's source and IR are stored once (not
 * once per workflow: a 400-workflow, 60 KB file made a 236 MB `control.db`), deploys over
 * the daemon's limits get a clear refusal and exit 1 (a deploy over 4 MB ended in exit 70),
 * and run history is read a page at a time (`workflow runs` after ~3,500 runs ended in
 * exit 70) and pruned to `--keep-runs`.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { heddle } from "../_cli.ts";
import { manyWorkflows, ownerOf, startAndWait, startDaemon } from "./_fixtures.ts";

function bytesOf(dir: string, prefix: string): number {
  return [...Deno.readDirSync(dir)].filter((e) => e.name.startsWith(prefix))
    .reduce((n, e) => n + Deno.statSync(`${dir}/${e.name}`).size, 0);
}

function rssOf(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

Deno.test("a 2,000-workflow deploy is stored once, with bounded database size and memory", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/many.he`, manyWorkflows(2000));
  await Deno.writeTextFile(`${dir}/more.he`, manyWorkflows(2001));
  const daemon = await startDaemon(`${dir}/state`, ["--max-workflows", "2000"]);
  const owner = ["--server", daemon.address, "--state", daemon.state];
  try {
    const ir = await heddle(["inspect", "--ir", "--output", "json", `${dir}/many.he`]);
    assert.equal(ir.code, 0, ir.stderr);
    const deployed = await heddle(["workflow", "deploy", ...owner, `${dir}/many.he`]);
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.equal(deployed.stdout.trim().split("\n").length, 2000);
    const redeployed = await heddle(["workflow", "deploy", ...owner, `${dir}/many.he`]);
    assert.equal(redeployed.code, 0, redeployed.stderr);
    const database = bytesOf(daemon.state, "control.db");
    // One copy of the IR and source (the replaced deploy is deleted), not one per workflow.
    assert.ok(
      database < 4 * ir.stdout.length,
      `control.db ${database} bytes for an IR of ${ir.stdout.length}`,
    );
    const rss = rssOf(daemon.child.pid);
    assert.ok(rss < 1024 ** 3, `daemon RSS ${rss} bytes after the deploy`);
    const list = await heddle(["workflow", "list", ...owner]);
    assert.match(list.stdout, /^W1999 v2 /m);

    const over = await heddle(["workflow", "deploy", ...owner, `${dir}/more.he`]);
    assert.equal(over.code, 1);
    assert.match(
      over.stderr,
      /declares 2001 workflows; .* up to 2000 per deploy \(--max-workflows\)/,
    );
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a deploy over the source limit is refused with one line and exit 1, never 70", async () => {
  const dir = await Deno.makeTempDir();
  // 5 MB: above the daemon's default 1 MiB and above gRPC's former 4 MB message limit.
  const padding = ("// " + "x".repeat(97) + "\n").repeat(50_000);
  await Deno.writeTextFile(`${dir}/big.he`, padding + manyWorkflows(1));
  const daemon = await startDaemon(`${dir}/state`);
  try {
    const r = await heddle(["workflow", "deploy", ...ownerOf(daemon), `${dir}/big.he`]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /are \d+ bytes; this control plane accepts up to 1048576 bytes/);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Adds `n` finished runs (with a 1 KB summary each) to a stopped daemon's database. */
function plantRuns(state: string, n: number, from = 0): void {
  const db = new DatabaseSync(`${state}/control.db`);
  const insert = db.prepare(
    "insert into runs (id, workflow, status, started_at, ended_at, summary_json) " +
      "values (?, 'W', 'succeeded', ?, ?, ?)",
  );
  const summary = JSON.stringify({ note: "s".repeat(1000) });
  db.exec("begin");
  for (let i = from; i < from + n; i++) {
    const at = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
    insert.run(`run-${String(i).padStart(5, "0")}`, at, at, summary);
  }
  db.exec("commit");
  db.close();
}

Deno.test("10,000 runs are listed page by page, newest first", async () => {
  const dir = await Deno.makeTempDir();
  const state = `${dir}/state`;
  await (await startDaemon(state)).stop();
  plantRuns(state, 10_000);
  const daemon = await startDaemon(state);
  const owner = ["--server", daemon.address, "--state", state];
  try {
    const seen: string[] = [];
    let page: string | undefined;
    let pages = 0;
    do {
      const r = await heddle([
        "workflow",
        "runs",
        "--output",
        "json",
        "--limit",
        "1000",
        ...(page ? ["--page", page] : []),
        ...owner,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const body = JSON.parse(r.stdout);
      seen.push(...body.runs.map((run: { id: string }) => run.id));
      page = body.nextPageToken || undefined;
      pages++;
    } while (page);
    assert.equal(pages, 10);
    assert.equal(seen.length, 10_000);
    assert.equal(new Set(seen).size, 10_000);
    assert.equal(seen[0], "run-09999");
    assert.equal(seen.at(-1), "run-00000");
    const all = await heddle(["workflow", "runs", "--all", "--output", "json", ...owner]);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(JSON.parse(all.stdout).runs.length, 10_000);
    const text = await heddle(["workflow", "runs", ...owner]);
    assert.equal(text.stdout.trim().split("\n").length, 100, "one page by default");
    assert.match(text.stderr, /more runs: add --page \d+/);
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("finished runs beyond --keep-runs are deleted with their attempts", async () => {
  const dir = await Deno.makeTempDir();
  const state = `${dir}/state`;
  await Deno.writeTextFile(`${dir}/in0.csv`, "n\n1\n");
  await Deno.writeTextFile(`${dir}/one.he`, manyWorkflows(1));
  await (await startDaemon(state)).stop();
  plantRuns(state, 20);
  const daemon = await startDaemon(state, ["--keep-runs", "5", "--allow-path", dir]);
  const owner = ["--server", daemon.address, "--state", state];
  try {
    assert.equal((await heddle(["workflow", "deploy", ...owner, `${dir}/one.he`])).code, 0);
    const run = await startAndWait(owner, "W0");
    assert.equal(run.code, 0, run.stderr);
    const runs = JSON.parse(
      (await heddle(["workflow", "runs", "--output", "json", ...owner])).stdout,
    ).runs;
    assert.deepEqual(
      runs.map((r: { id: string }) => r.id),
      [JSON.parse(run.stdout).runs[0].id, "run-00019", "run-00018", "run-00017", "run-00016"],
    );
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
