/**
 * Arrow IPC stream encoding into, and validated decoding out of, mapped memory. Encoding
 * collects the writer's chunks (which still point at the column buffers) so that the only
 * copy at production is the one into the segment. Decoding never trusts the bytes:
 * `_framing.ts` checks every length against the region before apache-arrow sees anything,
 * whatever apache-arrow throws is caught, and every column's buffers are checked against
 * its length, so that a corrupted object is a `RegistryError`, never a crash and
 * never silently short data. Decoded tables are views over the given bytes: nothing here
 * may copy column data.
 */

import {
  type Data,
  RecordBatch,
  RecordBatchReader,
  RecordBatchStreamWriter,
  type Schema,
  Table,
  Type,
} from "apache-arrow";
import { RegistryError } from "./_errors.ts";
import { schemaFingerprint } from "./_fingerprint.ts";
import { checkFraming } from "./_framing.ts";

/** Collects the stream's chunks instead of concatenating them into a fresh buffer. */
class ChunkCollector extends RecordBatchStreamWriter {
  readonly chunks: Uint8Array[] = [];

  protected override _write(chunk: ArrayBufferView): this {
    if (this._started && chunk.byteLength > 0) {
      this.chunks.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this._position += chunk.byteLength;
    }
    return this;
  }
}

/** An Arrow IPC stream ready to be copied into memory of at least `byteLength` bytes. */
export interface EncodedStream {
  readonly schema: Schema;
  readonly schemaFingerprint: string;
  readonly rows: number;
  readonly byteLength: number;
  /** Copies the stream to the start of `target`; returns the bytes written. */
  writeInto(target: Uint8Array): number;
}

/** What `put` accepts: a table, or record batches that share one schema. */
export type ArrowData = Table | RecordBatch[];

/** Encodes `data` as an Arrow IPC stream (schema, batches, end-of-stream marker). */
export function encodeStream(data: ArrowData): EncodedStream {
  const batches = data instanceof Table ? data.batches : data;
  const schema = data instanceof Table ? data.schema : data[0]?.schema;
  if (schema === undefined) {
    throw new RegistryError("invalid-input", "cannot store an empty list of record batches", {});
  }
  const fingerprint = schemaFingerprint(schema);
  batches.forEach((batch, i) => {
    if (!(batch instanceof RecordBatch) || schemaFingerprint(batch.schema) !== fingerprint) {
      throw new RegistryError(
        "invalid-input",
        `record batch ${i} does not have the schema of the first batch`,
      );
    }
  });
  const writer = new ChunkCollector();
  writer.reset(undefined, schema);
  for (const batch of batches) writer.write(batch);
  writer.finish();
  const chunks = writer.chunks;
  const byteLength = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  return {
    schema,
    schemaFingerprint: fingerprint,
    rows: batches.reduce((sum, batch) => sum + batch.numRows, 0),
    byteLength,
    writeInto(target) {
      if (target.byteLength < byteLength) {
        throw new RegistryError(
          "invalid-input",
          `the stream needs ${byteLength} bytes, the target region has ${target.byteLength}`,
        );
      }
      let at = 0;
      for (const chunk of chunks) {
        target.set(chunk, at);
        at += chunk.byteLength;
      }
      return at;
    },
  };
}

/** What a reader expects of an object, taken from its handle. */
export interface Expectation {
  readonly location: string;
  readonly schemaFingerprint: string;
  readonly rows: number;
}

function corrupt(where: Expectation, detail: string, cause?: unknown): RegistryError {
  return new RegistryError("corrupt", `object in \`${where.location}\` is corrupt: ${detail}`, {
    cause,
    segment: where.location,
  });
}

function truncated(where: Expectation, detail: string): RegistryError {
  return new RegistryError("truncated", `object in \`${where.location}\` is truncated: ${detail}`, {
    segment: where.location,
  });
}

function offsetsWithin(data: Data, limit: number): string | undefined {
  const offsets = data.valueOffsets;
  const end = data.offset + data.length;
  if (data.length === 0) return undefined;
  if (offsets.length < end + 1) return `${offsets.length} offsets for ${end} values`;
  const first = Number(offsets[data.offset]);
  const last = Number(offsets[end]);
  if (first < 0 || last < first || last > limit) {
    return `offsets ${first}..${last} exceed the ${limit} values they index`;
  }
  return undefined;
}

/** Checks that a column's buffers are long enough for its length; returns what is wrong. */
function checkData(data: Data, path: string): string | undefined {
  const end = data.offset + data.length;
  const bitmapBytes = Math.ceil(end / 8);
  const hasBitmap = data.typeId !== Type.Null && data.typeId !== Type.Union;
  if (hasBitmap && data.nullCount > 0 && (data.nullBitmap?.length ?? 0) < bitmapBytes) {
    return `${path}: validity bitmap shorter than ${bitmapBytes} bytes`;
  }
  const values = data.values as ArrayLike<unknown> | undefined;
  const valuesLength = values?.length ?? 0;
  let problem: string | undefined;
  switch (data.typeId) {
    case Type.Bool:
      if (valuesLength < bitmapBytes) problem = `${valuesLength} bytes for ${end} booleans`;
      break;
    case Type.Int:
    case Type.Float:
    case Type.Decimal:
    case Type.Date:
    case Type.Time:
    case Type.Timestamp:
    case Type.Interval:
    case Type.Duration:
    case Type.FixedSizeBinary:
      if (valuesLength < end * data.stride) problem = `${valuesLength} values for ${end} rows`;
      break;
    case Type.Utf8:
    case Type.LargeUtf8:
    case Type.Binary:
    case Type.LargeBinary:
      problem = offsetsWithin(data, valuesLength);
      break;
    case Type.List:
    case Type.LargeList:
    case Type.Map:
      problem = offsetsWithin(data, data.children[0]?.length ?? 0);
      break;
    case Type.FixedSizeList: {
      const childLength = data.children[0]?.length ?? 0;
      if (childLength < end * data.stride) problem = `${childLength} elements for ${end} lists`;
      break;
    }
    case Type.Struct:
      if (data.children.some((child) => child.length < end)) problem = "a child is too short";
      break;
    case Type.Dictionary:
      if (valuesLength < end) problem = `${valuesLength} indices for ${end} rows`;
      for (const dictionary of data.dictionary?.data ?? []) {
        problem ??= checkData(dictionary, `${path} (dictionary)`);
      }
      break;
  }
  if (problem !== undefined) return problem.startsWith(path) ? problem : `${path}: ${problem}`;
  for (const [i, child] of data.children.entries()) {
    const found = checkData(child, `${path}.${data.type.children?.[i]?.name ?? i}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Decodes the Arrow IPC stream in `bytes` into a table whose buffers are views over
 * `bytes`, after checking framing, schema fingerprint, row count and buffer sizes.
 */
export function decodeStream(bytes: Uint8Array, where: Expectation): Table {
  const problem = checkFraming(bytes);
  if (problem?.kind === "truncated") throw truncated(where, problem.detail);
  if (problem?.kind === "corrupt") throw corrupt(where, problem.detail);
  let table: Table;
  try {
    const reader = RecordBatchReader.from(bytes);
    const batches = reader.readAll();
    table = new Table(reader.schema, batches);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw corrupt(where, `apache-arrow cannot read it (${detail})`, error);
  }
  const fingerprint = schemaFingerprint(table.schema);
  if (fingerprint !== where.schemaFingerprint) {
    throw new RegistryError(
      "schema-mismatch",
      `object in \`${where.location}\` has schema fingerprint ${fingerprint}, ` +
        `the handle expects ${where.schemaFingerprint}`,
      { segment: where.location },
    );
  }
  if (table.numRows !== where.rows) {
    throw corrupt(where, `it holds ${table.numRows} rows, the handle says ${where.rows}`);
  }
  for (const batch of table.batches) {
    for (const [i, column] of batch.data.children.entries()) {
      const problem = checkData(column, table.schema.fields[i]?.name ?? String(i));
      if (problem !== undefined) throw corrupt(where, `column ${problem}`);
    }
  }
  return table;
}
