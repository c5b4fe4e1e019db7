/**
 * Sorting for the engine: row permutations computed by a stable LSD radix sort over
 * order-preserving unsigned keys (numbers by their float64 or int32 bits, text by the rank
 * of its distinct values, compared as UTF-8 bytes), one sort key at a time from the last to
 * the first, so rows come out in key order and ties keep their input order. NULLs go last
 * in both directions and NaN is the greatest number, as in DuckDB. Row comparators serve the
 * places that look at few rows (top-k, min/max). This file must never order rows by
 * anything but their values and their input position.
 */
import { type Column, utf8Of } from "./_column.ts";
import { compareBytes } from "./_utf8.ts";
import { groupIds } from "./_keys.ts";

export interface SortKey {
  col: Column;
  desc: boolean;
}

/** Numbers in SQL order: NaN is greater than every other number and equal to itself. */
export function compareNumbers(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) return 0;
  return a !== a ? (b !== b ? 0 : 1) : -1;
}

/** Compares two rows of a column for sorting, NULLs last in both directions (DuckDB's default). */
export function rowComparator(col: Column, desc: boolean): (i: number, j: number) => number {
  const v = col.valid, sign = desc ? -1 : 1;
  const s = col.scalar ? 0 : 1;
  const nullOrder = (i: number, j: number) => {
    const av = v ? v[i * s] : 1, bv = v ? v[j * s] : 1;
    return av && bv ? 2 : av === bv ? 0 : av ? -1 : 1;
  };
  if (col.kind === "text") {
    const { offsets: o, bytes: b } = utf8Of(col);
    return (i, j) => {
      const z = nullOrder(i, j);
      if (z !== 2) return z;
      const p = i * s, q = j * s;
      return sign * compareBytes(b, o[p], o[p + 1], b, o[q], o[q + 1]);
    };
  }
  const x = col.nums!;
  return (i, j) => {
    const z = nullOrder(i, j);
    return z !== 2 ? z : sign * compareNumbers(x[i * s], x[j * s]);
  };
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** Ranks of a text column's rows: equal texts share a rank, ranks follow byte order. */
function textRanks(col: Column, n: number, rows: Int32Array): Uint32Array {
  const { offsets: o, bytes: b } = utf8Of(col);
  const { gid, first } = groupIds([{ ...col, valid: null }], n);
  const order = Int32Array.from(first.keys()).sort((x, y) => {
    const p = first[x], q = first[y];
    return compareBytes(b, o[p], o[p + 1], b, o[q], o[q + 1]);
  });
  const rank = new Uint32Array(first.length);
  for (let r = 0; r < order.length; r++) rank[order[r]] = r;
  const out = new Uint32Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = rank[gid[rows[i]]];
  return out;
}

/** Whether every value of `rows` is an integer in int32 range (the key then fits 32 bits). */
function fitsInt32(x: ArrayLike<number>, rows: Int32Array): boolean {
  if (x instanceof Int32Array || x instanceof Int16Array || x instanceof Int8Array) return true;
  if (x instanceof Uint8Array || x instanceof Uint16Array) return true;
  for (let i = 0; i < rows.length; i++) {
    const v = x[rows[i]];
    if ((v | 0) !== v) return false;
  }
  return true;
}

const BITS = 11, RADIX = 1 << BITS, MASK = RADIX - 1;

/**
 * Stable LSD radix sort of `rows` by the unsigned key `lo` (and `hi` above it when given),
 * 11 bits a pass, skipping passes in which every row has the same digit.
 */
function radixSort(rows: Int32Array, lo: Uint32Array, hi: Uint32Array | null): Int32Array {
  const n = rows.length;
  let tmpRows: Int32Array = new Int32Array(n);
  let curLo: Uint32Array = lo, curHi: Uint32Array | null = hi;
  let nextLo: Uint32Array = new Uint32Array(n);
  let nextHi: Uint32Array | null = hi ? new Uint32Array(n) : null;
  const digits = new Uint16Array(n);
  const count = new Int32Array(RADIX);
  for (let bit = 0; bit < (hi ? 64 : 32); bit += BITS) {
    count.fill(0);
    if (bit + BITS <= 32) {
      for (let i = 0; i < n; i++) count[digits[i] = (curLo[i] >>> bit) & MASK]++;
    } else if (bit >= 32) {
      const h = curHi!, shift = bit - 32;
      for (let i = 0; i < n; i++) count[digits[i] = (h[i] >>> shift) & MASK]++;
    } else {
      // The digit straddles the two words: its high bits come from `hi` (zero without one).
      const h = curHi, up = 32 - bit;
      for (let i = 0; i < n; i++) {
        count[digits[i] = ((curLo[i] >>> bit) | (h ? h[i] << up : 0)) & MASK]++;
      }
    }
    if (count[digits[0]] === n) continue;
    let sum = 0;
    for (let d = 0; d < RADIX; d++) {
      const c = count[d];
      count[d] = sum;
      sum += c;
    }
    if (nextHi) {
      const ch = curHi!;
      for (let i = 0; i < n; i++) {
        const at = count[digits[i]]++;
        tmpRows[at] = rows[i];
        nextLo[at] = curLo[i];
        nextHi[at] = ch[i];
      }
    } else {
      for (let i = 0; i < n; i++) {
        const at = count[digits[i]]++;
        tmpRows[at] = rows[i];
        nextLo[at] = curLo[i];
      }
    }
    [rows, tmpRows] = [tmpRows, rows];
    [curLo, nextLo] = [nextLo, curLo];
    [curHi, nextHi] = [nextHi, curHi];
  }
  return rows;
}

/** `rows` (a permutation of all rows) stably reordered by one key: valid rows by value, then NULLs. */
function sortBy(rows: Int32Array, key: SortKey): Int32Array {
  const { col, desc } = key;
  if (col.scalar) return rows;
  const v = col.valid;
  let valid = rows, nulls: Int32Array | null = null;
  if (v) {
    valid = rows.filter((r) => v[r] === 1);
    nulls = rows.filter((r) => v[r] === 0);
  }
  const m = valid.length;
  const flip = desc ? 0xffffffff : 0;
  let lo: Uint32Array, hi: Uint32Array | null = null;
  if (col.kind === "text") {
    lo = textRanks(col, rows.length, valid);
    for (let i = 0; i < m; i++) lo[i] ^= flip;
  } else {
    const x = col.nums!;
    lo = new Uint32Array(m);
    if (fitsInt32(x, valid)) {
      for (let i = 0; i < m; i++) lo[i] = ((x[valid[i]] ^ 0x80000000) ^ flip) >>> 0;
    } else {
      hi = new Uint32Array(m);
      for (let i = 0; i < m; i++) {
        const y = x[valid[i]];
        f64[0] = y === 0 ? 0 : y !== y ? NaN : y;
        const neg = u32[1] >>> 31;
        // Negative floats order by their inverted bits, others by their bits with the sign set.
        lo[i] = ((neg ? ~u32[0] : u32[0]) ^ flip) >>> 0;
        hi[i] = ((neg ? ~u32[1] : u32[1] | 0x80000000) ^ flip) >>> 0;
      }
    }
  }
  const sorted = m > 1 ? radixSort(valid === rows ? rows.slice() : valid, lo, hi) : valid;
  if (!nulls || nulls.length === 0) return sorted;
  const out = new Int32Array(rows.length);
  out.set(sorted);
  out.set(nulls, m);
  return out;
}

/** The permutation that sorts `n` rows by `keys` (first key most significant), stable. */
export function sortIndex(n: number, keys: SortKey[]): Int32Array {
  let rows: Int32Array = new Int32Array(n);
  for (let i = 0; i < n; i++) rows[i] = i;
  for (let k = keys.length - 1; k >= 0; k--) rows = sortBy(rows, keys[k]);
  return rows;
}

/** The first `k` rows in key order (ties by position), sorted: a bounded heap. */
export function topK(n: number, keys: SortKey[], k: number): Int32Array {
  if (k >= n / 4) return sortIndex(n, keys).subarray(0, Math.min(k, n));
  const cmps = keys.map((s) => rowComparator(s.col, s.desc));
  const cmp = (i: number, j: number) => {
    for (const c of cmps) {
      const r = c(i, j);
      if (r !== 0) return r;
    }
    return i - j;
  };
  // One numeric key without NULLs: most rows are rejected by one comparison with the root's
  // value (NaN sorts as the greatest number), without the comparator's calls.
  const one = keys.length === 1 && keys[0].col.kind !== "text" && !keys[0].col.scalar &&
    !keys[0].col.valid;
  const x = one ? keys[0].col.nums : null, desc = keys[0]?.desc;
  // A max-heap of the best k so far: its root is the worst of them.
  const heap = new Int32Array(k);
  let size = 0;
  const down = (at: number) => {
    for (;;) {
      const l = 2 * at + 1, r = l + 1;
      let top = at;
      if (l < size && cmp(heap[l], heap[top]) > 0) top = l;
      if (r < size && cmp(heap[r], heap[top]) > 0) top = r;
      if (top === at) return;
      [heap[at], heap[top]] = [heap[top], heap[at]];
      at = top;
    }
  };
  for (let i = 0; i < n; i++) {
    if (size < k) {
      let at = size++;
      heap[at] = i;
      while (at > 0) {
        const p = (at - 1) >> 1;
        if (cmp(heap[at], heap[p]) <= 0) break;
        [heap[at], heap[p]] = [heap[p], heap[at]];
        at = p;
      }
    } else if (k > 0) {
      if (x) {
        // Row i comes after every row in the heap, so only a strictly better value enters.
        const v = x[i], r = x[heap[0]];
        if (!(desc ? v > r || (v !== v && r === r) : v < r || (r !== r && v === v))) continue;
      }
      if (cmp(i, heap[0]) < 0) {
        heap[0] = i;
        down(0);
      }
    }
  }
  return heap.subarray(0, size).sort(cmp);
}
