/**
 * Dense integer codes for key values, the one way group-by, join, count_distinct and
 * partitioned take decide which rows hold equal keys (hashed in _hash.ts: no JS string is
 * ever built for a key). Several key columns fold pairwise into one code. Codes are numbered in order of first
 * appearance, which keeps groups in the order of their first row. This file must never
 * compare keys other than by value: two rows get the same code exactly when SQL would call
 * their keys equal (or, for grouping, both NULL).
 */
import { type Column, utf8Of } from "./_column.ts";
import { KeyTable } from "./_hash.ts";
import type { Utf8 } from "./_utf8.ts";

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
    table.texts(offsets, bytes, valid, n, insert, nullIsKey, out);
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
