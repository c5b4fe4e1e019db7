/**
 * The engine's in-memory column: one typed array (numbers) or UTF-8 offsets and bytes (text,
 * as Arrow keeps them), plus a byte per row of validity, read from and written back to Arrow.
 * Text stays in UTF-8 bytes through reading, gathering, hashing, sorting and writing; only
 * kernels that work on JS strings (lower, regex, ...) decode it, once per column. A column
 * read from Arrow shares the Arrow buffers whenever its layout allows. This file must never
 * change a value while converting: integers beyond 2^53, which a float64 cannot hold
 * exactly, are refused with an error instead of being rounded.
 */
import * as arrow from "apache-arrow";
import { KeyTable } from "./_hash.ts";
import { copyBytes, decodeUtf8, encodeUtf8, type Utf8, viewOf } from "./_utf8.ts";

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
 * (then the arrays hold one entry). `valid` is null when every row is valid. A text column
 * has `utf8`, `strs` or both (see `texts` and `utf8Of`).
 */
export interface Column {
  kind: Kind;
  /** The Arrow type the column is written back as. */
  type: arrow.DataType;
  scalar: boolean;
  nums: NumArray | null;
  strs: (string | null)[] | null;
  utf8?: Utf8 | null;
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

function hasNulls(data: arrow.Data): boolean {
  return data.nullCount !== 0 && !!data.nullBitmap && data.nullBitmap.length !== 0;
}

/** Unpacks Arrow's bit-packed validity into one byte per row at `out[at..]`. */
function unpackValidity(data: arrow.Data, out: Uint8Array, at: number): void {
  if (!hasNulls(data)) {
    out.fill(1, at, at + data.length);
    return;
  }
  const bits = data.nullBitmap!;
  const off = data.offset;
  for (let i = 0; i < data.length; i++) {
    const b = off + i;
    out[at + i] = (bits[b >> 3] >> (b & 7)) & 1;
  }
}

function unsafeInteger(field: string): Error {
  return new Error(
    `column \`${field}\` holds an integer beyond ±2^53, which the PRQL engine cannot compute exactly`,
  );
}

/** The rows of a text column as JS strings (decoded once, then kept on the column). */
export function texts(col: Column): (string | null)[] {
  if (col.strs) return col.strs;
  const { offsets, bytes } = col.utf8!;
  const n = offsets.length - 1, valid = col.valid;
  const out = new Array<string | null>(n);
  for (let i = 0; i < n; i++) {
    out[i] = valid && !valid[i] ? null : decodeUtf8(bytes, offsets[i], offsets[i + 1]);
  }
  return col.strs = out;
}

/** The rows of a text column as UTF-8 (encoded once, then kept on the column). */
export function utf8Of(col: Column): Utf8 {
  if (col.utf8) return col.utf8;
  const strs = col.strs!;
  return col.utf8 = encodeUtf8(strs, col.valid, strs.length);
}

/** Reads the text chunks of an Arrow column: one chunk shares Arrow's buffers. */
function readUtf8(chunks: readonly arrow.Data[], n: number): Utf8 {
  if (chunks.length === 1 && chunks[0].valueOffsets instanceof Int32Array) {
    const d = chunks[0];
    return { offsets: (d.valueOffsets as Int32Array).subarray(0, n + 1), bytes: d.values };
  }
  let total = 0;
  for (const d of chunks) total += Number(d.valueOffsets[d.length]) - Number(d.valueOffsets[0]);
  const offsets = new Int32Array(n + 1);
  const bytes = new Uint8Array(total);
  let i = 0, at = 0;
  for (const d of chunks) {
    const off = d.valueOffsets as Int32Array | BigInt64Array;
    const base = Number(off[0]), end = Number(off[d.length]);
    bytes.set((d.values as Uint8Array).subarray(base, end), at);
    for (let j = 1; j <= d.length; j++) offsets[i + j] = at + Number(off[j]) - base;
    i += d.length;
    at += end - base;
  }
  return { offsets, bytes };
}

const TWO_32 = 4294967296;

/**
 * Reads 64-bit integers as float64 through their two 32-bit halves (no BigInt per value),
 * refusing a valid value beyond ±2^53.
 */
function readInt64(
  vals: BigInt64Array | BigUint64Array,
  signed: boolean,
  out: Float64Array,
  at: number,
  valid: Uint8Array | null,
  field: string,
): void {
  const words = new Int32Array(vals.buffer, vals.byteOffset, vals.length * 2);
  for (let j = 0; j < vals.length; j++) {
    const lo = words[2 * j] >>> 0, hi = words[2 * j + 1];
    const h = signed ? hi : hi >>> 0;
    if ((h > 0x1fffff || h < -0x200000) && (!valid || valid[at + j])) throw unsafeInteger(field);
    out[at + j] = h * TWO_32 + lo;
  }
}

/** Reads one Arrow column (all its chunks) into an engine column. */
export function fromArrow(vector: arrow.Vector, kind: Kind, field: string): Column {
  const n = vector.length;
  const chunks = vector.data;
  const type = vector.type as arrow.DataType;
  // Validity is unpacked only when some chunk has a NULL: a column without any (the common
  // case) costs nothing here, so a `take` over a large input reads almost nothing.
  let valid: Uint8Array | null = null;
  if (chunks.some(hasNulls)) {
    valid = new Uint8Array(n);
    let at = 0;
    for (const d of chunks) {
      unpackValidity(d, valid, at);
      at += d.length;
    }
  }
  const col: Column = { kind, type, scalar: false, nums: null, strs: null, utf8: null, valid };
  if (kind === "text") {
    col.utf8 = readUtf8(chunks, n);
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
    if (isBig) {
      const vals = (d.values as BigInt64Array | BigUint64Array).subarray(0, d.length);
      readInt64(vals, vals instanceof BigInt64Array, out, i, valid, field);
      if (scale !== 1) { for (let j = 0; j < d.length; j++) out[i + j] *= scale; }
      i += d.length;
      continue;
    }
    const nums = d.values as NumArray;
    for (let j = 0; j < d.length; j++, i++) out[i] = nums[j] * scale;
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

/** Writes 64-bit integers through their two 32-bit halves; NaN or ±Inf is an error. */
function writeInt64(out: BigInt64Array | BigUint64Array, at: (i: number) => number, n: number) {
  const words = new Int32Array(out.buffer, out.byteOffset, n * 2);
  for (let i = 0; i < n; i++) {
    let v = at(i);
    if (!Number.isSafeInteger(v)) {
      if (!Number.isFinite(v)) throw new Error(`an integer result is out of range: ${v}`);
      v = Math.trunc(v);
      if (!Number.isSafeInteger(v)) {
        out[i] = BigInt(v);
        continue;
      }
    }
    const hi = Math.floor(v / TWO_32);
    words[2 * i] = v - hi * TWO_32;
    words[2 * i + 1] = hi;
  }
}

/** Writes an engine column of `n` rows back as Arrow data of the column's type. */
export function toArrow(col: Column, n: number): arrow.Data {
  const { nullCount, nullBitmap } = packValidity(col.valid, col.scalar, n);
  const type = col.type;
  if (col.kind === "text") {
    let { offsets, bytes } = col.scalar ? utf8Of(broadcast(col, n)) : utf8Of(col);
    const base = offsets[0];
    bytes = bytes.subarray(base, offsets[n]);
    if (base !== 0) offsets = offsets.map((o) => o - base);
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
  if (scale === 1 && !col.scalar && src instanceof Ctor && src.length === n) {
    // A computed or gathered column already in the output's layout is handed over as is.
    // deno-lint-ignore no-explicit-any
    return arrow.makeData({ type, length: n, nullCount, nullBitmap, data: src } as any);
  }
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    const valid = col.valid;
    writeInt64(out, (i) => valid && !valid[col.scalar ? 0 : i] ? 0 : at(i) * scale, n);
  } else if (scale === 1 && !col.scalar && src.length === n && !(src instanceof Uint8Array)) {
    (out as unknown as NumArray).set(src);
  } else for (let i = 0; i < n; i++) out[i] = at(i) * scale;
  // deno-lint-ignore no-explicit-any
  return arrow.makeData({ type, length: n, nullCount, nullBitmap, data: out } as any);
}

/** One record batch of `n` rows from Arrow column data, as a table of `schema`. */
export function tableOf(schema: arrow.Schema, children: arrow.Data[], n: number): arrow.Table {
  const type = new arrow.Struct(schema.fields);
  const data = arrow.makeData({ type, length: n, nullCount: 0, children });
  return new arrow.Table(schema, [new arrow.RecordBatch(schema, data)]);
}

/** Makes a fresh typed array of the same class as `a`. */
function like(a: NumArray, n: number): NumArray {
  return new (a.constructor as new (n: number) => NumArray)(n);
}

/** The byte ranges `idx` of `src` (-1: an empty row), copied into fresh offsets and bytes. */
function gatherUtf8(src: Utf8, idx: Int32Array): Utf8 {
  const n = idx.length, so = src.offsets, sb = src.bytes;
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const j = idx[i];
    if (j >= 0) total += so[j + 1] - so[j];
    offsets[i + 1] = total;
  }
  const bytes = new Uint8Array(total);
  const sv = viewOf(sb), dv = viewOf(bytes);
  for (let i = 0; i < n; i++) {
    const j = idx[i];
    if (j >= 0) copyBytes(sb, sv, so[j], so[j + 1], bytes, dv, offsets[i]);
  }
  return { offsets, bytes };
}

/**
 * `gatherUtf8` for indices in ascending order (a filter's selection): runs of consecutive
 * rows are one contiguous byte range each, copied at once, so a filter that keeps most rows
 * costs about a copy of the column.
 */
function gatherUtf8Ascending(src: Utf8, idx: Int32Array): Utf8 {
  const n = idx.length, so = src.offsets, sb = src.bytes;
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const j = idx[i];
    offsets[i + 1] = total += so[j + 1] - so[j];
  }
  const bytes = new Uint8Array(total);
  const sv = viewOf(sb), dv = viewOf(bytes);
  for (let i = 0; i < n;) {
    let k = i + 1;
    while (k < n && idx[k] === idx[k - 1] + 1) k++;
    copyBytes(sb, sv, so[idx[i]], so[idx[k - 1] + 1], bytes, dv, offsets[i]);
    i = k;
  }
  return { offsets, bytes };
}

/** Whether `idx` picks existing rows in ascending order (as a filter's selection does). */
function ascending(idx: Int32Array): boolean {
  let prev = -1;
  for (let i = 0; i < idx.length; i++) {
    if (idx[i] <= prev) return false;
    prev = idx[i];
  }
  return true;
}

/**
 * `gatherUtf8` for a large gather from a column with few distinct values: the rows are coded
 * against a dictionary first (a sequential pass), so the random reads touch 4-byte codes and
 * a dictionary that stays in cache instead of the column's offsets and bytes. Null when the
 * column has too many distinct values for that to pay (seen on its first rows).
 */
function gatherUtf8ByDictionary(src: Utf8, idx: Int32Array): Utf8 | null {
  const rows = src.offsets.length - 1;
  if (idx.length < 1 << 15 || rows < 1 << 15) return null;
  const table = new KeyTable();
  const o = src.offsets, b = src.bytes;
  const codes = new Int32Array(rows);
  // Stop after the first rows when they are mostly distinct.
  const head = 4096;
  table.texts(o, b, null, head, true, false, codes);
  if (table.size > 1024) return null;
  table.texts(o.subarray(head), b, null, rows - head, true, false, codes.subarray(head));
  // Each distinct value's bytes, copied together so that the writes below read from a few
  // cache lines instead of the whole column.
  const size = table.size;
  const first = new Int32Array(size);
  for (let i = rows - 1; i >= 0; i--) first[codes[i]] = i;
  const dStart = new Int32Array(size + 1);
  for (let c = 0; c < size; c++) dStart[c + 1] = dStart[c] + o[first[c] + 1] - o[first[c]];
  const dBytes = new Uint8Array(dStart[size]);
  for (let c = 0; c < size; c++) dBytes.set(b.subarray(o[first[c]], o[first[c] + 1]), dStart[c]);
  const n = idx.length;
  const offsets = new Int32Array(n + 1);
  // Each row's code, read once: the random reads are what a gather by a sort's order costs.
  const picked = new Int32Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const j = idx[i];
    const c = picked[i] = j >= 0 ? codes[j] : -1;
    if (c >= 0) total += dStart[c + 1] - dStart[c];
    offsets[i + 1] = total;
  }
  const bytes = new Uint8Array(total);
  const sv = viewOf(dBytes), dv = viewOf(bytes);
  for (let i = 0; i < n; i++) {
    const c = picked[i];
    if (c >= 0) copyBytes(dBytes, sv, dStart[c], dStart[c + 1], bytes, dv, offsets[i]);
  }
  return { offsets, bytes };
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
  if (col.kind === "text") {
    if (col.utf8) {
      const utf8 = ascending(idx)
        ? gatherUtf8Ascending(col.utf8, idx)
        : gatherUtf8ByDictionary(col.utf8, idx) ?? gatherUtf8(col.utf8, idx);
      return { ...col, strs: null, utf8, valid };
    }
    const src = col.strs!;
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

/** A scalar column repeated over `n` rows. */
export function broadcast(c: Column, n: number): Column {
  return gather({ ...c, scalar: false }, new Int32Array(n));
}

/** Rows `[start, end)` of `col`, sharing its arrays. */
export function slice(col: Column, start: number, end: number): Column {
  if (col.scalar) return col;
  return {
    ...col,
    nums: col.nums ? col.nums.subarray(start, end) : null,
    strs: col.strs ? col.strs.slice(start, end) : null,
    utf8: col.utf8 ? { ...col.utf8, offsets: col.utf8.offsets.subarray(start, end + 1) } : null,
    valid: col.valid ? col.valid.subarray(start, end) : null,
  };
}

/** The rows of `a` followed by those of `b`; both have the same kind. */
export function concat(a: Column, an: number, b: Column, bn: number, type: arrow.DataType): Column {
  return concatAll([{ col: a, n: an }, { col: b, n: bn }], type);
}

/** The rows of every part in turn (all of one kind); text stays UTF-8 when every part has it. */
export function concatAll(parts: { col: Column; n: number }[], type: arrow.DataType): Column {
  const n = parts.reduce((t, p) => t + p.n, 0);
  const kind = parts[0].col.kind;
  let valid: Uint8Array | null = null;
  if (parts.some((p) => p.col.valid)) {
    valid = new Uint8Array(n);
    let at = 0;
    for (const { col, n: m } of parts) {
      for (let i = 0; i < m; i++) valid[at + i] = col.valid ? col.valid[col.scalar ? 0 : i] : 1;
      at += m;
    }
  }
  if (kind === "text") {
    if (parts.every((p) => p.col.utf8 && !p.col.scalar)) {
      const total = parts.reduce((t, p) => {
        const o = p.col.utf8!.offsets;
        return t + o[p.n] - o[0];
      }, 0);
      const offsets = new Int32Array(n + 1), bytes = new Uint8Array(total);
      let row = 0, at = 0;
      for (const { col, n: m } of parts) {
        const o = col.utf8!.offsets, base = o[0];
        for (let i = 1; i <= m; i++) offsets[row + i] = at + o[i] - base;
        bytes.set(col.utf8!.bytes.subarray(base, o[m]), at);
        at += o[m] - base;
        row += m;
      }
      return { kind, type, scalar: false, nums: null, strs: null, utf8: { offsets, bytes }, valid };
    }
    const out = new Array<string | null>(n);
    let at = 0;
    for (const { col, n: m } of parts) {
      const x = texts(col);
      for (let i = 0; i < m; i++) out[at + i] = x[col.scalar ? 0 : i];
      at += m;
    }
    return { kind, type, scalar: false, nums: null, strs: out, valid };
  }
  const out = new Float64Array(n);
  let at = 0;
  for (const { col, n: m } of parts) {
    const x = col.nums!;
    if (col.scalar) out.fill(x[0], at, at + m);
    else for (let i = 0; i < m; i++) out[at + i] = x[i];
    at += m;
  }
  return { kind, type, scalar: false, nums: out, strs: null, valid };
}

/** Whether row `i` of `col` is non-null. */
export function isValid(col: Column, i: number): boolean {
  return !col.valid || col.valid[col.scalar ? 0 : i] === 1;
}
