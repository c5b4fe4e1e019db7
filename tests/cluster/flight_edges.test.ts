/**
 * A worker that cannot reach a peer's Flight endpoint (issue 10, "Failure handling"): the
 * run fails, and its error names both ends of the edge, the peer's Flight address and the
 * worker's own, so an operator sees which link between which hosts is broken.
 */
import assert from "node:assert/strict";
import { ControlPlane } from "../../runtime/control/mod.ts";
import { Worker } from "../../runtime/worker/mod.ts";
import { quickstartCopy, quickstartEnv } from "../_quickstart.ts";
import { TEST_CREDENTIALS } from "./_fixtures.ts";

/** An address where nothing listens (a port that was just free). */
function deadAddress(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const address = `127.0.0.1:${listener.addr.port}`;
  listener.close();
  return address;
}

Deno.test("a worker that cannot reach its peer's Flight endpoint fails the run naming both addresses", async () => {
  const dir = await quickstartCopy();
  const control = new ControlPlane({
    database: ":memory:",
    heddlePath: quickstartEnv.HEDDLE_PATH,
    readCallerFiles: true,
  });
  // Both workers announce Flight endpoints nobody serves: whichever consumes from the
  // other cannot connect.
  const workers = [0, 1].map((i) =>
    new Worker({
      id: `w${i}`,
      heddlePath: quickstartEnv.HEDDLE_PATH,
      flightCredentials: TEST_CREDENTIALS,
    })
  );
  const addresses = workers.map(() => deadAddress());
  workers.forEach((w, i) =>
    control.attachWorker({
      id: w.id,
      address: "in-process",
      host: "here",
      runtimes: i === 0 ? ["typescript"] : [],
      flightAddress: addresses[i],
    }, w)
  );
  try {
    const path = `${dir}/quickstart.he`;
    const deployed = await control.deploy({
      file: path,
      source: await Deno.readTextFile(path),
      overrides: [],
    });
    assert.ok(deployed.ok, JSON.stringify(deployed.diagnostics));
    const run = await control.startRun("Quickstart");
    const done = await control.watch(run.id, () => {});
    assert.equal(done.status, "failed");
    const [a, b] = addresses;
    const both = new RegExp(`from (${a}|${b}) to (${a}|${b})`);
    assert.match(done.error, both, done.error);
    assert.ok(done.error.includes(a) && done.error.includes(b), done.error);
    assert.match(done.error, /unavailable|refused|connect/i, done.error);
  } finally {
    for (const w of workers) await w.close();
    control.close();
    await Deno.remove(dir, { recursive: true });
  }
});
