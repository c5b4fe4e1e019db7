/**
 * JSON records to Arrow columns and back, for `fhub/kafka`, without a row object per record.
 * The generic path (a row object per record, coerced once when decoded and again by
 * `tableFromRows`, then a row object per record again to produce) cost about five times a bare
 * `JSON.parse` per record and bounded the connector's throughput (issue 11.4). The answers
 * must stay exactly those of the generic path: the same rows, the same row errors with the
 * same messages, the same JSON text out (`tests/connectors/kafka_json.test.ts` compares them).
 */
import {
  type Data,
  type DataType,
  type Field,
  type Float,
  type Int,
  makeData,
  Precision,
  RecordBatch,
  type Schema,
  Struct,
  Table,
  Type,
  type Vector,
  vectorFromArray,
} from "apache-arrow";
import { coerce, jsonValue } from "./_arrow.ts";
import { invalidJson } from "./_jsonl.ts";

/** Why a message is not a typed row (never quoting it), and the column at fault. */
export class Rejected {
  constructor(readonly why: string, readonly column?: string) {}
}

type Coercer = (raw: unknown) => unknown;

/**
 * `coerce` with the common case first: a JSON number for a number column, a string for a
 * text column. Anything else goes through `coerce`, which decides (and words the errors).
 */
function coercerOf(f: Field): Coercer {
  const { type, name } = f;
  const slow = (raw: unknown) => coerce(raw, type, name);
  if (type.typeId === Type.Float) {
    return (raw) => typeof raw === "number" ? raw : slow(raw);
  }
  if (type.typeId === Type.Int) {
    const { bitWidth, isSigned } = type as Int;
    if (bitWidth === 64) {
      return (raw) =>
        typeof raw === "number" && Number.isSafeInteger(raw) && (isSigned || raw >= 0)
          ? BigInt(raw)
          : slow(raw);
    }
    const min = isSigned ? -(2 ** (bitWidth - 1)) : 0;
    const max = isSigned ? 2 ** (bitWidth - 1) - 1 : 2 ** bitWidth - 1;
    return (raw) =>
      typeof raw === "number" && Number.isInteger(raw) && raw >= min && raw <= max
        ? raw
        : slow(raw);
  }
  if (type.typeId === Type.Utf8 || type.typeId === Type.LargeUtf8) {
    return (raw) => typeof raw === "string" ? raw : slow(raw);
  }
  if (type.typeId === Type.Bool) return (raw) => typeof raw === "boolean" ? raw : slow(raw);
  return slow;
}

type TypedArray =
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array
  | BigInt64Array
  | BigUint64Array;

/** The typed array an Arrow column of `type` keeps its values in, for the numeric types. */
function typedArrayOf(type: DataType, length: number): TypedArray | null {
  if (type.typeId === Type.Float) {
    const p = (type as Float).precision;
    if (p === Precision.DOUBLE) return new Float64Array(length);
    if (p === Precision.SINGLE) return new Float32Array(length);
    return null;
  }
  if (type.typeId !== Type.Int) return null;
  const { bitWidth, isSigned } = type as Int;
  switch (bitWidth) {
    case 64:
      return isSigned ? new BigInt64Array(length) : new BigUint64Array(length);
    case 32:
      return isSigned ? new Int32Array(length) : new Uint32Array(length);
    case 16:
      return isSigned ? new Int16Array(length) : new Uint16Array(length);
    case 8:
      return isSigned ? new Int8Array(length) : new Uint8Array(length);
  }
  return null;
}

/** One column's coerced values as Arrow data: numbers straight into their typed array. */
function columnData(type: DataType, values: unknown[]): Data {
  const typed = typedArrayOf(type, values.length);
  if (!typed) return vectorFromArray(values, type).data[0];
  let nulls = 0;
  let bitmap: Uint8Array | undefined;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null) {
      if (!bitmap) bitmap = new Uint8Array((values.length + 7) >> 3).fill(0xff);
      bitmap[i >> 3] &= ~(1 << (i & 7));
      nulls++;
    } else (typed as unknown as unknown[])[i] = v;
  }
  return makeData(
    {
      type,
      length: values.length,
      nullCount: nulls,
      data: typed,
      nullBitmap: bitmap,
    } as Parameters<typeof makeData>[0],
  ) as Data;
}

/**
 * Decodes record values into one Arrow batch of `schema`: `add` takes one record's text and
 * says why it is not a row (nothing of it is kept then), `finish` builds the table.
 */
export class RowDecoder {
  #fields: Field[];
  #coercers: Coercer[];
  #columns: unknown[][];
  #row: unknown[];

  constructor(private schema: Schema) {
    this.#fields = schema.fields;
    this.#coercers = schema.fields.map(coercerOf);
    this.#columns = schema.fields.map(() => []);
    this.#row = new Array(schema.fields.length);
  }

  add(text: string | undefined): Rejected | null {
    let value: unknown;
    try {
      value = JSON.parse(text ?? "");
    } catch (e) {
      return new Rejected(invalidJson(e));
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return new Rejected("expected a JSON object");
    }
    const record = value as Record<string, unknown>;
    const fields = this.#fields;
    for (let c = 0; c < fields.length; c++) {
      const f = fields[c];
      let v: unknown;
      try {
        v = this.#coercers[c](record[f.name]);
      } catch (e) {
        return new Rejected((e as Error).message, f.name);
      }
      if (v === null && !f.nullable) {
        return new Rejected(`column \`${f.name}\`: missing value`, f.name);
      }
      this.#row[c] = v;
    }
    for (let c = 0; c < fields.length; c++) this.#columns[c].push(this.#row[c]);
    return null;
  }

  /** The rows added so far as a table; the decoder starts empty again. */
  finish(): Table {
    const length = this.#columns[0]?.length ?? 0;
    const children = this.#fields.map((f, c) => columnData(f.type, this.#columns[c]));
    this.#columns = this.#fields.map(() => []);
    const data = makeData({
      type: new Struct(this.#fields),
      length,
      nullCount: 0,
      children,
    });
    return new Table([new RecordBatch(this.schema, data)]);
  }
}

/** One column of one record batch, as the cell writers read it. */
interface Column {
  data: Data;
  vector: Vector;
  /** Fixed-width values, sliced to the batch (apache-arrow slices them with the data). */
  values: ArrayLike<number | bigint>;
}

/** Writes one cell's JSON text; undefined when the generic path would leave the key out. */
type CellWriter = (col: Column, i: number) => string | undefined;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

function cellWriterOf(type: DataType): CellWriter {
  if (type.typeId === Type.Float && (type as Float).precision !== Precision.HALF) {
    return (col, i) => {
      const n = col.values[i] as number;
      return Number.isFinite(n) ? String(n) : "null";
    };
  }
  if (type.typeId === Type.Int) {
    if ((type as Int).bitWidth < 64) return (col, i) => String(col.values[i]);
    return (col, i) => {
      const n = col.values[i] as bigint;
      return n <= MAX_SAFE && n >= MIN_SAFE ? String(n) : `"${n}"`;
    };
  }
  if (type.typeId === Type.Utf8 || type.typeId === Type.LargeUtf8) {
    return (col, i) => JSON.stringify(col.vector.get(i));
  }
  if (type.typeId === Type.Bool) return (col, i) => (col.vector.get(i) ? "true" : "false");
  return (col, i) => JSON.stringify(jsonValue(col.vector.get(i)));
}

/**
 * The JSON text of every row of tables of `schema`, each exactly `JSON.stringify` of the row
 * object `rowsOf` makes (fields in schema order, values as `jsonValue` gives them).
 */
export function rowEncoder(schema: Schema): (table: Table) => string[] {
  const fields = schema.fields;
  const keys = fields.map((f) => `${JSON.stringify(f.name)}:`);
  const writers = fields.map((f) => cellWriterOf(f.type));
  return (table) => {
    const out: string[] = [];
    for (const batch of table.batches) {
      const columns: Column[] = fields.map((_, c) => {
        const vector = batch.getChildAt(c)!;
        const data = vector.data[0];
        return { data, vector, values: data.values };
      });
      for (let i = 0; i < batch.numRows; i++) {
        let text = "";
        for (let c = 0; c < fields.length; c++) {
          const col = columns[c];
          const cell = col.data.nullCount === 0 || col.data.getValid(i)
            ? writers[c](col, i)
            : "null";
          // A value JSON has no text for: the generic path leaves its key out.
          if (cell !== undefined) text += (text === "" ? "{" : ",") + keys[c] + cell;
        }
        out.push(text === "" ? "{}" : `${text}}`);
      }
    }
    return out;
  };
}
