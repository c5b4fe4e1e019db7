/**
 * CSV output straight from Arrow buffers: integers, floats and text are formatted from the
 * column's typed arrays into one byte buffer, row after row, without building row objects or
 * JS strings for text. It exists because writing was the slow half of `file.read` →
 * `file.write`. A field holding `,`, `"`, CR or LF is quoted with its quotes doubled, and an
 * empty string is written `""` so that it reads back as an empty string, not a null: what
 * `_csv.ts` reads back must equal what was written.
 */
import { type Data, type Float, type Int, makeVector, type Table, Type } from "apache-arrow";
import { jsonValue } from "./_arrow.ts";

const COMMA = 44;
const QUOTE = 34;
const LF = 10;
const CR = 13;
const encoder = new TextEncoder();

/** A growing byte buffer the writer appends to; its owner drains `buf[0, at)` and resets. */
export class ByteBuffer {
  buf: Uint8Array = new Uint8Array(1 << 16);
  at = 0;

  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.at + n, this.buf.length * 2));
    bigger.set(this.buf.subarray(0, this.at));
    this.buf = bigger;
  }

  ascii(s: string): void {
    this.room(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.at++] = s.charCodeAt(i);
  }

  /** Text bytes `src[from, to)`, quoted when they hold a separator, quote or line break. */
  field(src: Uint8Array, from: number, to: number): void {
    let special = from === to;
    for (let i = from; i < to && !special; i++) {
      const c = src[i];
      special = c === COMMA || c === QUOTE || c === LF || c === CR;
    }
    if (!special) {
      this.room(to - from);
      if (to - from < 32) { for (let i = from; i < to; i++) this.buf[this.at++] = src[i]; }
      else {
        this.buf.set(src.subarray(from, to), this.at);
        this.at += to - from;
      }
      return;
    }
    this.room(2 * (to - from) + 2);
    this.buf[this.at++] = QUOTE;
    for (let i = from; i < to; i++) {
      if (src[i] === QUOTE) this.buf[this.at++] = QUOTE;
      this.buf[this.at++] = src[i];
    }
    this.buf[this.at++] = QUOTE;
  }

  text(s: string): void {
    const bytes = encoder.encode(s);
    this.field(bytes, 0, bytes.length);
  }

  /** Appends a safe integer's digits without making a string. */
  int(n: number): void {
    this.room(21);
    if (n < 0) {
      this.buf[this.at++] = 45;
      n = -n;
    }
    let end = this.at;
    for (let k = n; k >= 10; k = Math.floor(k / 10)) end++;
    this.at = end + 1;
    do {
      this.buf[end--] = 48 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
  }

  /** Appends `s` as UTF-8, unquoted. */
  utf8(s: string): void {
    this.room(s.length * 3);
    this.at += encoder.encodeInto(s, this.buf.subarray(this.at)).written;
  }
}

type CellWriter = (out: ByteBuffer, row: number) => void;

/** Appends the cell of `row` in `data` (a non-null value). */
function cellWriter(data: Data): CellWriter {
  const type = data.type;
  const values = data.values as unknown;
  switch (type.typeId) {
    case Type.Int: {
      const { bitWidth, isSigned } = type as Int;
      if (bitWidth < 64) {
        const v = values as Int32Array;
        return (out, i) => out.int(v[i]);
      }
      const big = values as BigInt64Array;
      const words = new Int32Array(big.buffer, big.byteOffset, big.length * 2);
      const signed = isSigned;
      return (out, i) => {
        const lo = words[2 * i], hi = words[2 * i + 1];
        if (hi === 0 && lo >= 0) out.int(lo);
        else if (signed && hi === -1 && lo < 0) out.int(lo);
        else out.ascii(String(big[i]));
      };
    }
    case Type.Float: {
      if ((type as Float).precision === 0) break;
      const v = values as Float64Array;
      return (out, i) => out.ascii(String(v[i]));
    }
    case Type.Utf8: {
      const offsets = data.valueOffsets as Int32Array;
      const bytes = values as Uint8Array;
      return (out, i) => out.field(bytes, offsets[i], offsets[i + 1]);
    }
  }
  // Every other type (bool, dates, lists, structs, ...) through Arrow's own accessors.
  const vector = makeVector(data);
  return (out, i) => {
    const v = jsonValue(vector.get(i));
    if (v === null || v === undefined) return;
    out.text(typeof v === "object" ? JSON.stringify(v) : String(v));
  };
}

/** Appends the header line for `names`. */
export function csvHeader(names: string[], out: ByteBuffer): void {
  names.forEach((n, c) => {
    if (c > 0) out.utf8(",");
    out.text(n);
  });
  out.room(1);
  out.buf[out.at++] = LF;
}

/** Appends the rows of `table` as CSV lines, columns in `names` order (matched by name). */
export function csvRows(table: Table, names: string[], out: ByteBuffer): void {
  for (const batch of table.batches) {
    const columns = names.map((n) => {
      const index = batch.schema.fields.findIndex((f) => f.name === n);
      return index < 0 ? null : batch.data.children[index];
    });
    const writers = columns.map((d) => d ? cellWriter(d) : null);
    for (let i = 0; i < batch.numRows; i++) {
      for (let c = 0; c < columns.length; c++) {
        if (c > 0) {
          out.room(1);
          out.buf[out.at++] = COMMA;
        }
        const d = columns[c];
        if (d && (d.nullCount === 0 || d.getValid(i))) writers[c]!(out, i);
      }
      out.room(1);
      out.buf[out.at++] = LF;
    }
  }
}
