/**
 * Arrow helpers every connector (and the executor) needs: turning the compiler's plain-data
 * schemas into apache-arrow schemas, building tables from row objects, and turning Arrow
 * values back into JSON-safe values. They exist so that no connector hand-rolls its own
 * coercions; they must never guess a type that a schema pins.
 */
import {
  Binary,
  Bool,
  type DataType,
  DateDay,
  DateMillisecond,
  Field,
  Float16,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  Int8,
  LargeUtf8,
  List,
  makeData,
  Null,
  RecordBatch,
  Schema,
  Struct,
  Table,
  TimestampMicrosecond,
  TimestampMillisecond,
  TimestampNanosecond,
  TimestampSecond,
  Type,
  Uint16,
  Uint32,
  Uint64,
  Uint8,
  Utf8,
  vectorFromArray,
} from "apache-arrow";
import type { ArrowField, ArrowType } from "../../compiler/modules/mod.ts";

function toArrowType(t: ArrowType): DataType {
  switch (t.kind) {
    case "timestamp": {
      const tz = t.tz ?? undefined;
      if (t.unit === "s") return new TimestampSecond(tz);
      if (t.unit === "ms") return new TimestampMillisecond(tz);
      if (t.unit === "us") return new TimestampMicrosecond(tz);
      return new TimestampNanosecond(tz);
    }
    case "decimal":
      // Decimals travel as float64 until a connector needs exact decimals end to end.
      return new Float64();
    case "list":
      return new List(toArrowField(t.element));
    case "struct":
      return new Struct(t.fields.map(toArrowField));
    case "primitive":
      return primitiveType(t.name);
  }
}

function primitiveType(name: string): DataType {
  const types: Record<string, () => DataType> = {
    null: () => new Null(),
    bool: () => new Bool(),
    int8: () => new Int8(),
    int16: () => new Int16(),
    int32: () => new Int32(),
    int64: () => new Int64(),
    uint8: () => new Uint8(),
    uint16: () => new Uint16(),
    uint32: () => new Uint32(),
    uint64: () => new Uint64(),
    float16: () => new Float16(),
    float32: () => new Float32(),
    float64: () => new Float64(),
    utf8: () => new Utf8(),
    large_utf8: () => new LargeUtf8(),
    binary: () => new Binary(),
    date32: () => new DateDay(),
    date64: () => new DateMillisecond(),
    duration: () => new Int64(),
  };
  return (types[name] ?? types.utf8)();
}

export function toArrowField(f: ArrowField): Field {
  return new Field(f.name, toArrowType(f.type), f.nullable);
}

/** The apache-arrow schema of a row type written in the compiler's vocabulary. */
export function toArrowSchema(fields: ArrowField[]): Schema {
  return new Schema(fields.map(toArrowField));
}

/**
 * What kind of value a cell holds, never the value: messages about cells reach the control
 * plane, which must not see row data (the handler's rows carry the record's text).
 */
export function kindOf(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return "text";
  if (typeof v === "number" || typeof v === "bigint") return "a number";
  if (typeof v === "boolean") return "a boolean";
  return Array.isArray(v) ? "an array" : "an object";
}

/** Makes `value` acceptable to an Arrow builder of `type`; throws a plain message if not. */
export function coerce(value: unknown, type: DataType, column: string): unknown {
  if (value === null || value === undefined) return null;
  const fail = (): never => {
    throw new Error(`column \`${column}\`: expected ${type}, found ${kindOf(value)}`);
  };
  switch (type.typeId) {
    case Type.Int: {
      // Out-of-range values are rejected: an Arrow builder would silently wrap them.
      const { bitWidth: bits, isSigned } = type as Int64;
      const text = typeof value === "bigint" ? String(value) : String(value).trim();
      if (!/^[+-]?\d+$/.test(text)) fail();
      const big = BigInt(text);
      const width = BigInt(bits);
      const min = isSigned ? -(1n << (width - 1n)) : 0n;
      const max = isSigned ? (1n << (width - 1n)) - 1n : (1n << width) - 1n;
      if (big < min || big > max) fail();
      return bits === 64 ? big : Number(big);
    }
    case Type.Float: {
      if (typeof value === "number") return value;
      if (typeof value === "bigint") return Number(value);
      const text = String(value).trim();
      const n = Number(text);
      if (text === "" || Number.isNaN(n)) fail();
      return n;
    }
    case Type.Bool: {
      if (typeof value === "boolean") return value;
      const text = String(value).trim().toLowerCase();
      if (text === "true" || text === "1") return true;
      if (text === "false" || text === "0") return false;
      return fail();
    }
    case Type.Utf8:
    case Type.LargeUtf8:
      return typeof value === "string" ? value : JSON.stringify(jsonValue(value));
    case Type.Date:
    case Type.Timestamp: {
      const d = value instanceof Date
        ? value
        : new Date(typeof value === "bigint" ? Number(value) : value as string);
      if (Number.isNaN(d.getTime())) fail();
      return type.typeId === Type.Date ? d : d.getTime();
    }
    default:
      return value;
  }
}

/**
 * Builds a table of `schema` from row objects, coercing each value. A value that does not
 * fit throws an `Error` whose message names the column; callers turn it into a row error.
 */
export function tableFromRows(schema: Schema, rows: Record<string, unknown>[]): Table {
  const columns = schema.fields.map((f) => {
    const values = rows.map((r) => {
      const v = coerce(r[f.name], f.type, f.name);
      if (v === null && !f.nullable) throw new Error(`column \`${f.name}\`: missing value`);
      return v;
    });
    return vectorFromArray(values, f.type).data[0];
  });
  const data = makeData({
    type: new Struct(schema.fields),
    length: rows.length,
    nullCount: 0,
    children: columns,
  });
  return new Table([new RecordBatch(schema, data)]);
}

/** A JSON-safe form of an Arrow value: bigints become numbers (strings if too large). */
export function jsonValue(value: unknown): unknown {
  if (typeof value === "bigint") {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return btoa(String.fromCharCode(...value));
  if (Array.isArray(value)) return value.map(jsonValue);
  if (value && typeof value === "object") {
    const maybeJson = value as { toJSON?: () => unknown; toArray?: () => unknown[] };
    if (typeof maybeJson.toArray === "function" && !("toJSON" in value)) {
      return maybeJson.toArray().map(jsonValue);
    }
    const plain = typeof maybeJson.toJSON === "function" ? maybeJson.toJSON() : value;
    if (Array.isArray(plain)) return plain.map(jsonValue);
    return Object.fromEntries(
      Object.entries(plain as Record<string, unknown>).map(([k, v]) => [k, jsonValue(v)]),
    );
  }
  return value;
}

/** The rows of a table as plain JSON-safe objects, in column order. */
export function rowsOf(table: Table): Record<string, unknown>[] {
  const names = table.schema.fields.map((f) => f.name);
  const columns = names.map((n) => table.getChild(n)!);
  const rows: Record<string, unknown>[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const row: Record<string, unknown> = {};
    names.forEach((n, c) => row[n] = jsonValue(columns[c].get(i)));
    rows.push(row);
  }
  return rows;
}

/** The raw (not JSON-converted) rows of a table, for rebuilding tables of the same types. */
export function rawRowsOf(table: Table): Record<string, unknown>[] {
  const names = table.schema.fields.map((f) => f.name);
  const columns = names.map((n) => table.getChild(n)!);
  const rows: Record<string, unknown>[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const row: Record<string, unknown> = {};
    names.forEach((n, c) => row[n] = columns[c].get(i));
    rows.push(row);
  }
  return rows;
}
