/**
 * Shared pieces of the executor tests: compiling a program with the real compiler, listing
 * this process's shared-memory segments, and small connectors that implement the real
 * connector interfaces with behaviour a test chooses (a source that counts what it produced,
 * a sink that records rows, a transform that fails on chosen rows). They stand in for Kafka
 * and the LLM, whose contracts the compiler already knows; they must never bypass the
 * executor's interfaces.
 */
import assert from "node:assert/strict";
import { Schema, type Table } from "apache-arrow";
import { check } from "../../compiler/mod.ts";
import { Registry } from "../../runtime/registry/mod.ts";
import type { Ir } from "../../compiler/ir/mod.ts";
import {
  builtinConnectors,
  type ConnectorRegistry,
  type Position,
  rowsOf,
  type Sink,
  type Source,
  type SourceBatch,
  tableFromRows,
  toArrowField,
  type Transform,
} from "../../runtime/connectors/mod.ts";

/** The example plugins (`ts-enrich`, `faulty`), on the module path of every test program. */
export const EXAMPLE_PLUGINS = new URL("../../examples/plugins", import.meta.url).pathname;

/** Test plugins that are not examples (`chain-py`). */
export const TEST_PLUGINS = new URL("../plugins/testdata", import.meta.url).pathname;

/**
 * Compiles `source` as `<dir>/main.he` with the real compiler (plugins found on
 * `modulePath`, default the example plugins); fails the test on errors.
 */
export function compile(source: string, dir: string, modulePath = [EXAMPLE_PLUGINS]): Ir {
  const file = `${dir}/main.he`;
  Deno.writeTextFileSync(file, source);
  const result = check(source, file, { modulePath });
  const errors = result.diagnostics.filter((d) => d.severity === "error");
  assert.deepEqual(errors.map((d) => d.message), []);
  assert.ok(result.value.optimised);
  return result.value.optimised;
}

/** This process's registry segments in /dev/shm (`heddle-<pid>-...`). */
export function ownSegments(): string[] {
  const prefix = `heddle-${Deno.pid}-`;
  return [...Deno.readDirSync("/dev/shm")].map((e) => e.name).filter((n) => n.startsWith(prefix));
}

const rowSchema = new Schema([
  toArrowField({ name: "id", type: { kind: "primitive", name: "int64" }, nullable: false }),
  toArrowField({ name: "amount", type: { kind: "primitive", name: "float64" }, nullable: false }),
]);

/** Runs `body` with a fresh registry and temp dir; checks no segment outlives the run. */
export async function withRun(body: (registry: Registry, dir: string) => Promise<void>) {
  const dir = Deno.makeTempDirSync({ prefix: "heddle-exec-test-" });
  const registry = new Registry();
  try {
    await body(registry, dir);
    assert.deepEqual(ownSegments(), [], "registry segments left after the run");
    assert.equal(registry.stats().objects, 0);
  } finally {
    registry.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

/** A source of rows `{id, amount = id}` in batches; unbounded when `batches` is Infinity. */
export class CountingSource implements Source {
  readonly schema = rowSchema;
  yielded = 0;
  commits: Position[] = [];
  constructor(private batches_: number, private rowsPerBatch: number) {}

  get bounded(): boolean {
    return Number.isFinite(this.batches_);
  }

  async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
    for (let b = 0; b < this.batches_ && !signal.aborted; b++) {
      const rows = Array.from({ length: this.rowsPerBatch }, (_, i) => {
        const id = b * this.rowsPerBatch + i;
        return { id, amount: id };
      });
      this.yielded++;
      yield { table: tableFromRows(rowSchema, rows), errors: [], position: b + 1 };
      await new Promise((r) => setTimeout(r, 0));
    }
  }

  commit(position: Position): Promise<void> {
    this.commits.push(position);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A sink that records rows per topic, acknowledging on write, optionally slowly. */
export class RecordingSink implements Sink {
  readonly acknowledges = "on-write";
  rows: Record<string, unknown>[] = [];
  writes = 0;
  constructor(private delayMs = 0, private onWrite: () => void = () => {}) {}

  async write(rows: Table): Promise<void> {
    this.onWrite();
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    this.rows.push(...rowsOf(rows));
    this.writes++;
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  abort(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A transform that appends `completion` and otherwise behaves as `behave` says: it may throw
 * (a failed attempt) or wait for the attempt's signal (a hung call).
 */
export class ScriptedTransform implements Transform {
  calls = 0;
  constructor(
    private behave: (ids: number[], call: number, signal: AbortSignal) => Promise<void>,
  ) {}

  async apply(input: Table, signal: AbortSignal): Promise<Table> {
    const rows = rowsOf(input);
    await this.behave(rows.map((r) => r.id as number), ++this.calls, signal);
    const fields = [
      ...input.schema.fields,
      toArrowField({
        name: "completion",
        type: { kind: "primitive", name: "utf8" },
        nullable: false,
      }),
    ];
    return tableFromRows(
      new Schema(fields),
      rows.map((r) => ({ ...r, id: BigInt(r.id as number), completion: `ok ${r.id}` })),
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The built-in connectors plus Kafka and LLM stand-ins that route to the given objects. */
export function testConnectors(parts: {
  source?: Source;
  sinks?: Record<string, Sink>;
  transform?: Transform;
}): ConnectorRegistry {
  const registry = builtinConnectors();
  if (parts.source) {
    const source = parts.source;
    registry.register("fhub/kafka.consume", {
      role: "source",
      open: () => Promise.resolve(source),
    });
  }
  if (parts.sinks) {
    const sinks = parts.sinks;
    registry.register("fhub/kafka.produce", {
      role: "sink",
      open: (ctx) => Promise.resolve(sinks[ctx.config.topic as string]),
    });
  }
  if (parts.transform) {
    const transform = parts.transform;
    registry.register("fhub/llm.prompt", {
      role: "transform",
      open: () => Promise.resolve(transform),
    });
  }
  return registry;
}

/** The prelude of Kafka/LLM test programs: imports, a broker and the `enrich` step. */
export const KAFKA_PRELUDE = `
import "fhub/kafka" kafka
import "fhub/llm" llm
import "fhub/file" file

resource broker = kafka.connection { broker: "test:9092" }
`;

/** Workflow `name`: Kafka topic `in` straight to topic `out` (test connectors stand in). */
export function kafkaPassThrough(name: string, dir: string): Ir {
  return compile(
    `${KAFKA_PRELUDE}
workflow ${name} {
  kafka.consume <broker=broker> { topic: "in" }
  | kafka.produce <broker=broker> { topic: "out" }
}
`,
    dir,
  );
}
