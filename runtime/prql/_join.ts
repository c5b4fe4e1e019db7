/**
 * The pairs of an equi-join, computed without a JS object per row: the build (right) side's
 * keys become dense codes, the probe (left) side's rows look theirs up, and matches come out
 * as two index vectors. Two fast paths carry the common lookup join (many rows against a
 * dimension keyed by a small integer id): one integer key over a dense range is coded by
 * `value - min` (no hashing, one 4-byte read per probe), and a build side with unique keys
 * pairs each left row with at most one right row, so when every left row matches exactly
 * once the left side needs no gather at all (`L` is null). This file must never pair rows
 * whose keys SQL would not call equal: NULL never joins, NaN joins NaN, -0 joins 0.
 */
import type { Column } from "./_column.ts";
import { KeyEncoder } from "./_keys.ts";

/**
 * For each left row in order, the right rows with an equal key, in right order: left row
 * `L[p]` pairs with right row `R[p]`. `L` null means the identity (left row p pairs with
 * `R[p]`, every left row exactly once).
 */
export interface JoinPairs {
  L: Int32Array | null;
  R: Int32Array;
}

/** A dense range as wide as this many build rows (or 64k) is coded directly. */
const DIRECT_SPREAD = 4;
const DIRECT_MIN = 1 << 16;

/**
 * Codes of the build rows as `value - min` when the one key column holds only integers in
 * the int32 range spanning a range small enough for a table indexed by it; null otherwise.
 */
function directRange(col: Column, n: number): { min: number; range: number } | null {
  if (col.scalar || col.kind === "text" || col.kind === "bool" || n === 0) return null;
  const x = col.nums!, valid = col.valid;
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < n; i++) {
    if (valid && !valid[i]) continue;
    const v = x[i];
    // NaN and fractions fail `(v | 0) === v`: they take the hashed path.
    if ((v | 0) !== v) return null;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min > max) return null;
  const range = max - min + 1;
  return range <= Math.max(n * DIRECT_SPREAD, DIRECT_MIN) ? { min, range } : null;
}

/** Direct codes (`value - min`, -1 for NULL or out of range) of `n` rows of `col`. */
function directCodes(col: Column, n: number, min: number, range: number): Int32Array {
  const out = new Int32Array(n);
  const x = col.nums!, valid = col.valid, s = col.scalar ? 0 : 1;
  for (let i = 0; i < n; i++) {
    const v = x[i * s], d = v - min;
    // `(v | 0) === v` keeps NaN and fractions out; -0 is 0 here as SQL says.
    const hit = (v | 0) === v && d >= 0 && d < range && (!valid || valid[i * s] === 1);
    out[i] = hit ? d : -1;
  }
  return out;
}

/**
 * The pairs of an equi-join on `leftKeys` = `rightKeys` (column by column), with NULL keys
 * never matching.
 */
export function equiJoin(
  leftKeys: Column[],
  ln: number,
  rightKeys: Column[],
  rn: number,
): JoinPairs {
  let rc: Int32Array, lc: Int32Array, count: number;
  const direct = leftKeys.length === 1 ? directRange(rightKeys[0], rn) : null;
  if (direct) {
    rc = directCodes(rightKeys[0], rn, direct.min, direct.range);
    lc = directCodes(leftKeys[0], ln, direct.min, direct.range);
    count = direct.range;
  } else {
    const enc = new KeyEncoder(leftKeys.length, false);
    rc = enc.encode(rightKeys, rn, true);
    lc = enc.encode(leftKeys, ln, false);
    count = enc.count;
  }
  // Right rows bucketed by code (a counting sort keeps them in right order).
  const start = new Int32Array(count + 1);
  let unique = true;
  for (let b = 0; b < rn; b++) {
    const c = rc[b];
    if (c >= 0 && ++start[c + 1] > 1) unique = false;
  }
  if (unique) return uniquePairs(lc, rc, count, rn);
  for (let c = 0; c < count; c++) start[c + 1] += start[c];
  const rows = new Int32Array(start[count]);
  const fill = start.slice(0, count);
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

/**
 * Pairs when no two build rows share a key: each left row's code turns, in place, into its
 * one right row (or -1); when none is -1 the left side is the identity.
 */
function uniquePairs(lc: Int32Array, rc: Int32Array, count: number, rn: number): JoinPairs {
  const rowOf = new Int32Array(count).fill(-1);
  for (let b = 0; b < rn; b++) if (rc[b] >= 0) rowOf[rc[b]] = b;
  const ln = lc.length;
  let matched = 0;
  for (let a = 0; a < ln; a++) {
    const c = lc[a];
    const r = c >= 0 ? rowOf[c] : -1;
    lc[a] = r;
    matched += +(r >= 0);
  }
  if (matched === ln) return { L: null, R: lc };
  const L = new Int32Array(matched), R = new Int32Array(matched);
  for (let a = 0, p = 0; a < ln; a++) {
    L[p] = a;
    R[p] = lc[a];
    p += +(lc[a] >= 0);
  }
  return { L, R };
}

/** `L` as an index vector (the identity over `n` rows when null). */
export function leftIndex(L: Int32Array | null, n: number): Int32Array {
  if (L) return L;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}
