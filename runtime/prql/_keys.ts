/**
 * Dense integer codes for key values, the one way group-by, join, count_distinct and
 * partitioned take decide which rows hold equal keys. Numbers hash their float64 bits (0 and
 * -0 are one key, every NaN is one key, as DuckDB's GROUP BY and join treat them); text
 * hashes its UTF-8 bytes where Arrow keeps them, so no JS string is ever built for a key.
 * Several key columns fold pairwise into one code. Codes are numbered in order of first
 * appearance, which keeps groups in the order of their first row. This file must never
 * compare keys other than by value: two rows get the same code exactly when SQL would call
 * their keys equal (or, for grouping, both NULL).
 */
import { type Column, compareBytes, type Utf8, utf8Of } from "./_column.ts";

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** The value a number is keyed by: -0 is 0 and every NaN is the same NaN. */
function normal(v: number): number {
  return v === 0 ? 0 : v !== v ? NaN : v;
}

function hashNumber(v: number): number {
  f64[0] = v;
  return mix(u32[0] ^ Math.imul(u32[1], 0x9e3779b1));
}

function hashBytes(b: Uint8Array, s: number, e: number): number {
  let h = 0x811c9dc5 ^ (e - s);
  let k = s;
  for (; k + 4 <= e; k += 4) {
    h = Math.imul(h ^ (b[k] | (b[k + 1] << 8) | (b[k + 2] << 16) | (b[k + 3] << 24)), 0x01000193);
    h ^= h >>> 15;
  }
  for (; k < e; k++) h = Math.imul(h ^ b[k], 0x01000193);
  return mix(h);
}

/**
 * An open-addressing hash table from key values to codes 0, 1, 2, ... in insertion order.
 * Text keys point into the bytes of the one column that inserted them.
 */
export class KeyTable {
  size = 0;
  /** The code of NULL when NULL is a key of its own (grouping), else -1. */
  nullCode = -1;
  #slots = new Int32Array(16);
  #hashes = new Int32Array(8);
  #nums = new Float64Array(8);
  #starts = new Int32Array(8);
  #ends = new Int32Array(8);
  #bytes: Uint8Array | null = null;

  #grow(): void {
    const cap = this.#slots.length * 2, mask = cap - 1;
    const slots = new Int32Array(cap);
    for (let c = 0; c < this.size; c++) {
      if (c === this.nullCode) continue; // NULL is found by `null()`, never by value
      let at = this.#hashes[c] & mask;
      while (slots[at] !== 0) at = (at + 1) & mask;
      slots[at] = c + 1;
    }
    this.#slots = slots;
  }

  #newCode(h: number): number {
    const c = this.size++;
    if (c === this.#hashes.length) {
      const grow = <T extends Int32Array | Float64Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.#hashes = grow(this.#hashes);
      this.#nums = grow(this.#nums);
      this.#starts = grow(this.#starts);
      this.#ends = grow(this.#ends);
    }
    this.#hashes[c] = h;
    return c;
  }

  /** The code of number `v`; inserts it when absent and `insert` is set, else returns -1. */
  number(v: number, insert: boolean): number {
    v = normal(v);
    const h = hashNumber(v);
    const slots = this.#slots, mask = slots.length - 1, nums = this.#nums;
    let at = h & mask;
    for (;;) {
      const s = slots[at];
      if (s === 0) break;
      const k = nums[s - 1];
      if (k === v || (k !== k && v !== v)) return s - 1;
      at = (at + 1) & mask;
    }
    if (!insert) return -1;
    const c = this.#newCode(h);
    this.#nums[c] = v;
    slots[at] = c + 1;
    if (this.size * 2 > slots.length) this.#grow();
    return c;
  }

  /** The code of the text in `b[s, e)`; inserting rows must all come from the same bytes. */
  text(b: Uint8Array, s: number, e: number, insert: boolean): number {
    const h = hashBytes(b, s, e);
    const slots = this.#slots, mask = slots.length - 1;
    const own = this.#bytes, starts = this.#starts, ends = this.#ends, hashes = this.#hashes;
    let at = h & mask;
    for (;;) {
      const x = slots[at];
      if (x === 0) break;
      const c = x - 1;
      if (hashes[c] === h && compareBytes(own!, starts[c], ends[c], b, s, e) === 0) return c;
      at = (at + 1) & mask;
    }
    if (!insert) return -1;
    if (this.#bytes !== null && this.#bytes !== b) {
      throw new Error("internal: a key table's text keys come from two columns");
    }
    this.#bytes = b;
    const c = this.#newCode(h);
    this.#starts[c] = s;
    this.#ends[c] = e;
    slots[at] = c + 1;
    if (this.size * 2 > slots.length) this.#grow();
    return c;
  }

  /** The code NULL gets when it is a key of its own. */
  null(insert: boolean): number {
    if (this.nullCode < 0 && insert) this.nullCode = this.#newCode(0);
    return this.nullCode;
  }
}

/**
 * Codes of one column's rows in `table`. NULL rows get -1, or NULL's own code when
 * `nullIsKey`; with `insert` unset, values the table lacks get -1 too.
 */
function columnCodes(
  table: KeyTable,
  col: Column,
  n: number,
  insert: boolean,
  nullIsKey: boolean,
): Int32Array {
  const out = new Int32Array(n);
  const valid = col.valid;
  if (col.scalar) {
    const one = columnCodes(table, { ...col, scalar: false }, 1, insert, nullIsKey)[0];
    return out.fill(one);
  }
  if (col.kind === "text") {
    const { offsets, bytes }: Utf8 = utf8Of(col);
    for (let i = 0; i < n; i++) {
      out[i] = valid && !valid[i]
        ? (nullIsKey ? table.null(insert) : -1)
        : table.text(bytes, offsets[i], offsets[i + 1], insert);
    }
    return out;
  }
  const nums = col.nums!;
  for (let i = 0; i < n; i++) {
    out[i] = valid && !valid[i]
      ? (nullIsKey ? table.null(insert) : -1)
      : table.number(nums[i], insert);
  }
  return out;
}

/**
 * Codes for rows keyed by several columns: each column is coded in its own table, and the
 * codes fold pairwise through combination tables. `encode` with `insert` builds the tables
 * (group-by, a join's build side); without it, it looks keys up (a join's probe side).
 */
export class KeyEncoder {
  readonly #columns: KeyTable[];
  readonly #pairs: KeyTable[];

  constructor(width: number, private readonly nullIsKey: boolean) {
    this.#columns = Array.from({ length: width }, () => new KeyTable());
    this.#pairs = Array.from({ length: Math.max(0, width - 1) }, () => new KeyTable());
  }

  /** How many distinct keys the tables hold. */
  get count(): number {
    return (this.#pairs.at(-1) ?? this.#columns[0]).size;
  }

  encode(cols: Column[], n: number, insert: boolean): Int32Array {
    const codes = columnCodes(this.#columns[0], cols[0], n, insert, this.nullIsKey);
    for (let k = 1; k < cols.length; k++) {
      const next = columnCodes(this.#columns[k], cols[k], n, insert, this.nullIsKey);
      const width = this.#columns[k].size, pairs = this.#pairs[k - 1];
      for (let i = 0; i < n; i++) {
        const a = codes[i], b = next[i];
        codes[i] = a < 0 || b < 0 ? -1 : pairs.number(a * width + b, insert);
      }
    }
    return codes;
  }
}

/** Group ids per row (NULL keys group together) and each group's first row. */
export function groupIds(cols: Column[], n: number): { gid: Int32Array; first: Int32Array } {
  const enc = new KeyEncoder(cols.length, true);
  const gid = enc.encode(cols, n, true);
  const first = new Int32Array(enc.count).fill(-1);
  for (let i = 0; i < n; i++) if (first[gid[i]] < 0) first[gid[i]] = i;
  return { gid, first };
}

/** Per group, how many distinct non-NULL values of `col` its rows hold. */
export function countDistinct(col: Column, gid: Int32Array, groups: number, n: number) {
  const values = new KeyTable();
  const codes = columnCodes(values, col, n, true, false);
  const pairs = new KeyTable();
  const count = new Float64Array(groups);
  for (let i = 0; i < n; i++) {
    const c = codes[i];
    if (c < 0) continue;
    const before = pairs.size;
    pairs.number(gid[i] * values.size + c, true);
    if (pairs.size > before) count[gid[i]]++;
  }
  return count;
}

/**
 * The pairs of an equi-join: for each left row in order, the right rows with an equal key
 * (none for a NULL key), in right order.
 */
export function hashJoin(
  leftKeys: Column[],
  ln: number,
  rightKeys: Column[],
  rn: number,
): { L: Int32Array; R: Int32Array } {
  const enc = new KeyEncoder(leftKeys.length, false);
  const rc = enc.encode(rightKeys, rn, true);
  const lc = enc.encode(leftKeys, ln, false);
  // Right rows bucketed by code (a counting sort keeps them in right order).
  const start = new Int32Array(enc.count + 1);
  for (let b = 0; b < rn; b++) if (rc[b] >= 0) start[rc[b] + 1]++;
  for (let c = 0; c < enc.count; c++) start[c + 1] += start[c];
  const rows = new Int32Array(start[enc.count]);
  const fill = start.slice(0, enc.count);
  for (let b = 0; b < rn; b++) if (rc[b] >= 0) rows[fill[rc[b]]++] = b;
  let total = 0;
  for (let a = 0; a < ln; a++) if (lc[a] >= 0) total += start[lc[a] + 1] - start[lc[a]];
  const L = new Int32Array(total), R = new Int32Array(total);
  let p = 0;
  for (let a = 0; a < ln; a++) {
    const c = lc[a];
    if (c < 0) continue;
    for (let k = start[c]; k < start[c + 1]; k++) (L[p] = a, R[p++] = rows[k]);
  }
  return { L, R };
}
