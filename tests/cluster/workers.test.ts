/**
 * The control plane's workers over real gRPC: a registered worker that stops re-registering
 * (its heartbeat) is declared dead after the worker timeout, and registered workers are
 * kept in the state database, so a restarted control plane knows them at once.
 */
import assert from "node:assert/strict";
import { ControlPlane } from "../../runtime/control/mod.ts";
import { Worker } from "../../runtime/worker/mod.ts";
import { connectWorker, serveWorker } from "../../runtime/protocol/mod.ts";

const credentials = { token: crypto.randomUUID(), tls: null };

Deno.test("a worker that stops heartbeating is dead; a restarted control plane knows its workers", async () => {
  const dir = await Deno.makeTempDir();
  const worker = new Worker({ id: "w-beat" });
  const server = await serveWorker(worker, "127.0.0.1:0", credentials);
  const open = (timeout: number) =>
    new ControlPlane({
      database: `${dir}/control.db`,
      connect: (info) => connectWorker(info.address, credentials),
      workerTimeoutMs: timeout,
    });
  const info = { id: worker.id, address: server.address, host: "here", runtimes: [] };
  let control = open(60_000);
  try {
    await control.registerWorker(info);
    assert.deepEqual(control.workers().map((w) => w.info.id), ["w-beat"]);
    // The restarted control plane reconnects to it from its database, before it registers.
    control.disconnect();
    control.close();
    control = open(1_500);
    assert.deepEqual(control.workers().map((w) => w.info.id), ["w-beat"]);
    assert.equal((await control.workers()[0].api.health()).status, "serving");
    // Heartbeats keep it alive; without them it is declared dead after the timeout.
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 500));
      await control.registerWorker(info);
    }
    assert.equal(control.workers().length, 1, "heartbeats keep the worker");
    await new Promise((r) => setTimeout(r, 3_000));
    assert.deepEqual(control.workers(), [], "silent for longer than the timeout");
    // A dead worker is forgotten: the next control plane does not know it either.
    control.disconnect();
    control.close();
    control = open(60_000);
    assert.deepEqual(control.workers(), []);
  } finally {
    control.disconnect();
    control.close();
    await server.close();
    await worker.close();
    await Deno.remove(dir, { recursive: true });
  }
});
