/**
 * The engine's in-memory column: one typed array (or one array of strings) plus a byte per
 * row of validity, read from and written back to Arrow. Numbers, dates and timestamps stay
 * in typed arrays so that kernels run without allocating per row; a column read from Arrow
 * shares the Arrow buffer whenever its layout allows. This file must never change a value
 * while converting: integers beyond 2^53, which a float64 cannot hold exactly, are refused
 * with an error instead of being rounded.
 */
import * as arrow from "apache-arrow";

/** What a column holds, as far as PRQL's SQL semantics care. */
export type Kind =
  /** Whole numbers (any Arrow Int type). */
  | "int"
  /** Floating point numbers (Float32, Float64). */
  | "float"
  /** Booleans, one byte per row (0 or 1). */
  | "bool"
  /** Strings. */
  | "text"
  /** Calendar dates, as days since 1970-01-01. */
  | "date"
  /** Timestamps, as microseconds since 1970-01-01 (DuckDB's own resolution). */
  | "timestamp";

export type NumArray =
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array;

/**
 * A column of `length` rows, or a scalar broadcast to any length when `scalar` is set
 * (then the arrays hold one entry). `valid` is null when every row is valid.
 */
export interface Column {
  kind: Kind;
  /** The Arrow type the column is written back as. */
  type: arrow.DataType;
  scalar: boolean;
  nums: NumArray | null;
  strs: (string | null)[] | null;
  valid: Uint8Array | null;
}

/** The Arrow type a computed column of `kind` is written as. */
export function defaultType(kind: Kind): arrow.DataType {
  switch (kind) {
    case "int":
      return new arrow.Int64();
    case "float":
      return new arrow.Float64();
    case "bool":
      return new arrow.Bool();
    case "text":
      return new arrow.Utf8();
    case "date":
      return new arrow.DateDay();
    case "timestamp":
      return new arrow.TimestampMicrosecond();
  }
}

/** The engine kind of an Arrow type, or null when the engine does not support the type. */
export function kindOf(type: arrow.DataType): Kind | null {
  if (arrow.DataType.isInt(type)) return "int";
  if (arrow.DataType.isFloat(type)) return type.precision === arrow.Precision.HALF ? null : "float";
  if (arrow.DataType.isBool(type)) return "bool";
  if (arrow.DataType.isUtf8(type) || arrow.DataType.isLargeUtf8(type)) return "text";
  if (arrow.DataType.isDate(type)) return type.unit === arrow.DateUnit.DAY ? "date" : null;
  if (arrow.DataType.isTimestamp(type)) return "timestamp";
  return null;
}

export function scalarColumn(kind: Kind, value: number | string | boolean | null): Column {
  const isNull = value === null;
  return {
    kind,
    type: defaultType(kind),
    scalar: true,
    nums: kind === "text" ? null : new Float64Array([isNull ? 0 : Number(value)]),
    strs: kind === "text" ? [isNull ? null : String(value)] : null,
    valid: isNull ? new Uint8Array(1) : null,
  };
}

const MICROS_PER_UNIT = {
  [arrow.TimeUnit.SECOND]: 1e6,
  [arrow.TimeUnit.MILLISECOND]: 1e3,
  [arrow.TimeUnit.MICROSECOND]: 1,
  [arrow.TimeUnit.NANOSECOND]: 1e-3,
};

/** Unpacks Arrow's bit-packed validity into one byte per row, or null if all are valid. */
function unpackValidity(data: arrow.Data, out: Uint8Array, at: number): boolean {
  if (data.nullCount === 0 || !data.nullBitmap || data.nullBitmap.length === 0) {
    out.fill(1, at, at + data.length);
    return false;
  }
  const bits = data.nullBitmap;
  const off = data.offset;
  for (let i = 0; i < data.length; i++) {
    const b = off + i;
    out[at + i] = (bits[b >> 3] >> (b & 7)) & 1;
  }
  return true;
}

function unsafeInteger(field: string): Error {
  return new Error(
    `column \`${field}\` holds an integer beyond ±2^53, which the PRQL engine cannot compute exactly`,
  );
}

const utf8 = new TextDecoder();

/** Decodes bytes [start, end); short ASCII strings skip TextDecoder's call overhead. */
function decodeUtf8(bytes: Uint8Array, start: number, end: number): string {
  if (end - start > 32) return utf8.decode(bytes.subarray(start, end));
  let s = "";
  for (let k = start; k < end; k++) {
    const b = bytes[k];
    if (b >= 0x80) return utf8.decode(bytes.subarray(start, end));
    s += String.fromCharCode(b);
  }
  return s;
}

/** Encodes strings as Arrow Utf8 offsets and bytes, without a per-value builder. */
function encodeUtf8(strs: (string | null)[], valid: Uint8Array | null, scalar: boolean, n: number) {
  const offsets = new Int32Array(n + 1);
  let bytes = new Uint8Array(Math.max(16, n * 8));
  let at = 0;
  const encoder = new TextEncoder();
  for (let i = 0; i < n; i++) {
    const j = scalar ? 0 : i;
    const v = valid && !valid[j] ? null : strs[j];
    if (v) {
      if (at + v.length * 3 > bytes.length) {
        const grown = new Uint8Array(Math.max(bytes.length * 2, at + v.length * 3));
        grown.set(bytes.subarray(0, at));
        bytes = grown;
      }
      let ascii = true;
      for (let k = 0; k < v.length; k++) {
        const c = v.charCodeAt(k);
        if (c >= 0x80) {
          ascii = false;
          break;
        }
        bytes[at + k] = c;
      }
      at += ascii ? v.length : encoder.encodeInto(v, bytes.subarray(at)).written;
    }
    offsets[i + 1] = at;
  }
  return { offsets, bytes: bytes.subarray(0, at) };
}

/** Reads one Arrow column (all its chunks) into an engine column. */
export function fromArrow(vector: arrow.Vector, kind: Kind, field: string): Column {
  const n = vector.length;
  const chunks = vector.data;
  const type = vector.type as arrow.DataType;
  let valid: Uint8Array | null = new Uint8Array(n);
  let anyNull = false;
  let at = 0;
  for (const d of chunks) {
    anyNull = unpackValidity(d, valid, at) || anyNull;
    at += d.length;
  }
  if (!anyNull) valid = null;
  const col: Column = { kind, type, scalar: false, nums: null, strs: null, valid };
  if (kind === "text") {
    const strs = new Array<string | null>(n);
    let i = 0;
    for (const d of chunks) {
      const offsets = d.valueOffsets as Int32Array | BigInt64Array;
      const bytes = d.values as Uint8Array;
      for (let j = 0; j < d.length; j++, i++) {
        strs[i] = valid && !valid[i]
          ? null
          : decodeUtf8(bytes, Number(offsets[j]), Number(offsets[j + 1]));
      }
    }
    col.strs = strs;
    return col;
  }
  if (kind === "bool") {
    const out = new Uint8Array(n);
    let i = 0;
    for (const d of chunks) {
      const bits = d.values as Uint8Array;
      for (let j = 0; j < d.length; j++, i++) {
        const b = d.offset + j;
        out[i] = (bits[b >> 3] >> (b & 7)) & 1;
      }
    }
    col.nums = out;
    return col;
  }
  const scale = kind === "timestamp"
    ? MICROS_PER_UNIT[(type as arrow.Timestamp).unit as keyof typeof MICROS_PER_UNIT]
    : 1;
  const first = chunks[0]?.values as ArrayLike<number | bigint> | undefined;
  const isBig = first instanceof BigInt64Array || first instanceof BigUint64Array;
  if (chunks.length === 1 && !isBig && scale === 1) {
    const d = chunks[0];
    // The engine's kernels only read, so the Arrow buffer itself serves as the column.
    // arrow-js slices value buffers (all but booleans' bits) along with the Data.
    col.nums = (d.values as NumArray).subarray(0, d.length);
    return col;
  }
  const out = new Float64Array(n);
  let i = 0;
  for (const d of chunks) {
    const vals = d.values as ArrayLike<number | bigint>;
    for (let j = 0; j < d.length; j++, i++) {
      const raw = vals[j];
      const v = typeof raw === "bigint" ? Number(raw) : raw;
      if (isBig && !Number.isSafeInteger(v) && (!valid || valid[i])) throw unsafeInteger(field);
      out[i] = v * scale;
    }
  }
  col.nums = out;
  return col;
}

function packValidity(valid: Uint8Array | null, scalar: boolean, n: number) {
  if (!valid) return { nullCount: 0, nullBitmap: undefined };
  const bitmap = new Uint8Array(((n + 63) >> 6) << 3);
  let nulls = 0;
  for (let i = 0; i < n; i++) {
    if (valid[scalar ? 0 : i]) bitmap[i >> 3] |= 1 << (i & 7);
    else nulls++;
  }
  return nulls === 0
    ? { nullCount: 0, nullBitmap: undefined }
    : { nullCount: nulls, nullBitmap: bitmap };
}

/** Writes an engine column of `n` rows back as Arrow data of the column's type. */
export function toArrow(col: Column, n: number): arrow.Data {
  const { nullCount, nullBitmap } = packValidity(col.valid, col.scalar, n);
  const type = col.type;
  if (col.kind === "text") {
    const { offsets, bytes } = encodeUtf8(col.strs!, col.valid, col.scalar, n);
    return arrow.makeData({
      type: new arrow.Utf8(),
      length: n,
      nullCount,
      nullBitmap,
      valueOffsets: offsets,
      data: bytes,
    });
  }
  const src = col.nums!;
  const at = (i: number) => src[col.scalar ? 0 : i];
  if (col.kind === "bool") {
    const bits = new Uint8Array(((n + 63) >> 6) << 3);
    for (let i = 0; i < n; i++) if (at(i)) bits[i >> 3] |= 1 << (i & 7);
    return arrow.makeData({
      type: type as arrow.Bool,
      length: n,
      nullCount,
      nullBitmap,
      data: bits,
    });
  }
  const scale = col.kind === "timestamp"
    ? 1 / MICROS_PER_UNIT[(type as arrow.Timestamp).unit as keyof typeof MICROS_PER_UNIT]
    : 1;
  // deno-lint-ignore no-explicit-any
  const Ctor = (type as any).ArrayType as {
    new (n: number): ArrayLike<number | bigint> & { [i: number]: number | bigint };
  };
  const out = new Ctor(n);
  const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
  for (let i = 0; i < n; i++) {
    const v = at(i) * scale;
    if (big) {
      if (!Number.isSafeInteger(v)) {
        if (col.valid && !col.valid[col.scalar ? 0 : i]) continue;
        if (Number.isFinite(v)) out[i] = BigInt(Math.trunc(v));
        else throw new Error(`an integer result is out of range: ${v}`);
      } else out[i] = BigInt(v);
    } else out[i] = v;
  }
  // deno-lint-ignore no-explicit-any
  return arrow.makeData({ type, length: n, nullCount, nullBitmap, data: out } as any);
}

/** Makes a fresh typed array of the same class as `a`. */
function like(a: NumArray, n: number): NumArray {
  return new (a.constructor as new (n: number) => NumArray)(n);
}

/** The rows `idx` of `col`, in that order; an index of -1 yields a null row. */
export function gather(col: Column, idx: Int32Array): Column {
  if (col.scalar) {
    if (!idx.includes(-1)) return col;
    col = { ...col, scalar: false };
    idx = idx.map((j) => (j < 0 ? -1 : 0));
  }
  const n = idx.length;
  let valid: Uint8Array | null = null;
  const srcValid = col.valid;
  let hasMissing = false;
  for (let i = 0; i < n; i++) if (idx[i] < 0) hasMissing = true;
  if (srcValid || hasMissing) {
    valid = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const j = idx[i];
      valid[i] = j < 0 ? 0 : srcValid ? srcValid[j] : 1;
    }
  }
  if (col.strs) {
    const src = col.strs;
    const out = new Array<string | null>(n);
    for (let i = 0; i < n; i++) {
      const j = idx[i];
      out[i] = j < 0 ? null : src[j];
    }
    return { ...col, strs: out, valid };
  }
  const src = col.nums!;
  const out = like(src, n);
  for (let i = 0; i < n; i++) {
    const j = idx[i];
    out[i] = j < 0 ? 0 : src[j];
  }
  return { ...col, nums: out, valid };
}

/** Rows `[start, end)` of `col`, sharing its arrays. */
export function slice(col: Column, start: number, end: number): Column {
  if (col.scalar) return col;
  return {
    ...col,
    nums: col.nums ? col.nums.subarray(start, end) : null,
    strs: col.strs ? col.strs.slice(start, end) : null,
    valid: col.valid ? col.valid.subarray(start, end) : null,
  };
}

/** The rows of `a` followed by those of `b`; both have the same kind. */
export function concat(a: Column, an: number, b: Column, bn: number, type: arrow.DataType): Column {
  const n = an + bn;
  const valid = a.valid || b.valid ? new Uint8Array(n) : null;
  if (valid) {
    for (let i = 0; i < an; i++) valid[i] = a.valid ? a.valid[a.scalar ? 0 : i] : 1;
    for (let i = 0; i < bn; i++) valid[an + i] = b.valid ? b.valid[b.scalar ? 0 : i] : 1;
  }
  if (a.kind === "text") {
    const out = new Array<string | null>(n);
    for (let i = 0; i < an; i++) out[i] = a.strs![a.scalar ? 0 : i];
    for (let i = 0; i < bn; i++) out[an + i] = b.strs![b.scalar ? 0 : i];
    return { kind: a.kind, type, scalar: false, nums: null, strs: out, valid };
  }
  const out = new Float64Array(n);
  for (let i = 0; i < an; i++) out[i] = a.nums![a.scalar ? 0 : i];
  for (let i = 0; i < bn; i++) out[an + i] = b.nums![b.scalar ? 0 : i];
  return { kind: a.kind, type, scalar: false, nums: out, strs: null, valid };
}

/** Whether row `i` of `col` is non-null. */
export function isValid(col: Column, i: number): boolean {
  return !col.valid || col.valid[col.scalar ? 0 : i] === 1;
}
