/**
 * Heddle's TypeScript SDK: write workflow steps as functions over Arrow record batches and
 * serve them to a worker as a plugin process (docs/plugins.md).
 *
 * Inputs are read zero-copy: the SDK maps the worker's segment and the step's batches are
 * views over shared memory. Outputs are encoded once, straight into the segment the worker
 * named. Row data never crosses the socket, and nothing here may write to an input segment
 * (the worker owns it, and other consumers may be reading it).
 */

import {
  type Field,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  type TypeMap,
} from "apache-arrow";
import {
  openHandle,
  RegistryError,
  removeSegment,
  writeSegment,
} from "../../runtime/registry/mod.ts";
import {
  chainOf,
  checkSchema,
  type DeclaredField,
  declaredField,
  type DeclaredRow,
  ENV,
  type InvokeRequest,
  type InvokeResponse,
  servePlugin,
  type StepErrorCode,
  untilStopped,
} from "../../runtime/plugins/protocol/mod.ts";
import type { ConfigType } from "../../compiler/modules/mod.ts";

/** Which columns a step takes or gives (docs/manifest.md, "Row contracts"). */
export interface RowSpec<T extends TypeMap = TypeMap> {
  schema: Schema<T>;
  /** "fields": exactly `schema` (at least, when `open`); "input-plus": input then `schema`. */
  kind: "fields" | "input-plus";
  open: boolean;
}

/** An input that needs at least `schema`'s columns and passes any others through. */
export function openRow<T extends TypeMap>(schema: Schema<T>): RowSpec<T> {
  return { schema, kind: "fields", open: true };
}

/** An output that is the input row with `schema`'s columns appended; the step returns only those. */
export function inputPlus<T extends TypeMap>(schema: Schema<T>): RowSpec<T> {
  return { schema, kind: "input-plus", open: false };
}

/** A row the step could not process; `row` indexes the batch the step was given. */
export interface RowError {
  row: number;
  message: string;
}

/**
 * A step's answer with row errors (indices into the input batch). By default `batch` has one
 * row per input row, in order (aligned), and the SDK removes the rows named in `errors`; a
 * step that filters or expands rows sets `aligned: false` and leaves failed rows out itself.
 */
export interface StepOutput<O extends TypeMap> {
  batch: RecordBatch<O> | Table<O>;
  errors: RowError[];
  aligned?: boolean;
}

export type StepResult<O extends TypeMap> = RecordBatch<O> | Table<O> | StepOutput<O>;

/** A config value's type as manifests declare it: the compiler's own definition. */
export type { ConfigType };

export interface ConfigFieldSpec {
  type: ConfigType;
  required?: boolean;
  doc?: string;
}

export interface StepDefinition<I extends TypeMap, O extends TypeMap> {
  name: string;
  doc?: string;
  input: Schema<I> | RowSpec<I>;
  output: Schema<O> | RowSpec<O>;
  config?: Record<string, ConfigType | ConfigFieldSpec>;
  /** Called once per input record batch. */
  run(
    batch: RecordBatch<I>,
    config: Record<string, unknown>,
  ): StepResult<O> | Promise<StepResult<O>>;
}

/** A defined step, ready to be listed in a plugin. */
export interface Step {
  readonly name: string;
  readonly doc: string;
  readonly input: RowSpec;
  readonly output: RowSpec;
  readonly config: { key: string; type: ConfigType; required: boolean; doc: string }[];
  run(batch: RecordBatch, config: Record<string, unknown>): Promise<StepResult<TypeMap>>;
}

function rowSpec<T extends TypeMap>(value: Schema<T> | RowSpec<T>): RowSpec<T> {
  return value instanceof Schema ? { schema: value, kind: "fields", open: false } : value;
}

export function defineStep<I extends TypeMap, O extends TypeMap>(
  definition: StepDefinition<I, O>,
): Step {
  return {
    name: definition.name,
    doc: definition.doc ?? "",
    input: rowSpec(definition.input) as unknown as RowSpec,
    output: rowSpec(definition.output) as unknown as RowSpec,
    config: Object.entries(definition.config ?? {}).map(([key, spec]) => {
      const full = typeof spec === "object" && "type" in spec ? spec : { type: spec };
      return { key, type: full.type, required: full.required ?? false, doc: full.doc ?? "" };
    }),
    run: async (batch, config) =>
      (await definition.run(batch as unknown as RecordBatch<I>, config)) as unknown as StepResult<
        TypeMap
      >,
  };
}

export interface PluginDefinition {
  /** The package name: the first part of the import paths of its modules. */
  name: string;
  /** The file that calls `serve`, relative to the package directory (e.g. `main.ts`). */
  entry: string;
  /** Steps by module name: `{ enrich: [...] }` is import path `<name>/enrich`. */
  modules: Record<string, Step[]>;
}

export interface Plugin extends PluginDefinition {
  /** Steps by wire name `<name>/<module>.<step>`. */
  readonly steps: ReadonlyMap<string, Step>;
}

export function definePlugin(definition: PluginDefinition): Plugin {
  const steps = new Map<string, Step>();
  for (const [module, list] of Object.entries(definition.modules)) {
    for (const step of list) steps.set(`${definition.name}/${module}.${step.name}`, step);
  }
  return { ...definition, steps };
}

function rowJson(row: RowSpec): Record<string, unknown> {
  // Manifests omit `nullable` when it is false (docs/manifest.md).
  const fields = row.schema.fields.map(declaredField).map(({ name, type, nullable }) =>
    nullable ? { name, type, nullable } : { name, type }
  );
  if (row.kind === "input-plus") return { fields, include_input: true };
  return { fields, open: row.open };
}

/** The plugin's manifest in the format of docs/manifest.md. */
export function manifestOf(plugin: Plugin): Record<string, unknown> {
  const modules: Record<string, unknown> = {};
  for (const [module, list] of Object.entries(plugin.modules)) {
    const steps: Record<string, unknown> = {};
    for (const step of [...list].sort((a, b) => a.name.localeCompare(b.name))) {
      steps[step.name] = {
        doc: step.doc,
        role: "transform",
        config: step.config,
        slots: [],
        input: rowJson(step.input),
        output: rowJson(step.output),
      };
    }
    modules[`${plugin.name}/${module}`] = { resources: {}, steps };
  }
  return {
    heddle_manifest: 1,
    package: plugin.name,
    runtime: "typescript",
    entry: ["deno", "run", "-A", plugin.entry],
    modules,
  };
}

class StepFailure extends Error {
  constructor(readonly code: StepErrorCode, message: string, readonly column = "") {
    super(message);
  }
}

function declaredRow(row: RowSpec): DeclaredRow {
  const fields: DeclaredField[] = row.schema.fields.map(declaredField);
  return row.kind === "input-plus" ? { kind: "fields", fields, open: false } : {
    kind: "fields",
    fields,
    open: row.open,
  };
}

function isStepOutput(value: unknown): value is StepOutput<TypeMap> {
  return typeof value === "object" && value !== null && "errors" in value && "batch" in value;
}

function asBatch(value: unknown, step: string): RecordBatch {
  if (value instanceof RecordBatch) return value;
  // A Table of several batches cannot be one aligned batch without copying every column.
  if (value instanceof Table && value.batches.length <= 1) {
    return value.batches[0] ?? new RecordBatch(value.schema);
  }
  throw new StepFailure(
    "BAD_OUTPUT",
    `step \`${step}\` returned neither a RecordBatch, a one-batch Table nor { batch, errors }`,
  );
}

/** The input batch's columns followed by `added`'s, without copying either. */
function appendColumns(input: RecordBatch, added: RecordBatch): RecordBatch {
  const fields = [...input.schema.fields, ...added.schema.fields];
  const children = [...input.data.children, ...added.data.children];
  const data = makeData({ type: new Struct(fields), length: input.numRows, children });
  return new RecordBatch(new Schema(fields), data);
}

/** Zero-copy slices of `batch` without the rows in `failed` (sorted, distinct). */
function withoutRows(batch: RecordBatch, failed: number[]): RecordBatch[] {
  const kept: RecordBatch[] = [];
  let start = 0;
  for (const row of [...failed, batch.numRows]) {
    if (row > start) kept.push(batch.slice(start, row));
    start = row + 1;
  }
  return kept;
}

/**
 * Runs one step over one input batch: output batches, batch-relative errors, and whether the
 * output rows are the input rows minus the failed ones, in order (so that each output row's
 * input row is known).
 */
async function runBatch(
  step: Step,
  batch: RecordBatch,
  config: Record<string, unknown>,
): Promise<{ batches: RecordBatch[]; errors: RowError[]; aligned: boolean }> {
  const inputViolation = checkSchema(batch.schema, declaredRow(step.input), null);
  if (inputViolation) {
    throw new StepFailure("BAD_INPUT", `input: ${inputViolation.message}`, inputViolation.column);
  }
  const result = await step.run(batch, config);
  const [value, errors, alignedOutput] = isStepOutput(result)
    ? [result.batch, result.errors, result.aligned ?? true]
    : [result, [], false];
  let out = asBatch(value, step.name);
  const aligned = (alignedOutput && errors.length > 0) || step.output.kind === "input-plus";
  if (aligned && out.numRows !== batch.numRows) {
    throw new StepFailure(
      "BAD_OUTPUT",
      `step \`${step.name}\` returned ${out.numRows} rows for ${batch.numRows} input rows; ` +
        "its output must be aligned with its input",
    );
  }
  const violation = checkSchema(out.schema, declaredRow(step.output), null);
  if (violation) {
    throw new StepFailure("BAD_OUTPUT", `output: ${violation.message}`, violation.column);
  }
  if (step.output.kind === "input-plus") out = appendColumns(batch, out);
  const failed = [...new Set(errors.map((e) => e.row))].sort((a, b) => a - b);
  const outside = failed.find((row) => !(Number.isInteger(row) && row >= 0 && row < batch.numRows));
  if (outside !== undefined) {
    throw new StepFailure(
      "BAD_OUTPUT",
      `step \`${step.name}\` reported an error for row ${outside}, outside its batch`,
    );
  }
  return { batches: aligned ? withoutRows(out, failed) : [out], errors, aligned };
}

/** A batch in the middle of a chain, with the input row each of its rows came from. */
interface Piece {
  batch: RecordBatch;
  /** Per row, its index in the original input batch; null when a step lost track. */
  origins: number[] | null;
}

/** A step of a chain that failed as a whole: the failure plus the step's index. */
class ChainFailure extends Error {
  constructor(readonly index: number, readonly failure: StepFailure | Error) {
    super(failure.message);
  }
}

/**
 * Runs one input batch through every step of `chain`; errors name the step that rejected the
 * row and index the original batch, so the worker quarantines the rows it sent.
 */
async function runChain(
  chain: { step: Step; config: Record<string, unknown> }[],
  batch: RecordBatch,
): Promise<{ batches: RecordBatch[]; errors: (RowError & { stepIndex: number })[] }> {
  let pieces: Piece[] = [{ batch, origins: Array.from({ length: batch.numRows }, (_, i) => i) }];
  const errors: (RowError & { stepIndex: number })[] = [];
  for (const [index, { step, config }] of chain.entries()) {
    const next: Piece[] = [];
    for (const piece of pieces) {
      let done;
      try {
        done = await runBatch(step, piece.batch, config);
      } catch (error) {
        throw new ChainFailure(index, error as Error);
      }
      // Every row of a one-row input came from that row, whatever a step did to it.
      const origins = piece.origins ??
        (batch.numRows === 1 ? new Array<number>(piece.batch.numRows).fill(0) : null);
      for (const e of done.errors) {
        if (origins === null) {
          throw new ChainFailure(
            index,
            new StepFailure(
              "ROW_ORIGIN_LOST",
              `step \`${step.name}\` rejected rows of a batch whose rows an earlier step of the ` +
                "chain did not keep aligned with the input",
            ),
          );
        }
        errors.push({ row: origins[e.row], message: e.message, stepIndex: index });
      }
      if (!done.aligned || origins === null) {
        next.push(...done.batches.map((b) => ({ batch: b, origins: null })));
        continue;
      }
      const failed = new Set(done.errors.map((e) => e.row));
      const kept = origins.filter((_, i) => !failed.has(i));
      let at = 0;
      for (const b of done.batches) {
        next.push({ batch: b, origins: kept.slice(at, at + b.numRows) });
        at += b.numRows;
      }
    }
    pieces = next;
  }
  return { batches: pieces.map((p) => p.batch), errors };
}

/**
 * Answers one Invoke request (one step, or a chain of them run in-process over each input
 * batch); every failure becomes a StepError naming the failing step, never a gRPC error.
 */
export async function invokeStep(plugin: Plugin, request: InvokeRequest): Promise<InvokeResponse> {
  const wire = chainOf(request);
  let current = 0;
  try {
    const chain = wire.map((link, index) => {
      current = index;
      const step = plugin.steps.get(link.step);
      if (step === undefined) {
        const known = [...plugin.steps.keys()].map((k) => `\`${k}\``).join(", ");
        throw new StepFailure("UNKNOWN_STEP", `no step \`${link.step}\` here (known: ${known})`);
      }
      try {
        return { step, config: JSON.parse(link.configJson || "{}") as Record<string, unknown> };
      } catch (error) {
        throw new StepFailure(
          "BAD_CONFIG",
          `config of \`${link.step}\` is not JSON: ${(error as Error).message}`,
        );
      }
    });
    current = 0;
    let lease;
    try {
      lease = openHandle(request.input);
    } catch (error) {
      if (error instanceof RegistryError) throw new StepFailure("BAD_INPUT", error.message);
      throw error;
    }
    try {
      const batches: RecordBatch[] = [];
      const rowErrors: (RowError & { stepIndex: number })[] = [];
      let start = 0;
      let schema: Schema | undefined;
      for (const batch of lease.table.batches) {
        const done = await runChain(chain, batch);
        batches.push(...done.batches);
        rowErrors.push(...done.errors.map((e) => ({ ...e, row: start + e.row })));
        schema ??= done.batches[0]?.schema;
        start += batch.numRows;
      }
      schema ??= chain.reduce((s, link) => outputSchemaFor(link.step, s), lease.table.schema);
      let output;
      try {
        output = writeSegment(request.outputSegment, new Table(schema, batches));
      } catch (error) {
        // A full /dev/shm: a code of its own, so that the worker fails at once instead of
        // retrying what cannot succeed until space is freed.
        if (error instanceof RegistryError && error.code === "no-space") {
          throw new ChainFailure(chain.length - 1, new StepFailure("NO_SPACE", error.message));
        }
        throw error;
      }
      return { result: "ok", ok: { output, rowErrors, stepsRun: chain.length } };
    } finally {
      lease.release();
    }
  } catch (caught) {
    removeSegment(request.outputSegment);
    const [index, error] = caught instanceof ChainFailure
      ? [caught.index, caught.failure]
      : [current, caught];
    const name = wire[index]?.step ?? request.step;
    if (error instanceof StepFailure) {
      return {
        result: "error",
        error: {
          code: error.code,
          message: wire.length > 1 ? `step \`${name}\`: ${error.message}` : error.message,
          column: error.column,
          stepIndex: index,
        },
      };
    }
    const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const message = wire.length > 1 ? `step \`${name}\`: ${text}` : text;
    return { result: "error", error: { code: "USER_CODE", message, column: "", stepIndex: index } };
  }
}

/** The output schema of `step` over `input` when no batch was produced. */
function outputSchemaFor(step: Step, input: Schema): Schema {
  if (step.output.kind !== "input-plus") return step.output.schema;
  return new Schema([...input.fields, ...step.output.schema.fields] as Field[]);
}

/**
 * Serves the plugin on the socket the worker named (HEDDLE_PLUGIN_SOCKET) until SIGTERM or
 * until the worker (HEDDLE_WORKER_PID) is gone, so that a plugin never outlives its worker.
 */
export async function serve(plugin: Plugin): Promise<void> {
  const socket = Deno.env.get(ENV.socket);
  if (!socket) {
    console.error(`${ENV.socket} is not set: plugins are started by a Heddle worker`);
    Deno.exit(2);
  }
  const manifestJson = JSON.stringify(manifestOf(plugin));
  const server = await servePlugin(socket, {
    describe: () => ({ manifestJson, sdk: "heddle-sdk-typescript/0.1.0" }),
    health: () => ({ status: "SERVING", pid: Deno.pid }),
    invoke: (request) => invokeStep(plugin, request),
  });
  await untilStopped();
  server.forceShutdown();
  Deno.exit(0);
}
