/**
 * Nothing leaks, however a registry process ends: the tests run a real child process
 * (`_child.ts`) that owns resident, spilled and pooled objects, end it by SIGKILL, SIGINT, an
 * uncaught error or a normal finish, and look at /dev/shm and the spill directory. And
 * nothing live is swept: a child in its own PID namespace (`unshare --pid`, root only, as in
 * CI) whose pid means nothing here keeps its objects while it lives (issue 16).
 */

import assert from "node:assert/strict";
import { tableFromArrays } from "apache-arrow";
import { Registry, sweepOrphans, TEMP_DIR } from "../../runtime/registry/mod.ts";
import { forget, freshPlace, leftovers, ownerFiles, type Place } from "./_fixture.ts";

const childScript = new URL("./_child.ts", import.meta.url).pathname;

interface Child {
  process: Deno.ChildProcess;
  /** The owner number in the child's names (its pid in its own PID namespace). */
  owner: number;
  /** Resolves with the exit status and what the child wrote to stderr. */
  done: Promise<{ status: Deno.CommandStatus; stderr: string }>;
}

/**
 * Starts the child and waits until it has stored its objects. `wrap` runs it under another
 * command (`unshare ...`), which gets the deno command line as its last arguments.
 */
async function startChild(
  place: Place,
  mode: string,
  wrap: string[] = [],
  owner?: string,
): Promise<Child> {
  const deno = [Deno.execPath(), "run", "-A", childScript, place.prefix, place.spillDir, mode];
  if (owner !== undefined) deno.push(owner);
  const [program, ...args] = [...wrap, ...deno];
  const process = new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).spawn();
  const stderr = new Response(process.stderr).text();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/ready \d+\n/.test(seen)) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  const drained = (async () => {
    while (!(await reader.read()).done);
  })();
  const done = (async () => {
    const status = await process.status;
    await drained;
    return { status, stderr: await stderr };
  })();
  const ready = /ready (\d+)/.exec(seen);
  if (!ready) assert.fail(`the child did not start: ${(await done).stderr}`);
  return { process, owner: Number(ready[1]), done };
}

function assertChildObjects(place: Place, owner: number): void {
  const found = leftovers(place);
  assert.equal(found.length, 4, `expected 4 objects, found ${found}`);
  assert.ok(found.every((name) => name.startsWith(`${place.prefix}-${owner}-`)));
  assert.equal(found.filter((name) => name.endsWith(".arrows")).length, 1, "one spill file");
  assert.equal(found.filter((name) => name.includes("-pool-")).length, 1, "one pooled segment");
}

function cleanUp(place: Place): void {
  assert.deepEqual(leftovers(place), []);
  assert.deepEqual(ownerFiles(place), [], "owner files of dead or closed owners are gone");
  forget(place);
}

Deno.test("after kill -9, the next registry start removes the dead process's objects", async () => {
  const place = freshPlace();
  const child = await startChild(place, "wait");
  assertChildObjects(place, child.process.pid);
  child.process.kill("SIGKILL");
  const { status } = await child.done;
  assert.equal(status.signal, "SIGKILL");
  assertChildObjects(place, child.process.pid);
  const next = new Registry(place);
  assert.deepEqual(leftovers(place), [], "the constructor swept the orphans");
  next.close();
  cleanUp(place);
});

Deno.test("sweepOrphans() reports what it removed and spares live processes", async () => {
  const place = freshPlace();
  const live = new Registry(place);
  const kept = live.put(tableFromArrays({ n: Int32Array.from([7]) }), 1);
  const child = await startChild(place, "wait");
  child.process.kill("SIGKILL");
  await child.done;
  const report = sweepOrphans(place);
  assert.equal(report.removed.length, 4);
  assert.ok(report.removed.every((location) => location.includes(`-${child.process.pid}-`)));
  assert.deepEqual(leftovers(place), [kept.segment.slice(1)], "the live object stays");
  live.close();
  cleanUp(place);
});

Deno.test("SIGINT with installExitCleanup() frees everything and exits with 130", async () => {
  const place = freshPlace();
  const child = await startChild(place, "wait-cleanup");
  assertChildObjects(place, child.process.pid);
  child.process.kill("SIGINT");
  const { status, stderr } = await child.done;
  assert.equal(status.code, 130, stderr);
  cleanUp(place);
});

Deno.test("an uncaught error with installExitCleanup() still frees everything", async () => {
  const place = freshPlace();
  const child = await startChild(place, "throw");
  const { status, stderr } = await child.done;
  assert.notEqual(status.code, 0);
  assert.ok(stderr.includes("an uncaught failure in a stage"), stderr);
  cleanUp(place);
});

Deno.test("a process that ends normally with installExitCleanup() leaves nothing", async () => {
  const place = freshPlace();
  const child = await startChild(place, "finish");
  const { status, stderr } = await child.done;
  assert.equal(status.code, 0, stderr);
  cleanUp(place);
});

/** A pid that no process has in this namespace, so `kill(pid, 0)` here says "dead". */
function unusedPid(): number {
  for (let pid = 5000; pid < 4_000_000; pid += 97) {
    try {
      Deno.statSync(`/proc/${pid}`);
    } catch {
      return pid;
    }
  }
  throw new Error("no unused pid found");
}

Deno.test({
  name: "a live owner in another PID namespace keeps its objects; after it dies they are swept",
  ignore: Deno.uid() !== 0,
  async fn() {
    const place = freshPlace();
    const pid = unusedPid();
    // A new PID namespace (with its own /proc), sharing /dev/shm; the child's pid there is
    // `pid`, which is free here, so a janitor that trusts kill(pid, 0) would delete its objects.
    const wrap = [
      "unshare",
      "--pid",
      "--fork",
      "--mount-proc",
      "--kill-child",
      "sh",
      "-c",
      `echo ${pid - 1} > /proc/sys/kernel/ns_last_pid; "$@"`,
      "sh",
    ];
    const child = await startChild(place, "plugins", wrap);
    assert.equal(child.owner, pid, "the child got the planned pid in its namespace");
    assertChildObjects(place, pid);
    const pluginDirs = () =>
      [...Deno.readDirSync(TEMP_DIR)].map((e) => e.name).filter((n) =>
        n.startsWith(`${place.prefix}-${pid}-plugins-`)
      );
    assert.equal(pluginDirs().length, 1, "the child's plugin host made its socket directory");

    const janitor = new Registry(place);
    assert.deepEqual(sweepOrphans(place).removed, [], "nothing of a live owner is swept");
    assertChildObjects(place, pid);
    assert.equal(pluginDirs().length, 1);

    // Our own pid's owner number is free here, so this registry got it, not a shifted one.
    assert.equal(janitor.ownerPid, Deno.pid);
    child.process.kill("SIGKILL");
    await child.done;
    // The kernel kills the rest of the namespace after `unshare` and its init are gone; the
    // child's lock goes with its last process, so sweep until it has (10 s at most).
    const removed: string[] = [];
    for (let i = 0; i < 100 && removed.length < 5; i++) {
      removed.push(...sweepOrphans(place).removed);
      if (removed.length < 5) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(removed.length, 5, `removed ${removed}`);
    assert.deepEqual(pluginDirs(), [], "the dead owner's plugin directory is gone");
    janitor.close();
    cleanUp(place);
  },
});

Deno.test("an owner number held by a live process is never shared: the next one gets a number above every pid", async () => {
  const place = freshPlace();
  const first = new Registry(place);
  const again = new Registry(place);
  assert.equal(first.ownerPid, Deno.pid);
  assert.equal(again.ownerPid, Deno.pid, "one process shares its claim between registries");
  again.close();
  assert.deepEqual(ownerFiles(place), [`${place.prefix}-${Deno.pid}.lock`], "still held");
  // A child asking for our number (as a process of another PID namespace with the same pid
  // would get by default) must not share it: it gets our pid + 2^22.
  const child = await startChild(place, "wait", [], String(Deno.pid));
  assert.equal(child.owner, Deno.pid + 2 ** 22);
  assertChildObjects(place, child.owner);
  assert.deepEqual(sweepOrphans(place).removed, []);
  child.process.kill("SIGKILL");
  await child.done;
  assert.equal(sweepOrphans(place).removed.length, 4);
  first.close();
  cleanUp(place);
});
