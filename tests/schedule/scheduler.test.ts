/**
 * The scheduler's rules with a clock the test moves, on a real control plane with a real
 * in-process worker and plugin: a due schedule fires once however many firings were missed,
 * a firing while the previous run is live is skipped unless overlap is allowed, firings wait
 * for a worker, schedules outlive the control plane, and bad requests are refused.
 */
import assert from "node:assert/strict";
import { ControlPlane } from "../../runtime/control/mod.ts";
import { Worker } from "../../runtime/worker/mod.ts";
import { ControlError } from "../../runtime/protocol/mod.ts";
import { EXAMPLE_PLUGINS, writeSlowProgram } from "../history/_fixtures.ts";

const MINUTE = 60_000;

/** A control plane on `dir/control.db` whose schedules read `clock.now`. */
function node(dir: string, clock: { now: number }, worker = true) {
  const control = new ControlPlane({
    database: `${dir}/control.db`,
    heddlePath: EXAMPLE_PLUGINS,
    clock: () => clock.now,
  });
  const w = new Worker({ id: "w1", heddlePath: EXAMPLE_PLUGINS });
  const attach = () => control.attachWorker({ id: w.id, address: "in-process", host: "here" }, w);
  if (worker) attach();
  return {
    control,
    attach,
    /** The runs the schedules started, oldest first. */
    scheduled: async () =>
      (await control.listRuns()).runs.filter((r) => r.origin === "schedule").reverse(),
    close: async () => {
      for (const run of (await control.listRuns()).runs) {
        await control.stopRun(run.id);
        await control.watch(run.id, () => {});
      }
      await w.close();
      control.close();
    },
  };
}

async function deploy(control: ControlPlane, program: string) {
  const deployed = await control.deploy({
    file: program,
    source: await Deno.readTextFile(program),
    overrides: [],
  });
  assert.deepEqual(deployed.workflows, ["Slow"]);
}

Deno.test("a due schedule fires once, however many firings were missed", async () => {
  const dir = await Deno.makeTempDir();
  const clock = { now: Date.UTC(2026, 11, 7, 14, 0, 0) };
  const n = node(dir, clock);
  try {
    await deploy(n.control, await writeSlowProgram(dir, 20, 0));
    const set = await n.control.setSchedule({ workflow: "Slow", every: "1m" });
    assert.equal(set.nextAt, "2026-12-07T14:01:00.000Z");
    assert.equal(set.every, "1m");
    clock.now += 30_000;
    await n.control.fireDueSchedules();
    assert.deepEqual(await n.scheduled(), [], "not due yet");

    clock.now += 10 * MINUTE; // ten firings missed
    await n.control.fireDueSchedules();
    await n.control.fireDueSchedules();
    const [run, ...more] = await n.scheduled();
    assert.deepEqual(more, [], "one run for all the missed firings");
    assert.equal((await n.control.watch(run.id, () => {})).status, "succeeded");
    const [listed] = await n.control.listSchedules();
    assert.equal(listed.lastOutcome, `started ${run.id}`);
    assert.equal(listed.lastAt, "2026-12-07T14:10:30.000Z");
    assert.equal(listed.nextAt, "2026-12-07T14:11:30.000Z", "counted from the catch-up");

    clock.now += MINUTE;
    await n.control.fireDueSchedules();
    assert.equal((await n.scheduled()).length, 2);
  } finally {
    await n.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a firing while the previous run is live is skipped, unless overlap is allowed", async () => {
  const dir = await Deno.makeTempDir();
  const clock = { now: Date.UTC(2026, 11, 7, 14, 0, 0) };
  const n = node(dir, clock);
  try {
    // One batch that takes 3 s: the first run is live while the clock moves.
    await deploy(n.control, await writeSlowProgram(dir, 5, 3000));
    await n.control.setSchedule({ workflow: "Slow", every: "1m" });
    clock.now += MINUTE;
    await n.control.fireDueSchedules();
    const [first] = await n.scheduled();
    assert.equal(first.status, "running");

    clock.now += MINUTE;
    await n.control.fireDueSchedules();
    assert.equal((await n.scheduled()).length, 1);
    const [skipped] = await n.control.listSchedules();
    assert.equal(skipped.lastOutcome, `skipped: run ${first.id} was still running`);

    await n.control.setSchedule({ workflow: "Slow", every: "1m", allowOverlap: true });
    clock.now += MINUTE;
    await n.control.fireDueSchedules();
    const both = await n.scheduled();
    assert.deepEqual(both.map((r) => r.status), ["running", "running"]);
  } finally {
    await n.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cron schedules wait for a worker and outlive the control plane", async () => {
  const dir = await Deno.makeTempDir();
  const clock = { now: Date.parse("2026-12-07T14:03:27Z") };
  const program = await writeSlowProgram(dir, 20, 0);
  let n = node(dir, clock);
  try {
    await deploy(n.control, program);
    const set = await n.control.setSchedule({ workflow: "Slow", cron: "*/5 * * * *" });
    assert.equal(set.nextAt, "2026-12-07T14:05:00.000Z");
    await n.close();

    // Down from 14:03 to 14:27: four firings missed. Back without a worker first.
    clock.now = Date.parse("2026-12-07T14:27:10Z");
    n = node(dir, clock, false);
    await n.control.fireDueSchedules();
    assert.deepEqual(await n.scheduled(), [], "no worker: the firing waits");
    n.attach();
    await n.control.fireDueSchedules();
    const [run, ...more] = await n.scheduled();
    assert.deepEqual(more, []);
    assert.equal((await n.control.watch(run.id, () => {})).status, "succeeded");
    const [listed] = await n.control.listSchedules();
    assert.equal(listed.cron, "*/5 * * * *");
    assert.equal(listed.nextAt, "2026-12-07T14:30:00.000Z");

    assert.deepEqual(await n.control.deleteSchedule("Slow"), listed);
    assert.deepEqual(await n.control.listSchedules(), []);
  } finally {
    await n.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad schedule requests are refused with the reason", async () => {
  const dir = await Deno.makeTempDir();
  const n = node(dir, { now: Date.now() });
  const refused = async (p: Promise<unknown>, code: string, message: RegExp) => {
    const e = await p.then(() => null, (e) => e);
    assert.ok(e instanceof ControlError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, message);
  };
  try {
    await deploy(n.control, await writeSlowProgram(dir, 20, 0));
    await refused(n.control.setSchedule({ workflow: "Nope", every: "1m" }), "not-found", /Nope/);
    await refused(
      n.control.setSchedule({ workflow: "Slow", cron: "0 25 * * *" }),
      "invalid",
      /the hour field `25`: `25` is out of range: expected 0-23/,
    );
    await refused(
      n.control.setSchedule({ workflow: "Slow", cron: "* * * * *", every: "1m" }),
      "invalid",
      /exactly one/,
    );
    await refused(n.control.setSchedule({ workflow: "Slow" }), "invalid", /exactly one/);
    await refused(n.control.deleteSchedule("Slow"), "not-found", /has no schedule/);
    assert.deepEqual(await n.control.listSchedules(), []);
  } finally {
    await n.close();
    await Deno.remove(dir, { recursive: true });
  }
});
