/**
 * Isolation: whatever a plugin does wrong fails only that invocation, with a typed error, and
 * the next invocation gets a fresh process. Uses examples/plugins/faulty, which fails rows,
 * crashes, hangs or lies about its output on request.
 */

import { deepEqual, equal, notEqual, ok } from "node:assert/strict";
import type { InvokeResult, PluginHost } from "../../runtime/plugins/mod.ts";
import { EXAMPLES, numbers, REPO, rig, segmentsStartingWith, transactions } from "./_fixtures.ts";

const RUN = "faulty/steps.run";

function pidOf(host: PluginHost, name: string): number | null {
  return host.plugins().find((p) => p.dir.endsWith(`/${name}`))?.pid ?? null;
}

function errorOf(result: InvokeResult) {
  ok(!result.ok, "the invocation should have failed");
  return result.error;
}

Deno.test("a step's row errors name the failed rows and the other rows flow on", async () => {
  await using r = rig();
  const result = await r.host.invoke(RUN, { fail_rows: [1, 5] }, r.registry.put(numbers(10), 1));
  ok(result.ok, result.ok ? "" : result.error.message);
  deepEqual(result.rowErrors.map((e) => e.row), [1, 5]);
  using lease = r.registry.open(result.output);
  deepEqual([...lease.table.getChild("n")!].map(Number), [0, 2, 3, 4, 6, 7, 8, 9]);
  deepEqual([...lease.table.getChild("ok")!], Array(8).fill(true));
});

Deno.test("a plugin killed mid-invocation fails it as `crashed`, and the next invocation restarts it", async () => {
  await using r = rig();
  const input = r.registry.put(numbers(10), 2);
  const hanging = r.host.invoke(RUN, { hang: true }, input);
  let pid: number | null = null;
  while (pid === null || r.host.plugins()[0].state !== "busy") {
    await new Promise((resolve) => setTimeout(resolve, 20));
    pid = pidOf(r.host, "faulty");
  }
  Deno.kill(pid, "SIGKILL");
  const error = errorOf(await hanging);
  equal(error.code, "crashed");
  equal(error.step, RUN);
  const next = await r.host.invoke(RUN, {}, input);
  ok(next.ok, next.ok ? "" : next.error.message);
  notEqual(pidOf(r.host, "faulty"), pid);
});

Deno.test("a plugin that exits by itself during a step fails only that invocation", async () => {
  await using r = rig();
  const input = r.registry.put(numbers(4), 3);
  equal(errorOf(await r.host.invoke(RUN, { crash: true }, input)).code, "crashed");
  const python = await r.host.invoke(
    "fraud-score/detect.process",
    {},
    r.registry.put(transactions(10), 1),
  );
  ok(python.ok, "another plugin is unaffected");
  const again = await r.host.invoke(RUN, {}, input);
  ok(again.ok && again.output.rows === 4);
});

Deno.test("a hung plugin fails with `timeout`, is killed, and works again on next use", async () => {
  await using r = rig();
  const input = r.registry.put(numbers(4), 2);
  const first = await r.host.invoke(RUN, {}, input);
  ok(first.ok);
  const pid = pidOf(r.host, "faulty");
  const error = errorOf(await r.host.invoke(RUN, { hang: true }, input, { timeoutMs: 1000 }));
  equal(error.code, "timeout");
  equal(r.host.plugins()[0].state, "failed");
  const next = await r.host.invoke(RUN, {}, r.registry.put(numbers(4), 1));
  ok(next.ok, next.ok ? "" : next.error.message);
  notEqual(pidOf(r.host, "faulty"), pid);
});

Deno.test("output that breaks the declared schema is `bad-output` naming the column", async () => {
  // A stale manifest: it declares `ok` as int32 while the plugin now produces bool.
  const root = Deno.makeTempDirSync({ prefix: "heddle-stale-" });
  const manifest = JSON.parse(Deno.readTextFileSync(`${EXAMPLES}/faulty/heddle.manifest.json`));
  manifest.modules["faulty/steps"].steps.run.output.fields[0].type = "int32";
  manifest.entry = [
    "deno",
    "run",
    "-A",
    "--config",
    `${REPO}deno.json`,
    `${EXAMPLES}/faulty/main.ts`,
  ];
  Deno.mkdirSync(`${root}/faulty`);
  Deno.writeTextFileSync(`${root}/faulty/heddle.manifest.json`, JSON.stringify(manifest));
  await using r = rig({ roots: [root] });
  const error = errorOf(await r.host.invoke(RUN, {}, r.registry.put(numbers(3), 1)));
  equal(error.code, "bad-output");
  equal(error.column, "ok");
  ok(error.message.includes("int32"), error.message);
  deepEqual(segmentsStartingWith(`${r.registry.prefix}-${r.registry.ownerPid}-plugin_faulty`), []);
  Deno.removeSync(root, { recursive: true });
});

Deno.test("a corrupt output handle is `malformed-output` and leaves no segment behind", async () => {
  await using r = rig();
  const input = r.registry.put(numbers(5), 3);
  for (const corrupt of ["length", "segment"]) {
    equal(errorOf(await r.host.invoke(RUN, { corrupt }, input)).code, "malformed-output");
  }
  deepEqual(segmentsStartingWith(`${r.registry.prefix}-${r.registry.ownerPid}-plugin_faulty`), []);
  const fine = await r.host.invoke(RUN, {}, input);
  ok(fine.ok, "the restarted plugin answers properly");
});

Deno.test("an exception in a Python step is `step-failed` with the plugin's code, and the plugin stays warm", async () => {
  await using r = rig();
  const input = r.registry.put(transactions(10), 2);
  const error = errorOf(
    await r.host.invoke("fraud-score/detect.process", { threshold: "high" }, input),
  );
  equal(error.code, "step-failed");
  equal(error.details.stepCode, "USER_CODE");
  ok(error.message.includes("ValueError"), error.message);
  const pid = pidOf(r.host, "fraud-score");
  ok((await r.host.invoke("fraud-score/detect.process", {}, input)).ok);
  equal(pidOf(r.host, "fraud-score"), pid);
});

Deno.test("Python row errors carry the input row index of invalid amounts", async () => {
  await using r = rig();
  const table = transactions(6);
  const amount = table.getChild("amount")!.data[0].values as Float64Array;
  amount[2] = -5;
  amount[4] = NaN;
  const result = await r.host.invoke(
    "fraud-score/detect.process",
    { threshold: 0 },
    r.registry.put(table, 1),
  );
  ok(result.ok, result.ok ? "" : result.error.message);
  deepEqual(result.rowErrors.map((e) => e.row), [2, 4]);
  equal(result.output.rows, 4);
});

Deno.test("an unknown step is `unknown-step` and starts no process", async () => {
  await using r = rig();
  const input = r.registry.put(numbers(1), 2);
  equal(errorOf(await r.host.invoke("faulty/steps.nope", {}, input)).code, "unknown-step");
  equal(errorOf(await r.host.invoke("no-such/module.run", {}, input)).code, "unknown-step");
  deepEqual(r.host.plugins(), []);
});

Deno.test("an idle plugin is stopped and started again on next use; close() stops the rest", async () => {
  await using r = rig({ idleTimeoutMs: 100 });
  const input = r.registry.put(numbers(2), 2);
  ok((await r.host.invoke(RUN, {}, input)).ok);
  while (r.host.plugins()[0].state !== "stopped") {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  ok((await r.host.invoke(RUN, {}, input)).ok);
  const pid = pidOf(r.host, "faulty")!;
  await r.host.close();
  equal(r.host.plugins()[0].state, "stopped");
  ok(!exists(`/proc/${pid}`), `plugin process ${pid} is still there`);
  equal(errorOf(await r.host.invoke(RUN, {}, input)).code, "closed");
});

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
