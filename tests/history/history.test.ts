/**
 * Run history and logs that last: `heddle run` records its run in the state directory's
 * database, `heddle workflow runs|status|logs` read it back (directly, or from a daemon
 * with --server), retention deletes old runs with their logs, `--follow` streams a live
 * run, several processes write one database at once, and a daemon killed and started
 * again still has its history. Real processes, a real plugin, real files.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { heddle, spawnHeddle, StreamText } from "../_cli.ts";
import {
  Daemon,
  env,
  listRuns,
  type LogJson,
  parseLines,
  readLogs,
  type RunJson,
  writeSlowProgram,
} from "./_fixtures.ts";
import { deployAndRun } from "../e2e/_fixtures.ts";
import { cli, ended, moving, until } from "../cluster/_heddle_cluster.ts";

/** The copy program's outputs in `dir`, lines sorted (a resumed run writes them anew). */
async function outputsOf(dir: string): Promise<string[][]> {
  const files = ["out.csv", "rejected.jsonl"].map((f) => Deno.readTextFile(`${dir}/${f}`));
  return (await Promise.all(files)).map((text) => text.split("\n").sort());
}

/** `heddle run` of `program` recording in `state`; returns the run's id. */
async function runRecorded(program: string, state: string, ...args: string[]): Promise<string> {
  const r = await heddle(["run", "--state", state, "--batch-rows", "10", ...args, program], {
    env,
  });
  assert.equal(r.code, 0, r.stderr);
  return /run (\S+) started/.exec(r.stderr)![1];
}

/** A run's state as the database has it now (read directly: no process to start). */
function statusIn(state: string, id: string): string {
  const db = new DatabaseSync(`${state}/control.db`, { readOnly: true });
  try {
    return String((db.prepare("select status from runs where id = ?").get(id) as Row).status);
  } finally {
    db.close();
  }
}

type Row = Record<string, unknown>;

function messages(lines: LogJson[]): string[] {
  return lines.map((l) => l.message);
}

Deno.test("heddle run records its run, and workflow logs prints its lines", async () => {
  const dir = await Deno.makeTempDir();
  const state = `${dir}/state`;
  const program = await writeSlowProgram(dir, 30, 0);
  try {
    const id = await runRecorded(program, state);
    assert.equal(Deno.statSync(state).mode! & 0o777, 0o700);
    assert.equal(Deno.statSync(`${state}/control.db`).mode! & 0o777, 0o600);

    const [run, ...others] = await listRuns(["--state", state]);
    assert.deepEqual(others, []);
    assert.equal(run.id, id);
    assert.equal(run.status, "succeeded");
    assert.equal(run.origin, "heddle run");
    const summary = JSON.parse(run.summaryJson);
    assert.equal(summary.quarantined, 3, "one row of each of the 3 batches");
    const written = (await Deno.readTextFile(`${dir}/out.csv`)).trim().split("\n").length - 1;
    assert.equal(written, 27);
    assert.equal(summary.stages["Slow.2"].rowsOut, written);

    const lines = await readLogs(["--state", state, id]);
    assert.ok(lines.every((l) => l.runId === id && !Number.isNaN(Date.parse(l.time))));
    assert.deepEqual(lines.map((l) => l.seq), lines.map((l) => l.seq).toSorted((a, b) => a - b));
    assert.equal(lines[0].message, "run of `Slow` started on `local`");
    assert.deepEqual(lines.at(-1), {
      ...lines.at(-1),
      stage: "",
      level: "info",
      message: "run succeeded, 3 rows to handlers",
    });
    const rejected = lines.filter((l) => l.level === "warn");
    assert.deepEqual(
      rejected.map((l) => [l.stage, l.message]),
      Array(3).fill([
        "Slow.1",
        "1 rows sent to handler `rejected`: row 0 was rejected by step `faulty/steps.run`",
      ]),
    );
    assert.ok(messages(lines).includes("fhub/file.write: 27 rows in, 27 rows out"));

    const stage = await readLogs(["--state", state, "--stage", "Slow.1", id]);
    assert.deepEqual(
      messages(stage),
      [...messages(rejected), "faulty/steps.run: 30 rows in, 27 rows out, 3 rows to handlers"],
    );
    const text = await heddle(["workflow", "logs", "--state", state, id]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^\S+Z warn {2}Slow\.1: 1 rows sent to handler `rejected`/m);
    assert.match(text.stdout, /^\S+Z info : run succeeded, 3 rows to handlers\n$/m);
    const status = await heddle(["workflow", "status", "--state", state, id]);
    assert.match(status.stdout, /Slow\.2 fhub\/file\.write: 27 rows in, 27 rows out/);

    // --no-history leaves the history as it was.
    const quiet = await heddle(["run", "--state", state, "--no-history", program], { env });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.deepEqual((await listRuns(["--state", state])).map((r) => r.id), [id]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the history is filtered by status, and unknown runs and states are errors", async () => {
  const dir = await Deno.makeTempDir();
  const state = `${dir}/state`;
  const program = await writeSlowProgram(dir, 5, 0);
  try {
    const ok = await runRecorded(program, state);
    await Deno.remove(`${dir}/numbers.csv`);
    const failed = await heddle(["run", "--state", state, program], { env });
    assert.equal(failed.code, 1);
    const runs = await listRuns(["--state", state]);
    assert.deepEqual(runs.map((r) => r.status), ["failed", "succeeded"]);
    assert.deepEqual((await listRuns(["--state", state, "--status", "failed"])).length, 1);
    assert.deepEqual((await listRuns(["--state", state, "--status", "succeeded"]))[0].id, ok);
    const lines = await readLogs(["--state", state, runs[0].id]);
    assert.equal(lines.at(-1)!.level, "error");
    assert.match(lines.at(-1)!.message, /^run failed: .*numbers\.csv/);

    const unknown = await heddle(["workflow", "logs", "--state", state, "no-such-run"]);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, "heddle: no run `no-such-run`\n");
    const badStatus = await heddle(["workflow", "runs", "--state", state, "--status", "done"]);
    assert.equal(badStatus.code, 2);
    assert.match(badStatus.stderr, /--status.*done.*succeeded/);
    const empty = await heddle(["workflow", "runs", "--state", `${dir}/elsewhere`]);
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /no run history at .*elsewhere\/control\.db/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("retention deletes old runs with their logs and bounds each run's lines", async () => {
  const dir = await Deno.makeTempDir();
  const state = `${dir}/state`;
  const program = await writeSlowProgram(dir, 50, 0);
  try {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await runRecorded(program, state, "--keep-runs", "2"));
    assert.deepEqual((await listRuns(["--state", state])).map((r) => r.id), ids.slice(1).reverse());
    const gone = await heddle(["workflow", "logs", "--state", state, ids[0]]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no run/);
    const db = new DatabaseSync(`${state}/control.db`);
    const count = (sql: string, ...args: string[]) =>
      Number((db.prepare(sql).get(...args) as { n: number }).n);
    try {
      assert.equal(count("select count(*) as n from logs where run_id = ?", ids[0]), 0);
      for (const table of ["attempts", "quarantined_rows"]) {
        const rows = `select count(*) as n from ${table} where run_id = ?`;
        assert.equal(count(rows, ids[0]), 0, table);
        assert.equal(count(rows, ids[2]) > 0, true, table);
      }
      assert.ok(count("select count(*) as n from logs where run_id = ?", ids[2]) > 0);
    } finally {
      db.close();
    }

    // 5 batches each send a row to the handler: with room for 2 lines, the start line and
    // the first rejection are kept, the 4 others counted; the closing lines always are.
    const bounded = await runRecorded(program, state, "--keep-log-lines", "2");
    const lines = messages(await readLogs(["--state", state, bounded]));
    assert.deepEqual(lines.slice(0, 2), [
      "run of `Slow` started on `local`",
      "1 rows sent to handler `rejected`: row 0 was rejected by step `faulty/steps.run`",
    ]);
    assert.ok(lines.includes("4 more log lines were not kept (the limit is 2 a run)"));
    assert.equal(lines.filter((m) => m.includes("sent to handler")).length, 1);
    assert.equal(lines.at(-1), "run succeeded, 5 rows to handlers");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("workflow logs --follow prints a live run's lines and ends with the run", async () => {
  const dir = await Deno.makeTempDir();
  const state = `${dir}/state`;
  // 5 batches of 10 rows, each sending a row to the handler, held at the step until the
  // gate opens: the follower sees the run live however slowly it starts.
  const gate = `${dir}/gate`;
  const program = await writeSlowProgram(dir, 50, 0, gate);
  const run = spawnHeddle(["run", "--state", state, "--batch-rows", "10", program], { env });
  const runErr = new StreamText(run.stderr);
  try {
    const id = (await runErr.waitFor(/run (\S+) started/))[1];
    const follow = spawnHeddle([
      "workflow",
      "logs",
      "--follow",
      "--output",
      "json",
      "--state",
      state,
      id,
    ]);
    const out = new StreamText(follow.stdout);
    await out.waitFor(/started/);
    assert.equal(statusIn(state, id), "running", "the first line came while it ran");
    await Deno.writeTextFile(gate, "");
    const status = await follow.status;
    await out.done;
    await follow.stderr.cancel();
    assert.equal(status.code, 0);
    const lines = parseLines(out.text);
    assert.equal(lines.filter((l) => l.message.includes("sent to handler")).length, 5);
    assert.equal(lines.at(-1)!.message, "run succeeded, 5 rows to handlers");
    assert.deepEqual(lines, await readLogs(["--state", state, id]), "each line exactly once");
    assert.equal((await run.status).code, 0);
  } finally {
    await Deno.writeTextFile(gate, "").catch(() => {});
    await runErr.done;
    await run.stdout.cancel();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a killed heddle run's run is failed; a live one in the same database is not", async () => {
  const dir = await Deno.makeTempDir();
  const state = `${dir}/state`;
  const program = await writeSlowProgram(dir, 100, 1000);
  const start = async () => {
    const child = spawnHeddle(["run", "--state", state, "--batch-rows", "10", program], { env });
    const stderr = new StreamText(child.stderr);
    return { child, stderr, id: (await stderr.waitFor(/run (\S+) started/))[1] };
  };
  const killed = await start();
  const live = await start();
  try {
    killed.child.kill("SIGKILL");
    await killed.child.status;
    const runs = await listRuns(["--state", state]);
    const byId = new Map(runs.map((r) => [r.id, r]));
    assert.equal(byId.get(killed.id)!.status, "failed");
    assert.equal(byId.get(killed.id)!.error, "the process running it stopped during the run");
    assert.equal(byId.get(live.id)!.status, "running");
    live.child.kill("SIGINT");
    assert.equal((await live.child.status).code, 3);
    assert.equal((await listRuns(["--state", state, "--status", "stopped"]))[0].id, live.id);
    const lines = messages(await readLogs(["--state", state, live.id]));
    assert.ok(lines.includes("stop requested: draining in-flight batches"));
    assert.equal(lines.at(-1)!.startsWith("run stopped"), true);
  } finally {
    for (const { child, stderr } of [killed, live]) {
      await stderr.done;
      await child.stdout.cancel();
    }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("several heddle run processes and a daemon write one database at once", async () => {
  const dir = await Deno.makeTempDir();
  const state = `${dir}/state`;
  const program = await writeSlowProgram(dir, 40, 50);
  const local = await new Daemon(dir).start();
  const server = local.server;
  try {
    assert.equal((await heddle(["workflow", "deploy", ...server, program])).code, 0);
    const results = await Promise.all([
      ...Array.from(
        { length: 3 },
        () => heddle(["run", "--state", state, "--batch-rows", "5", program], { env }),
      ),
      ...Array.from(
        { length: 2 },
        () => heddle(["workflow", "start", "--wait", ...server, "Slow"], { env }),
      ),
    ]);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    for (const source of [["--state", state], server]) {
      const runs = await listRuns(source);
      assert.equal(runs.length, 5);
      assert.ok(runs.every((r) => r.status === "succeeded"), JSON.stringify(runs));
      assert.deepEqual(
        runs.map((r) => r.origin).toSorted(),
        [...Array(3).fill("heddle run"), ...Array(2).fill("workflow start")],
      );
      for (const run of runs) {
        const lines = await readLogs([...source, run.id]);
        assert.match(lines.at(-1)!.message, /^run succeeded, \d+ rows to handlers$/);
      }
    }
  } finally {
    await local.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("heddle local killed mid-run and started again keeps its history and resumes the run", async () => {
  const dir = await Deno.makeTempDir();
  const program = await writeSlowProgram(dir, 3000, 0);
  const local = await new Daemon(dir).start();
  const server = local.server;
  try {
    const { run: finished } = await deployAndRun(server, program, "Slow");
    const before = await readLogs([...server, finished.id]);
    assert.equal(before.at(-1)!.message, "run succeeded, 3 rows to handlers");
    const uninterrupted = await outputsOf(dir);
    // The same workflow again, its step held until the gate file exists: mid-run by
    // construction when the daemon is killed, whatever the machine's speed.
    const gate = `${dir}/gate`;
    await writeSlowProgram(dir, 3000, 0, gate);
    assert.equal((await heddle(["workflow", "deploy", ...server, program])).code, 0);
    const started = await heddle(["workflow", "start", "--output", "json", ...server, "Slow"]);
    const cut = JSON.parse(started.stdout).runs[0];
    await until(cut.id, server, "rows moved", (s) => s.status === "running" && moving(s));
    await local.stop("SIGKILL");
    // Reading the history meanwhile must not fail the run its daemon will resume.
    const read = await listRuns(["--state", local.state]);
    assert.equal(read.find((r) => r.id === cut.id)?.status, "running");
    await Deno.remove(`${dir}/out.csv`);
    await Deno.remove(`${dir}/rejected.jsonl`);
    await local.start();
    // Neither failed nor marked done: resumed once the daemon's own worker registered.
    for (let i = 0;; i++) {
      const now = await cli(["workflow", "status", cut.id, ...server]) as RunJson;
      assert.equal(now.status, "running", `the restarted daemon: ${now.error}`);
      const logs = (await readLogs([...server, cut.id])).map((l) => l.message);
      if (logs.some((l) => l.includes("resumed after a control plane restart"))) break;
      assert.ok(i < 300, `the run was never resumed:\n${logs.join("\n")}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await Deno.writeTextFile(gate, "");
    const status = await ended(cut.id, server);
    assert.equal(status.status, "succeeded", status.error);
    assert.deepEqual(await outputsOf(dir), uninterrupted);
    const runs = await listRuns(server);
    assert.deepEqual(runs.map((r) => [r.id, r.status]), [
      [cut.id, "succeeded"],
      [finished.id, "succeeded"],
    ]);
    assert.deepEqual(await readLogs([...server, finished.id]), before);
    assert.equal(JSON.parse(runs[1].summaryJson).stages["Slow.2"].rowsOut, 2997);
  } finally {
    await local.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("heddle run refuses a state path it cannot make private, and says how to go on", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const program = await writeSlowProgram(dir, 3, 0);
    const notADir = `${dir}/state`;
    await Deno.writeTextFile(notADir, "");
    const refused = await heddle(["run", "--state", notADir, program], { env });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /cannot keep the run history in .*state/);
    assert.match(refused.stderr, /--no-history/);
    const without = await heddle(["run", "--state", notADir, "--no-history", program], { env });
    assert.equal(without.code, 0, without.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
