/**
 * Nothing leaks, however a registry process ends: the tests run a real child process
 * (`_child.ts`) that owns resident and spilled objects, end it by SIGKILL, SIGINT, an
 * uncaught error or a normal finish, and look at /dev/shm and the spill directory.
 */

import assert from "node:assert/strict";
import { tableFromArrays } from "apache-arrow";
import { Registry, sweepOrphans } from "../../runtime/registry/mod.ts";
import { forget, freshPlace, leftovers, type Place } from "./_fixture.ts";

const childScript = new URL("./_child.ts", import.meta.url).pathname;

interface Child {
  process: Deno.ChildProcess;
  /** Resolves with the exit status and what the child wrote to stderr. */
  done: Promise<{ status: Deno.CommandStatus; stderr: string }>;
}

/** Starts the child and waits until it has stored its objects. */
async function startChild(place: Place, mode: string): Promise<Child> {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", childScript, place.prefix, place.spillDir, mode],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(process.stderr).text();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("ready\n")) {
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
  if (!seen.includes("ready")) assert.fail(`the child did not start: ${(await done).stderr}`);
  return { process, done };
}

function assertChildObjects(place: Place, pid: number): void {
  const found = leftovers(place);
  assert.equal(found.length, 3, `expected 3 objects, found ${found}`);
  assert.ok(found.every((name) => name.startsWith(`${place.prefix}-${pid}-`)));
  assert.equal(found.filter((name) => name.endsWith(".arrows")).length, 1, "one spill file");
}

function cleanUp(place: Place): void {
  assert.deepEqual(leftovers(place), []);
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
  assert.equal(report.removed.length, 3);
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
