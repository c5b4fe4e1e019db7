/**
 * The data path through plugins: a million rows go from the worker (TypeScript) through a
 * Python step and a TypeScript step and come back intact, the reader's buffers are the
 * shared memory itself, and the bytes on the plugin socket do not grow with the data.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import {
  call,
  connectPlugin,
  ENV,
  type InvokeRequest,
  invokeRequestBytes,
  type InvokeResponse,
  PROTO_PATH,
} from "../../runtime/plugins/protocol/mod.ts";
import { removeSegment, segmentName } from "../../runtime/registry/mod.ts";
import { EXAMPLES, PYTHONPATH, rig, transactions } from "./_fixtures.ts";

/** The fraud rule of examples/plugins/fraud-score, restated independently. */
function expectedScore(amount: number): number {
  const magnitude = (Math.log10(Math.max(amount, 1)) - 3) / 3;
  const base = Math.min(Math.max(magnitude, 0), 1) * 0.75;
  const bonus = amount >= 1000 && amount - Math.floor(amount / 1000) * 1000 === 0 ? 0.25 : 0;
  return Math.min(base + bonus, 1);
}

Deno.test("a million rows pass TypeScript -> Python -> TypeScript through two plugin steps intact", async () => {
  await using r = rig();
  const rows = 1_000_000;
  const source = transactions(rows);
  const input = r.registry.put(source, 1);
  const scored = await r.host.invoke("fraud-score/detect.process", { threshold: 0 }, input);
  ok(scored.ok, scored.ok ? "" : scored.error.message);
  deepEqual(scored.rowErrors, []);
  equal(scored.output.rows, rows);
  const enriched = await r.host.invoke("ts-enrich/enrich.cents", {}, scored.output);
  ok(enriched.ok, enriched.ok ? "" : enriched.error.message);
  equal(enriched.output.rows, rows);

  using lease = r.registry.open(enriched.output);
  deepEqual(lease.table.schema.fields.map((f) => f.name), [
    "user_id",
    "amount",
    "fraud_score",
    "amount_cents",
  ]);
  const sourceAmount = source.getChild("amount")!.toArray() as Float64Array;
  let row = 0;
  let mismatches = 0;
  for (const batch of lease.table.batches) {
    const userId = batch.getChild("user_id")!.toArray() as BigInt64Array;
    const amount = batch.getChild("amount")!.toArray() as Float64Array;
    const score = batch.getChild("fraud_score")!.toArray() as Float64Array;
    const cents = batch.getChild("amount_cents")!.toArray() as BigInt64Array;
    for (let i = 0; i < batch.numRows; i++, row++) {
      const a = sourceAmount[row];
      if (
        userId[i] !== BigInt(row) || amount[i] !== a ||
        Math.abs(score[i] - expectedScore(a)) > 1e-12 ||
        cents[i] !== BigInt(Math.round(a * 100))
      ) mismatches++;
    }
  }
  equal(row, rows);
  equal(mismatches, 0);
});

Deno.test("a consumer's Arrow buffers lie inside the mapped output segment", async () => {
  await using r = rig();
  const input = r.registry.put(transactions(10_000), 1);
  const scored = await r.host.invoke("fraud-score/detect.process", { threshold: 0 }, input);
  ok(scored.ok);
  using lease = r.registry.open(scored.output);
  const start = lease.bytes.byteOffset;
  const end = start + lease.bytes.byteLength;
  for (const column of ["user_id", "amount", "fraud_score"]) {
    for (const data of lease.table.getChild(column)!.data) {
      equal(data.values.buffer, lease.bytes.buffer, `${column} is not a view of the mapping`);
      ok(data.values.byteOffset >= start && data.values.byteOffset + data.values.byteLength <= end);
    }
  }
});

/** Forwards a Unix socket to another, counting the bytes that pass in both directions. */
function countingProxy(listenPath: string, targetPath: string) {
  const counter = { bytes: 0 };
  const listener = Deno.listen({ transport: "unix", path: listenPath });
  const pipes: Promise<void>[] = [];
  const pump = async (from: Deno.Conn, to: Deno.Conn) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
        counter.bytes += n;
        await to.write(buffer.subarray(0, n));
      }
    } catch {
      // Either side closing ends the pipe.
    }
    try {
      to.close();
    } catch {
      // Already closed by the other pump.
    }
  };
  (async () => {
    for await (const conn of listener) {
      const target = await Deno.connect({ transport: "unix", path: targetPath });
      pipes.push(pump(conn, target), pump(target, conn));
    }
  })();
  return { counter, close: () => listener.close(), pipes };
}

Deno.test("the bytes on the plugin socket stay small and constant as the batch grows 1000-fold", async () => {
  await using r = rig();
  const dir = Deno.makeTempDirSync({ dir: "/tmp", prefix: "heddle-proxy-" });
  const plugin = new Deno.Command("python3", {
    args: ["-m", "fraud_score"],
    cwd: `${EXAMPLES}/fraud-score`,
    env: { PYTHONPATH, [ENV.socket]: `${dir}/plugin.sock`, [ENV.protoPath]: PROTO_PATH },
    stdout: "null",
    stderr: "null",
  }).spawn();
  while (!(await Deno.lstat(`${dir}/plugin.sock`).then(() => true, () => false))) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const proxy = countingProxy(`${dir}/proxy.sock`, `${dir}/plugin.sock`);
  const client = connectPlugin(`${dir}/proxy.sock`);
  const measured: {
    rows: number;
    socketBytes: number;
    requestBytes: number;
    payloadBytes: number;
  }[] = [];
  try {
    let serial = 0;
    for (const rows of [1_000, 1_000, 10_000, 100_000, 1_000_000]) {
      const input = r.registry.put(transactions(rows), 1);
      const request: InvokeRequest = {
        step: "fraud-score/detect.process",
        configJson: '{"threshold":0}',
        input,
        outputSegment: segmentName(r.registry.ownerPid, ++serial, {
          tag: "proxytest",
          prefix: r.registry.prefix,
        }),
        invocationId: crypto.randomUUID(),
      };
      const before = proxy.counter.bytes;
      const response = await call<InvokeRequest, InvokeResponse>(
        client,
        "Invoke",
        request,
        120_000,
      );
      // Let the proxy finish forwarding the trailing frames of this call before reading the count.
      await new Promise((resolve) => setTimeout(resolve, 50));
      ok(response.result === "ok");
      measured.push({
        rows,
        socketBytes: proxy.counter.bytes - before,
        requestBytes: invokeRequestBytes(request),
        payloadBytes: input.length + response.ok.output!.length,
      });
      removeSegment(request.outputSegment);
      r.registry.release(input.id);
    }
  } finally {
    client.close();
    proxy.close();
    plugin.kill("SIGTERM");
    await plugin.status;
    Deno.removeSync(dir, { recursive: true });
  }
  // Serialized requests differ only in the varint width of lengths and row counts.
  const requests = measured.map((m) => m.requestBytes);
  ok(Math.max(...requests) - Math.min(...requests) <= 8, `request bytes: ${requests}`);
  // On the wire, the first call fills HTTP/2 header tables; later calls differ only by
  // HTTP/2 control frames (window updates, pings), never by anything proportional to rows.
  const steady = measured.slice(1).map((m) => m.socketBytes);
  ok(Math.max(...steady) < 1024, `socket bytes per call: ${steady}`);
  ok(Math.max(...steady) - Math.min(...steady) <= 96, `socket bytes per call: ${steady}`);
  const largest = measured[measured.length - 1];
  ok(largest.payloadBytes > 10_000 * largest.socketBytes, JSON.stringify(largest));
});
