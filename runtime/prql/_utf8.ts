/**
 * UTF-8 text as Arrow keeps it (offsets into one byte buffer), and what the engine does with
 * it without building JS strings: byte-wise comparison (byte order is code point order) and
 * conversion to and from JS strings for the kernels that need them. This file must never
 * depend on the engine's column or hashing code.
 */

/** Text as Arrow holds it: row i is `bytes[offsets[i] .. offsets[i + 1])` (offsets may not start at 0). */
export interface Utf8 {
  offsets: Int32Array;
  bytes: Uint8Array;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Decodes bytes [start, end); short ASCII strings skip TextDecoder's call overhead. */
export function decodeUtf8(bytes: Uint8Array, start: number, end: number): string {
  if (end - start > 32) return decoder.decode(bytes.subarray(start, end));
  let s = "";
  for (let k = start; k < end; k++) {
    const b = bytes[k];
    if (b >= 0x80) return decoder.decode(bytes.subarray(start, end));
    s += String.fromCharCode(b);
  }
  return s;
}

/** Encodes strings as UTF-8 offsets and bytes, without a per-value builder. */
export function encodeUtf8(strs: (string | null)[], valid: Uint8Array | null, n: number): Utf8 {
  const offsets = new Int32Array(n + 1);
  let bytes = new Uint8Array(Math.max(16, n * 8));
  let at = 0;
  for (let i = 0; i < n; i++) {
    const v = valid && !valid[i] ? null : strs[i];
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

/** Compares two UTF-8 byte ranges; byte order is code point order. */
export function compareBytes(
  x: Uint8Array,
  xs: number,
  xe: number,
  y: Uint8Array,
  ys: number,
  ye: number,
): number {
  const len = Math.min(xe - xs, ye - ys);
  for (let k = 0; k < len; k++) {
    const a = x[xs + k], b = y[ys + k];
    if (a !== b) return a < b ? -1 : 1;
  }
  return xe - xs - (ye - ys);
}

/** A DataView over exactly the bytes of `b`. */
export function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Copies `src[s, e)` to `dst[at..]` (`sv`, `dv`: views of `src` and `dst`). Short ranges go
 * four bytes per read; `set` would need a `subarray` object per range, whose allocation
 * costs more than the copy for the few dozen bytes a row or a run of rows holds.
 */
export function copyBytes(
  src: Uint8Array,
  sv: DataView,
  s: number,
  e: number,
  dst: Uint8Array,
  dv: DataView,
  at: number,
): void {
  const len = e - s;
  if (len > 256) {
    dst.set(src.subarray(s, e), at);
    return;
  }
  let k = 0;
  for (; k + 4 <= len; k += 4) dv.setInt32(at + k, sv.getInt32(s + k, true), true);
  for (; k < len; k++) dst[at + k] = src[s + k];
}
