/**
 * The hash table under every key comparison of the engine: values to dense codes 0, 1, 2,
 * ... in insertion order. Numbers hash their float64 bits (0 and -0 are one key, every NaN
 * is one key, as DuckDB's GROUP BY and join treat them); text hashes its UTF-8 bytes where
 * they lie. This file must never call two values equal that SQL would not.
 */
import { viewOf } from "./_utf8.ts";

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

/** The hash of `b[s, e)`, reading four bytes at a time through `dv` (a view of `b`). */
function hashView(dv: DataView, b: Uint8Array, s: number, e: number): number {
  let h = 0x811c9dc5 ^ (e - s);
  let k = s;
  for (; k + 4 <= e; k += 4) {
    h = Math.imul(h ^ dv.getInt32(k, true), 0x01000193);
    h ^= h >>> 15;
  }
  for (; k < e; k++) h = Math.imul(h ^ b[k], 0x01000193);
  return mix(h);
}

/** `hashView` for one value, byte by byte (a DataView per value would cost more). */
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

/** Whether two UTF-8 byte ranges hold the same bytes (lengths first: most misses end there). */
function equalBytes(x: Uint8Array, xs: number, xe: number, y: Uint8Array, ys: number, ye: number) {
  const len = xe - xs;
  if (len !== ye - ys) return false;
  for (let k = 0; k < len; k++) if (x[xs + k] !== y[ys + k]) return false;
  return true;
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
    if (this.size * 4 > slots.length) this.#grow();
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
      if (hashes[c] === h && equalBytes(own!, starts[c], ends[c], b, s, e)) return c;
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
    if (this.size * 4 > slots.length) this.#grow();
    return c;
  }

  /**
   * `text` for every row of a UTF-8 column at once (rows whose `valid` byte is 0 get the
   * NULL code when `nullIsKey`, else -1), with the table's arrays held in locals: the
   * per-row method call and field loads cost as much as the hashing for short keys.
   */
  texts(
    offsets: Int32Array,
    b: Uint8Array,
    valid: Uint8Array | null,
    n: number,
    insert: boolean,
    nullIsKey: boolean,
    out: Int32Array,
  ): void {
    if (insert && n > 0) {
      if (this.#bytes !== null && this.#bytes !== b) {
        throw new Error("internal: a key table's text keys come from two columns");
      }
      this.#bytes = b;
    }
    let slots = this.#slots, mask = slots.length - 1;
    let starts = this.#starts, ends = this.#ends, hashes = this.#hashes;
    const own = this.#bytes ?? b;
    // Four bytes per read (a DataView read compiles to one unaligned load): half the cost
    // of byte-wise hashing and comparison for keys of a dozen bytes.
    const dv = viewOf(b), ownDv = own === b ? dv : viewOf(own);
    for (let i = 0; i < n; i++) {
      if (valid !== null && valid[i] === 0) {
        out[i] = nullIsKey ? this.null(insert) : -1;
        starts = this.#starts, ends = this.#ends, hashes = this.#hashes;
        continue;
      }
      const s = offsets[i], e = offsets[i + 1], len = e - s;
      const h = hashView(dv, b, s, e);
      let at = h & mask, code = -1;
      for (;;) {
        const x = slots[at];
        if (x === 0) break;
        const c = x - 1;
        if (hashes[c] === h && ends[c] - starts[c] === len) {
          const o = starts[c];
          let diff = 0, q = 0;
          for (; q + 4 <= len; q += 4) {
            diff |= ownDv.getInt32(o + q, true) ^ dv.getInt32(s + q, true);
          }
          for (; q < len; q++) diff |= own[o + q] ^ b[s + q];
          if (diff === 0) {
            code = c;
            break;
          }
        }
        at = (at + 1) & mask;
      }
      if (code < 0 && insert) {
        code = this.#newCode(h);
        starts = this.#starts, ends = this.#ends, hashes = this.#hashes;
        starts[code] = s;
        ends[code] = e;
        slots[at] = code + 1;
        if (this.size * 4 > slots.length) {
          this.#grow();
          slots = this.#slots, mask = slots.length - 1;
        }
      }
      out[i] = code;
    }
  }

  /** The code NULL gets when it is a key of its own. */
  null(insert: boolean): number {
    if (this.nullCode < 0 && insert) this.nullCode = this.#newCode(0);
    return this.nullCode;
  }
}

/**
 * A hash of each row's values in `cols` (NULL hashes as 0; numbers and text as the key table
 * keys them, so rows that group or join together hash alike): for partitioning rows by key.
 */
export function rowHashes(
  cols: {
    nums: ArrayLike<number> | null;
    utf8?: { offsets: Int32Array; bytes: Uint8Array } | null;
    valid: Uint8Array | null;
    scalar: boolean;
  }[],
  n: number,
): Int32Array {
  const out = new Int32Array(n);
  for (const c of cols) {
    const dv = c.utf8 ? viewOf(c.utf8.bytes) : null;
    for (let i = 0; i < n; i++) {
      const r = c.scalar ? 0 : i;
      let h = 0;
      if (!c.valid || c.valid[r] === 1) {
        if (c.utf8) h = hashView(dv!, c.utf8.bytes, c.utf8.offsets[r], c.utf8.offsets[r + 1]);
        else h = hashNumber(normal(c.nums![r]));
      }
      out[i] = mix(Math.imul(out[i], 0x9e3779b1) ^ h);
    }
  }
  return out;
}
