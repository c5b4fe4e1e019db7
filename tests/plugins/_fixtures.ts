/**
 * Shared setup for the plugin tests: a registry and a host over examples/plugins, and builders
 * for input objects. The Python SDK is used from the source tree (PYTHONPATH), as a worker
 * on a development machine would; nothing here may mock a process or the registry.
 */

import { Field, Float64, Int64, makeData, RecordBatch, Schema, Struct, Table } from "apache-arrow";
import { fileURLToPath } from "node:url";
import { PluginHost, type PluginHostOptions } from "../../runtime/plugins/mod.ts";
import { Registry } from "../../runtime/registry/mod.ts";

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
