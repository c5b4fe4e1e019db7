/**
 * Shared setup for the plugin tests: a registry and a host over examples/plugins, and builders
 * for input objects. The Python SDK is used from the source tree (PYTHONPATH), as a worker
 * on a development machine would; nothing here may mock a process or the registry.
 */

import { Field, Float64, Int64, makeData, RecordBatch, Schema, Struct, Table } from "apache-arrow";
import { fileURLToPath } from "node:url";
import { ok } from "node:assert/strict";
import { PluginHost, type PluginHostOptions } from "../../runtime/plugins/mod.ts";
import {
  call,
  connectPlugin,
  ENV,
  type InvokeRequest,
  invokeRequestBytes,
  type InvokeResponse,
  PROTO_PATH,
} from "../../runtime/plugins/protocol/mod.ts";
import { Registry, removeSegment, segmentName } from "../../runtime/registry/mod.ts";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const EXAMPLES = `${REPO}examples/plugins`;
export const PYTHONPATH = `${REPO}sdk/python`;

export interface Rig {
  registry: Registry;
  host: PluginHost;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A registry and a host whose module path is `roots` (default: examples/plugins). */
export function rig(options: Partial<PluginHostOptions> & { roots?: string[] } = {}): Rig {
  const registry = new Registry({ prefix: "heddletest" });
  const host = new PluginHost({
    registry,
    search: { programDir: REPO, modulePath: options.roots ?? [EXAMPLES] },
    ...options,
  });
  return {
    registry,
    host,
    async [Symbol.asyncDispose]() {
      await host.close();
      registry.close();
    },
  };
}

/** `rows` transactions: user_id = i, amount = a deterministic spread with some round values. */
export function transactions(rows: number): Table {
  const userId = new BigInt64Array(rows);
  const amount = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    userId[i] = BigInt(i);
    amount[i] = i % 7 === 0 ? (i % 50) * 1000 + 1000 : ((i * 7919) % 2_000_000) / 100 + 0.5;
  }
  const fields = [
    new Field("user_id", new Int64(), false),
    new Field("amount", new Float64(), false),
  ];
  const children = [
    makeData({ type: new Int64(), length: rows, data: userId }),
    makeData({ type: new Float64(), length: rows, data: amount }),
  ];
  const schema = new Schema(fields);
  return new Table(
    schema,
    new RecordBatch(schema, makeData({ type: new Struct(fields), length: rows, children })),
  );
}

/** A table of one nullable int64 column `n` = 0..rows-1, the input of examples/plugins/faulty. */
export function numbers(rows: number): Table {
  const field = new Field("n", new Int64(), true);
  const data = makeData({
    type: new Int64(),
    length: rows,
    data: BigInt64Array.from({ length: rows }, (_, i) => BigInt(i)),
  });
  const schema = new Schema([field]);
  return new Table(
    schema,
    new RecordBatch(
      schema,
      makeData({ type: new Struct([field]), length: rows, children: [data] }),
    ),
  );
}

/** Shared-memory segments whose names start with `prefix` (e.g. a host's output tag). */
export function segmentsStartingWith(prefix: string): string[] {
  return [...Deno.readDirSync("/dev/shm")].map((e) => e.name).filter((n) => n.startsWith(prefix));
}

/** A table of one nullable float64 column `value`, the sample step's input. */
export function valueTable(values: (number | null)[]): Table {
  const field = new Field("value", new Float64(), true);
  const valid = new Uint8Array(Math.ceil(values.length / 8));
  values.forEach((v, i) => {
    if (v !== null) valid[i >> 3] |= 1 << (i & 7);
  });
  const nulls = values.filter((v) => v === null).length;
  const data = makeData({
    type: new Float64(),
    length: values.length,
    data: Float64Array.from(values, (v) => v ?? 0),
    nullBitmap: nulls ? valid : undefined,
    nullCount: nulls,
  });
  const schema = new Schema([field]);
  return new Table(
    schema,
    new RecordBatch(
      schema,
      makeData({ type: new Struct([field]), length: values.length, children: [data] }),
    ),
  );
}

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

export interface SocketSpec {
  /** The plugin's command, run in `cwd` with `env` and the protocol's variables. */
  command: string[];
  cwd: string;
  env: Record<string, string>;
  step: string;
  configJson: string;
  /** The input table of `rows` rows. */
  table: (rows: number) => Table;
}

/**
 * Calls a plugin process directly through a counting proxy on batches of 1,000 to 1,000,000
 * rows and asserts that the bytes on its socket stay small and constant: only handles cross.
 */
export async function assertSocketBytesFlat(spec: SocketSpec): Promise<void> {
  await using r = rig();
  const dir = Deno.makeTempDirSync({ dir: "/tmp", prefix: "heddle-proxy-" });
  const [command, ...args] = spec.command;
  const plugin = new Deno.Command(command, {
    args,
    cwd: spec.cwd,
    env: { ...spec.env, [ENV.socket]: `${dir}/plugin.sock`, [ENV.protoPath]: PROTO_PATH },
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
      const input = r.registry.put(spec.table(rows), 1);
      const request: InvokeRequest = {
        step: spec.step,
        configJson: spec.configJson,
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
      ok(response.result === "ok", JSON.stringify(response));
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
}
