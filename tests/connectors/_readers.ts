/**
 * Shared helpers of the reader tests: open `fhub/file.read` on a file written into a temp
 * directory, and collect every typed row (raw Arrow values, so 64-bit integers stay BigInt)
 * and every row error.
 */
import {
  builtinConnectors,
  type ColumnSpec,
  type ConnectorContext,
  rawRowsOf,
  type Sink,
  type Source,
  type SourceBatch,
  type SourceRowError,
} from "../../runtime/connectors/mod.ts";

const connectors = builtinConnectors();

export interface Read {
  source: Source;
  batches: SourceBatch[];
  rows: Record<string, unknown>[];
  errors: SourceRowError[];
  types: Record<string, string>;
}

export function fileContext(
  dir: string,
  config: Record<string, unknown>,
  extra: Partial<ConnectorContext> = {},
): ConnectorContext {
  return {
    config,
    resources: {},
    schema: null,
    batchRows: 1024,
    resumeAfter: null,
    baseDir: dir,
    workflow: "T",
    ...extra,
  };
}

/** Reads `config.path` in `dir` to the end through the connector. */
export async function readFile(
  dir: string,
  config: Record<string, unknown>,
  extra: Partial<ConnectorContext> = {},
): Promise<Read> {
  const source = await connectors.get("fhub/file.read")!.open(
    fileContext(dir, config, extra),
  ) as Source;
  const batches: SourceBatch[] = [];
  try {
    for await (const b of source.batches(new AbortController().signal)) batches.push(b);
  } finally {
    await source.close();
  }
  return {
    source,
    batches,
    rows: batches.flatMap((b) => rawRowsOf(b.table)),
    errors: batches.flatMap((b) => b.errors),
    types: Object.fromEntries(source.schema.fields.map((f) => [f.name, String(f.type)])),
  };
}

/** Opens `fhub/file.write` on `config.path` in `dir`. */
export async function openSink(
  dir: string,
  config: Record<string, unknown>,
  schema: ColumnSpec[] | null = null,
): Promise<Sink> {
  return await connectors.get("fhub/file.write")!.open(
    fileContext(dir, config, { schema }),
  ) as Sink;
}

/** Runs `body` with a fresh temp directory, removed afterwards. */
export async function inTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "heddle-readers-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
