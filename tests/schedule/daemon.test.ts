/**
 * Schedules on a real `heddle local`: `heddle workflow schedule` sets, lists and deletes
 * them; a schedule fires on time; a daemon paused with SIGSTOP, or stopped and started
 * again, runs a missed schedule once when it is back, not once per missed firing; a firing
 * while the previous run is live is skipped unless `--allow-overlap`; bad input is exit 2.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import type { ScheduleInfo } from "../../runtime/protocol/mod.ts";
import { Daemon, env, listRuns, type RunJson, writeSlowProgram } from "../history/_fixtures.ts";

async function schedule(daemon: Daemon, ...args: string[]) {
  const r = await heddle(["workflow", "schedule", "--output", "json", ...daemon.server, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** The runs schedules started, oldest first. */
async function scheduled(daemon: Daemon): Promise<RunJson[]> {
  return (await listRuns(daemon.server)).filter((r) => r.origin === "schedule").reverse();
}

/** Polls `probe` until it returns something, for at most `seconds`. */
async function until<T>(seconds: number, what: string, probe: () => Promise<T | null>) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const found = await probe();
    if (found !== null) return found;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${seconds} s waiting for ${what}`);
}

/** A daemon with workflow `Slow` deployed (`rows` rows, `sleepMs` per batch). */
async function daemonWith(rows: number, sleepMs: number): Promise<Daemon> {
  const dir = await Deno.makeTempDir();
  const program = await writeSlowProgram(dir, rows, sleepMs);
  const daemon = await new Daemon(dir).start();
  const deployed = await heddle(["workflow", "deploy", ...daemon.server, program], { env });
  assert.equal(deployed.code, 0, deployed.stderr);
  return daemon;
}

async function cleanUp(daemon: Daemon) {
  await daemon.stop();
  await Deno.remove(daemon.dir, { recursive: true });
}

/** Start times of scheduled runs that started after `since` (epoch ms). */
async function startsAfter(daemon: Daemon, since: number): Promise<number[]> {
  return (await scheduled(daemon)).map((r) => Date.parse(r.startedAt)).filter((t) => t >= since);
}

Deno.test("heddle workflow schedule sets, fires, lists and deletes a schedule", async () => {
  const daemon = await daemonWith(10, 0);
  try {
    const set = await schedule(daemon, "Slow", "--every", "2s");
    assert.equal(set.every, "2s");
    assert.equal(set.cron, "");
    const run = await until(
      60,
      "a scheduled run",
      async () => (await scheduled(daemon))[0] ?? null,
    );
    const [listed] = (await schedule(daemon, "list")).schedules as ScheduleInfo[];
    assert.equal(listed.workflow, "Slow");
    assert.match(listed.lastOutcome, /^started /);
    assert.ok((await scheduled(daemon)).some((r) => listed.lastOutcome === `started ${r.id}`));
    assert.ok(Date.parse(run.startedAt) - Date.parse(set.nextAt) < 60_000, "within its minute");

    const text = await heddle(["workflow", "schedule", ...daemon.server, "list"]);
    assert.match(text.stdout, /^Slow every 2s; next \S+; last \S+: started \S+\n$/);
    const cron = await heddle(
      ["workflow", "schedule", ...daemon.server, "Slow", "--cron", "0 9 * * mon-fri"],
    );
    assert.match(cron.stdout, /^Slow cron "0 9 \* \* mon-fri"; next \S+T09:00:00\.000Z\n$/);
    const deleted = await heddle(["workflow", "schedule", ...daemon.server, "delete", "Slow"]);
    assert.equal(deleted.stdout, "deleted the schedule of Slow\n");
    assert.deepEqual((await schedule(daemon, "list")).schedules, []);
    const again = await heddle(["workflow", "schedule", ...daemon.server, "delete", "Slow"]);
    assert.equal(again.code, 1);
    assert.equal(again.stderr, "heddle: workflow `Slow` has no schedule\n");
  } finally {
    await cleanUp(daemon);
  }
});

Deno.test("bad schedules are usage errors naming the field, before any call", async () => {
  const cases: [string[], RegExp][] = [
    [["Slow", "--cron", "*/5 * * 13 *"], /--cron: the month field `13`: `13` is out of range/],
    [["Slow", "--cron", "* * * *"], /has 4 field\(s\); it needs 5/],
    [["Slow", "--every", "5 minutes"], /--every: `5 minutes` is not a duration/],
    [["Slow", "--every", "1m", "--cron", "* * * * *"], /--cron or --every, not both/],
    [["Slow"], /say when to run `Slow`/],
    [["delete"], /`schedule delete` needs the workflow's name/],
    [["list", "--every", "1m"], /`schedule list` takes no --cron or --every/],
  ];
  // Nothing listens at this address: a call would fail with exit 1, not 2.
  for (const [args, message] of cases) {
    const r = await heddle(["workflow", "schedule", "--server", "127.0.0.1:1", ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  const daemon = await daemonWith(10, 0);
  try {
    const unknown = await heddle(
      ["workflow", "schedule", ...daemon.server, "Nope", "--every", "1m"],
    );
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, "heddle: no workflow `Nope` is deployed\n");
  } finally {
    await cleanUp(daemon);
  }
});

/**
 * Schedules `Slow` every 5 s and waits for its first run; `miss` keeps the daemon from
 * firing for two intervals or more and returns when it could fire again. Then the schedule
 * must fire once at once, and next only an interval later.
 */
async function catchesUpOnce(daemon: Daemon, miss: () => Promise<number>) {
  await schedule(daemon, "Slow", "--every", "5s");
  await until(60, "a first scheduled run", async () => (await scheduled(daemon))[0] ?? null);
  const since = Date.now();
  const back = await miss();
  const starts = await until(30, "two runs after the gap", async () => {
    const found = await startsAfter(daemon, since);
    return found.length >= 2 ? found : null;
  });
  assert.ok(starts[0] - back < 4000, `caught up at once (${starts[0] - back} ms)`);
  assert.ok(starts[1] - starts[0] >= 4500, `then on the interval (${starts[1] - starts[0]} ms)`);
}

Deno.test("a daemon paused with SIGSTOP runs the missed schedule once when resumed", async () => {
  const daemon = await daemonWith(10, 0);
  try {
    await catchesUpOnce(daemon, async () => {
      Deno.kill(daemon.pid, "SIGSTOP");
      await new Promise((r) => setTimeout(r, 12_000));
      Deno.kill(daemon.pid, "SIGCONT");
      return Date.now();
    });
  } finally {
    await cleanUp(daemon);
  }
});

Deno.test("a schedule missed while the daemon was down runs once on start", async () => {
  const daemon = await daemonWith(10, 0);
  try {
    await catchesUpOnce(daemon, async () => {
      await daemon.stop();
      await new Promise((r) => setTimeout(r, 11_000));
      await daemon.start();
      return Date.now();
    });
    const [listed] = (await schedule(daemon, "list")).schedules as ScheduleInfo[];
    assert.equal(listed.every, "5s", "the schedule is kept in the state database");
  } finally {
    await cleanUp(daemon);
  }
});

Deno.test("a firing while the previous run is live is skipped; --allow-overlap starts it", async () => {
  // One batch taking 10 s: the first scheduled run stays live while the schedule fires.
  const daemon = await daemonWith(10, 10_000);
  try {
    await schedule(daemon, "Slow", "--every", "2s");
    const first = await until(
      60,
      "a scheduled run",
      async () => (await scheduled(daemon))[0] ?? null,
    );
    const skipped = await until(30, "a skipped firing", async () => {
      const [s] = (await schedule(daemon, "list")).schedules as ScheduleInfo[];
      return s.lastOutcome.startsWith("skipped") ? s : null;
    });
    assert.equal(skipped.lastOutcome, `skipped: run ${first.id} was still running`);
    assert.equal((await scheduled(daemon)).length, 1);

    await schedule(daemon, "Slow", "--every", "2s", "--allow-overlap");
    // Runs now start while others are live: two or more run at once.
    await until(30, "overlapping runs", async () => {
      const runs = (await scheduled(daemon)).filter((r) => r.status === "running");
      return runs.length >= 2 ? runs : null;
    });
  } finally {
    await cleanUp(daemon);
  }
});
