/**
 * Column builders for the file readers: each appends one cell at a time, either straight from
 * the bytes of a CSV field or from a parsed JSON value, into the typed buffers of an Arrow
 * column, and rolls back when a later cell of the same row is rejected. They exist so that a
 * CSV number never becomes a JS string or row object on its way into Arrow, and so that every
 * type check lives in one place. A builder must never store a value its type cannot hold
 * exactly: an out-of-range integer or a non-number is a row error, never wrapped or rounded.
 */
import {
  type Data,
  type DataType,
  type Field,
  type Float as FloatType,
  type Int as IntType,
  makeData,
  Type,
  vectorFromArray,
} from "apache-arrow";
import type { ArrowField } from "../../compiler/modules/mod.ts";
import { coerce, kindOf } from "./_arrow.ts";

/** The field was quoted in the CSV text. */
export const QUOTED = 1;
/** The quoted field holds doubled quotes (`""`) that stand for one. */
export const ESCAPED = 2;
/** Text followed the closing quote (kept in lenient mode): decoded the slow way. */
export const MESSY = 4;

const QUOTE = 34;
const utf8 = new TextDecoder();
const encoder = new TextEncoder();

/** Appends cells to one column; every method returns `null` or why the cell does not fit. */
export interface ColumnBuilder {
  readonly field: Field;
  readonly length: number;
  /** A CSV field: bytes `[start, end)` of `buf`, raw (quotes included), with `flags`. */
  cell(buf: Uint8Array, start: number, end: number, flags: number): string | null;
  /** A JSON value (`undefined` and `null` are a null). */
  value(v: unknown): string | null;
  /** Forgets every cell from row `n` on (the row was rejected by a later column). */
  truncate(n: number): void;
  finish(): Data;
}

/** The text of a CSV field, quotes removed and `""` unescaped (Python's `csv` semantics). */
export function cellText(buf: Uint8Array, start: number, end: number, flags: number): string {
  if (flags === 0) return utf8.decode(buf.subarray(start, end));
  if (!(flags & MESSY)) {
    const inner = utf8.decode(buf.subarray(start + 1, end - 1));
    return flags & ESCAPED ? inner.replaceAll('""', '"') : inner;
  }
  // A quoted part (possibly unterminated) followed by literal text, as Python reads it.
  const bytes: number[] = [];
  let i = start + 1;
  for (; i < end; i++) {
    if (buf[i] !== QUOTE) bytes.push(buf[i]);
    else if (buf[i + 1] === QUOTE && i + 1 < end) bytes.push(buf[++i]);
    else break;
  }
  return utf8.decode(new Uint8Array(bytes)) + utf8.decode(buf.subarray(i + 1, end));
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9;
}

type Growable = Uint8Array | Int32Array | Float64Array;

/** A copy of `a` with room for at least `need` elements (callers check `need` first). */
function grown<T extends Growable>(a: T, need: number): T {
  const b = new (a.constructor as new (n: number) => T)(Math.max(need, a.length * 2, 64));
  b.set(a as never);
  return b;
}

/** Validity as one byte per row, packed into Arrow's bitmap at the end. */
class Validity {
  bytes: Uint8Array;
  nulls = 0;
  length = 0;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity);
  }

  push(valid: boolean): void {
    if (this.length === this.bytes.length) this.bytes = grown(this.bytes, this.length + 1);
    this.bytes[this.length++] = valid ? 1 : 0;
    if (!valid) this.nulls++;
  }

  truncate(n: number): void {
    for (let i = n; i < this.length; i++) if (!this.bytes[i]) this.nulls--;
    this.length = Math.min(this.length, n);
  }

  bitmap(): Uint8Array | undefined {
    if (this.nulls === 0) return undefined;
    const bits = new Uint8Array((this.length + 7) >> 3);
    for (let i = 0; i < this.length; i++) if (this.bytes[i]) bits[i >> 3] |= 1 << (i & 7);
    return bits;
  }
}

abstract class Base implements ColumnBuilder {
  protected valid: Validity;
  constructor(readonly field: Field, protected capacity: number) {
    this.valid = new Validity(capacity);
  }

  get length(): number {
    return this.valid.length;
  }

  protected nul(): string | null {
    if (!this.field.nullable) return `column \`${this.field.name}\`: missing value`;
    this.valid.push(false);
    this.putNull();
    return null;
  }

  protected mismatch(v: unknown, why = ""): string {
    return `column \`${this.field.name}\`: expected ${this.field.type}, found ${kindOf(v)}${why}`;
  }

  cell(buf: Uint8Array, start: number, end: number, flags: number): string | null {
    return start === end ? this.nul() : this.textCell(cellText(buf, start, end, flags));
  }

  /** A quoted empty field (`""`) is a null for every type but text. */
  protected textCell(text: string): string | null {
    return text === "" ? this.nul() : this.value(text);
  }

  abstract value(v: unknown): string | null;
  protected abstract putNull(): void;
  abstract truncate(n: number): void;
  abstract finish(): Data;
}

const TWO32 = 4294967296;
const INT_TEXT = /^[+-]?\d+$/;

/** Integers of every width; 64-bit ones stored as two 32-bit words to avoid BigInt. */
class IntBuilder extends Base {
  #words: Int32Array;
  #wide: boolean;
  #min: number;
  #max: number;
  #bigMin: bigint;
  #bigMax: bigint;

  constructor(field: Field, capacity: number) {
    super(field, capacity);
    const t = field.type as IntType;
    this.#wide = t.bitWidth === 64;
    this.#words = new Int32Array(this.#wide ? 2 * capacity : capacity);
    const bits = BigInt(t.bitWidth);
    this.#bigMin = t.isSigned ? -(1n << (bits - 1n)) : 0n;
    this.#bigMax = t.isSigned ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
    this.#min = Number(this.#bigMin);
    this.#max = Number(this.#bigMax);
  }

  protected putNull(): void {
    this.#put(0);
  }

  #put(n: number): void {
    const i = this.valid.length - 1;
    if (this.#wide) {
      if (2 * i + 2 > this.#words.length) this.#words = grown(this.#words, 2 * i + 2);
      this.#words[2 * i] = n >>> 0;
      this.#words[2 * i + 1] = Math.floor(n / TWO32) | 0;
    } else {
      if (i >= this.#words.length) this.#words = grown(this.#words, i + 1);
      this.#words[i] = n;
    }
  }

  #putBig(b: bigint): void {
    const i = this.valid.length - 1;
    if (2 * i + 2 > this.#words.length) this.#words = grown(this.#words, 2 * i + 2);
    this.#words[2 * i] = Number(BigInt.asUintN(32, b)) | 0;
    this.#words[2 * i + 1] = Number(BigInt.asIntN(32, b >> 32n));
  }

  /** Stores a safe integer, or says why it is out of range. */
  #number(n: number, shown: unknown): string | null {
    if (n < this.#min || n > this.#max) return this.mismatch(shown, " (out of range)");
    this.valid.push(true);
    this.#put(n);
    return null;
  }

  #bigint(b: bigint, shown: unknown): string | null {
    if (b < this.#bigMin || b > this.#bigMax) return this.mismatch(shown, " (out of range)");
    if (b >= -9007199254740991n && b <= 9007199254740991n) return this.#number(Number(b), shown);
    this.valid.push(true);
    this.#putBig(b);
    return null;
  }

  #text(text: string): string | null {
    const t = text.trim();
    if (!INT_TEXT.test(t)) return this.mismatch(text);
    const digits = t.length - (t[0] === "-" || t[0] === "+" ? 1 : 0);
    return digits <= 15 ? this.#number(Number(t), text) : this.#bigint(BigInt(t), text);
  }

  override cell(buf: Uint8Array, start: number, end: number, flags: number): string | null {
    if (start === end) return this.nul();
    if (flags !== 0) return this.textCell(cellText(buf, start, end, flags));
    let i = start;
    let e = end;
    while (i < e && isSpace(buf[i])) i++;
    while (e > i && isSpace(buf[e - 1])) e--;
    let neg = false;
    if (buf[i] === 45 || buf[i] === 43) neg = buf[i++] === 45;
    if (i === e || e - i > 15) return this.#text(cellText(buf, start, end, flags));
    let n = 0;
    for (; i < e; i++) {
      const d = buf[i] - 48;
      if (d < 0 || d > 9) return this.mismatch(cellText(buf, start, end, flags));
      n = n * 10 + d;
    }
    const v = neg ? -n : n;
    if (v < this.#min || v > this.#max) {
      return this.mismatch(utf8.decode(buf.subarray(start, end)), " (out of range)");
    }
    this.valid.push(true);
    this.#put(v);
    return null;
  }

  value(v: unknown): string | null {
    if (v === null || v === undefined) return this.nul();
    if (typeof v === "bigint") return this.#bigint(v, v);
    if (typeof v === "number") {
      if (!Number.isInteger(v)) return this.mismatch(v);
      return Number.isSafeInteger(v) ? this.#number(v, v) : this.#bigint(BigInt(v), v);
    }
    if (typeof v === "string") return this.#text(v);
    return this.mismatch(v);
  }

  truncate(n: number): void {
    this.valid.truncate(n);
  }

  finish(): Data {
    const t = this.field.type as IntType;
    const n = this.valid.length;
    const words = (this.#words.buffer as ArrayBuffer).slice(0, n * (this.#wide ? 8 : 4));
    const Ctor = t.ArrayType as unknown as { from(a: ArrayLike<number>): ArrayBufferView };
    const data = this.#wide
      ? new (t.ArrayType as unknown as new (b: ArrayBuffer) => ArrayBufferView)(words)
      : t.bitWidth === 32 && t.isSigned
      ? new Int32Array(words)
      : Ctor.from(new Int32Array(words));
    return makeData({
      type: t,
      length: n,
      nullCount: this.valid.nulls,
      nullBitmap: this.valid.bitmap(),
      data: data as never,
    });
  }
}

const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
const FLOAT_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const FLOAT_WORDS = /^[+-]?(inf|infinity|nan)$/i;
const FLOAT32_MAX = 3.4028234663852886e38;

/** float32 and float64. Simple decimals take Clinger's exact fast path. */
class FloatBuilder extends Base {
  #values: Float64Array;
  #max: number;

  constructor(field: Field, capacity: number) {
    super(field, capacity);
    this.#values = new Float64Array(capacity);
    this.#max = (field.type as FloatType).precision === 1 ? FLOAT32_MAX : Number.MAX_VALUE;
  }

  protected putNull(): void {
    this.#put(0);
  }

  #put(n: number): void {
    const i = this.valid.length - 1;
    if (i >= this.#values.length) this.#values = grown(this.#values, i + 1);
    this.#values[i] = n;
  }

  #number(n: number, shown: unknown): string | null {
    if (Number.isFinite(n) && Math.abs(n) > this.#max) {
      return this.mismatch(shown, " (out of range)");
    }
    this.valid.push(true);
    this.#put(n);
    return null;
  }

  #text(text: string): string | null {
    const t = text.trim();
    if (FLOAT_TEXT.test(t)) return this.#number(Number(t), text);
    if (!FLOAT_WORDS.test(t)) return this.mismatch(text);
    const lower = t.toLowerCase();
    return this.#number(
      lower.includes("nan") ? NaN : lower.startsWith("-") ? -Infinity : Infinity,
      text,
    );
  }

  override cell(buf: Uint8Array, start: number, end: number, flags: number): string | null {
    if (start === end) return this.nul();
    if (flags !== 0) return this.textCell(cellText(buf, start, end, flags));
    let i = start;
    let neg = false;
    if (buf[i] === 45 || buf[i] === 43) neg = buf[i++] === 45;
    let m = 0;
    let digits = 0;
    let frac = -1;
    for (; i < end; i++) {
      const c = buf[i];
      if (c === 46 && frac < 0) frac = 0;
      else if (c >= 48 && c <= 57) {
        m = m * 10 + (c - 48);
        digits++;
        if (frac >= 0) frac++;
      } else break;
    }
    if (i === end && digits > 0 && digits <= 15) {
      const n = frac > 0 ? m / POW10[frac] : m;
      return this.#number(neg ? -n : n, null);
    }
    return this.#text(utf8.decode(buf.subarray(start, end)));
  }

  value(v: unknown): string | null {
    if (v === null || v === undefined) return this.nul();
    if (typeof v === "number") return this.#number(v, v);
    if (typeof v === "bigint") {
      const n = Number(v);
      return BigInt(n) === v ? this.#number(n, v) : this.mismatch(v, " (not exact as a float)");
    }
    if (typeof v === "string") return this.#text(v);
    return this.mismatch(v);
  }

  truncate(n: number): void {
    this.valid.truncate(n);
  }

  finish(): Data {
    const t = this.field.type as FloatType;
    const n = this.valid.length;
    const values = this.#values.subarray(0, n);
    return makeData({
      type: t,
      length: n,
      nullCount: this.valid.nulls,
      nullBitmap: this.valid.bitmap(),
      data: (t.precision === 1 ? Float32Array.from(values) : values.slice()) as never,
    });
  }
}

class BoolBuilder extends Base {
  #values = new Uint8Array(this.capacity);

  protected putNull(): void {
    this.#put(false);
  }

  #put(b: boolean): void {
    const i = this.valid.length - 1;
    if (i >= this.#values.length) this.#values = grown(this.#values, i + 1);
    this.#values[i] = b ? 1 : 0;
  }

  value(v: unknown): string | null {
    if (v === null || v === undefined) return this.nul();
    let b: boolean;
    if (typeof v === "boolean") b = v;
    else {
      const t = String(v).trim().toLowerCase();
      if (t === "true" || t === "1") b = true;
      else if (t === "false" || t === "0") b = false;
      else return this.mismatch(v);
    }
    this.valid.push(true);
    this.#put(b);
    return null;
  }

  truncate(n: number): void {
    this.valid.truncate(n);
  }

  finish(): Data {
    const n = this.valid.length;
    const bits = new Uint8Array((n + 7) >> 3);
    for (let i = 0; i < n; i++) if (this.#values[i]) bits[i >> 3] |= 1 << (i & 7);
    return makeData({
      type: this.field.type,
      length: n,
      nullCount: this.valid.nulls,
      nullBitmap: this.valid.bitmap(),
      data: bits,
    });
  }
}

/** JSON text with integers of any size written exactly. */
export function jsonText(v: unknown): string {
  return JSON.stringify(v, (_k, x) => typeof x === "bigint" ? rawJson(x.toString()) : x);
}

/** `JSON.rawJSON` (V8 has it; TypeScript's lib does not yet). */
export const rawJson = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** UTF-8 text: CSV bytes are copied as they are (the reader checked they are valid UTF-8). */
class Utf8Builder extends Base {
  #offsets = new Int32Array(this.capacity + 1);
  #bytes = new Uint8Array(this.capacity * 16);

  #end(): number {
    return this.#offsets[this.valid.length - 1];
  }

  #room(extra: number): void {
    const n = this.valid.length + 1;
    if (n > this.#offsets.length) this.#offsets = grown(this.#offsets, n);
    const bytes = this.#end() + extra;
    if (bytes > this.#bytes.length) this.#bytes = grown(this.#bytes, bytes);
  }

  protected putNull(): void {
    this.#room(0);
    this.#offsets[this.valid.length] = this.#end();
  }

  override cell(buf: Uint8Array, start: number, end: number, flags: number): string | null {
    if (start === end) return this.nul();
    if (flags & MESSY) return this.value(cellText(buf, start, end, flags));
    this.valid.push(true);
    this.#room(end - start);
    let at = this.#end();
    if (flags & ESCAPED) {
      for (let i = start + 1; i < end - 1; i++) {
        this.#bytes[at++] = buf[i];
        if (buf[i] === QUOTE) i++;
      }
    } else {
      const from = flags & QUOTED ? start + 1 : start;
      const to = flags & QUOTED ? end - 1 : end;
      // Short fields are copied by hand: a subarray per cell costs more than the copy.
      if (to - from < 32) { for (let i = from; i < to; i++) this.#bytes[at++] = buf[i]; }
      else {
        this.#bytes.set(buf.subarray(from, to), at);
        at += to - from;
      }
    }
    this.#offsets[this.valid.length] = at;
    return null;
  }

  value(v: unknown): string | null {
    if (v === null || v === undefined) return this.nul();
    const text = typeof v === "string"
      ? v
      : typeof v === "bigint"
      ? v.toString()
      : typeof v === "object"
      ? jsonText(v)
      : String(v);
    this.valid.push(true);
    this.#room(text.length * 3);
    const at = this.#end();
    const { written } = encoder.encodeInto(text, this.#bytes.subarray(at));
    this.#offsets[this.valid.length] = at + written;
    return null;
  }

  truncate(n: number): void {
    this.valid.truncate(n);
  }

  finish(): Data {
    const n = this.valid.length;
    return makeData({
      type: this.field.type,
      length: n,
      nullCount: this.valid.nulls,
      nullBitmap: this.valid.bitmap(),
      valueOffsets: this.#offsets.slice(0, n + 1),
      data: this.#bytes.slice(0, this.#offsets[n]),
    });
  }
}

/** Every other type (dates, timestamps, lists, ...): through `coerce` and `vectorFromArray`. */
class ValueBuilder extends Base {
  #values: unknown[] = [];

  protected putNull(): void {
    this.#values.push(null);
  }

  value(v: unknown): string | null {
    if (v === null || v === undefined) return this.nul();
    try {
      const c = coerce(v, this.field.type, this.field.name);
      this.valid.push(true);
      this.#values.push(c);
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }

  truncate(n: number): void {
    this.valid.truncate(n);
    this.#values.length = Math.min(this.#values.length, n);
  }

  finish(): Data {
    return vectorFromArray(this.#values, this.field.type as DataType).data[0];
  }
}

/** A builder for `field` sized for `capacity` rows, its storage chosen by the Arrow type. */
export function columnBuilder(field: Field, capacity: number): ColumnBuilder {
  const rows = Math.max(1, capacity);
  switch (field.type.typeId) {
    case Type.Int:
      return new IntBuilder(field, rows);
    case Type.Float:
      return (field.type as FloatType).precision === 0
        ? new ValueBuilder(field, rows)
        : new FloatBuilder(field, rows);
    case Type.Bool:
      return new BoolBuilder(field, rows);
    case Type.Utf8:
      return new Utf8Builder(field, rows);
    default:
      return new ValueBuilder(field, rows);
  }
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

function safeInt(text: string): boolean {
  return Number.isSafeInteger(Number(text));
}

function fitsInt64(text: string): boolean {
  return text.length < 19 || (BigInt(text) >= INT64_MIN && BigInt(text) <= INT64_MAX);
}

function primitive(name: string, type: "int64" | "float64" | "bool" | "utf8"): ArrowField {
  return { name, type: { kind: "primitive", name: type }, nullable: true };
}

/**
 * The type a CSV column's sample suggests, never one that would change a value: integers
 * that fit int64 are int64 (beyond 2^53 too), decimals float64 (unless an integer among them
 * is beyond 2^53), anything wider or else text.
 */
export function inferCsvField(name: string, texts: string[]): ArrowField {
  const present = texts.map((t) => t.trim()).filter((t) => t !== "");
  const all = (ok: (t: string) => boolean) => present.length > 0 && present.every(ok);
  if (all((t) => INT_TEXT.test(t) && fitsInt64(t))) return primitive(name, "int64");
  // An integer a double cannot hold exactly keeps the column text.
  const exactFloat = (t: string) => FLOAT_TEXT.test(t) && !(INT_TEXT.test(t) && !safeInt(t));
  if (all(exactFloat)) return primitive(name, "float64");
  if (all((t) => t === "true" || t === "false")) return primitive(name, "bool");
  return primitive(name, "utf8");
}

/**
 * The type a JSON column's sample suggests, by JSON type: integers (exact, see `parseJsonLine`)
 * that fit int64 are int64, numbers float64 unless an integer would lose digits, booleans bool,
 * anything else (strings, objects, mixed) text.
 */
export function inferJsonField(name: string, values: unknown[]): ArrowField {
  const present = values.filter((v) => v !== null && v !== undefined);
  const all = (ok: (v: unknown) => boolean) => present.length > 0 && present.every(ok);
  const int = (v: unknown) =>
    (typeof v === "number" && Number.isSafeInteger(v)) ||
    (typeof v === "bigint" && v >= INT64_MIN && v <= INT64_MAX);
  if (all(int)) return primitive(name, "int64");
  if (all((v) => typeof v === "number")) return primitive(name, "float64");
  if (all((v) => typeof v === "boolean")) return primitive(name, "bool");
  return primitive(name, "utf8");
}
