/**
 * The transactions table the handoff benchmark moves between processes, and the checksum a
 * consumer computes over it. The checksum reads every value (every 32-bit word of the
 * integer columns, every float, every byte of every string), so a consumer that skipped data
 * would report a different checksum and the benchmark would fail instead of looking fast.
 * bench/_handoff_consumer.py computes the same checksum; the two must never diverge.
 */
import * as arrow from "apache-arrow";

/** What a consumer reports after reading a batch. Integers wrap at 2^32. */
export interface Checksum {
  rows: number;
  /** Sum of the 32-bit words of tx_id and ts (low and high), plus user_id, mod 2^32. */
  ints: number;
  /** Sum of amount (compared with a relative tolerance: summation order may differ). */
  amount: number;
  /** Total UTF-8 bytes of merchant. */
  textBytes: number;
  /** Sum of those bytes, mod 2^32. */
  textSum: number;
}

/** A transaction as a JSON microservice holds it: a plain object per row. */
export interface TxRow {
  tx_id: number;
  user_id: number;
  amount: number;
  merchant: string;
  ts: number;
}

const MERCHANTS = Array.from(
  { length: 997 },
  (_, i) => `${["corner-shop", "online-market", "fuel", "cafe", "airline"][i % 5]}-${i * 7919}`,
);
const MERCHANT_BYTES = MERCHANTS.map((m) => new TextEncoder().encode(m));

/** Deterministic pseudo-random numbers (mulberry32), so every run moves the same data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A table of `rows` transactions in one record batch. Columns are built directly as Arrow
 * buffers: building 20 million JS strings first would dominate the benchmark's set-up time.
 */
export function makeTransactions(rows: number, seed = 7): arrow.Table {
  const rnd = prng(seed);
  const txId = new BigInt64Array(rows);
  const userId = new Int32Array(rows);
  const amount = new Float64Array(rows);
  const ts = new BigInt64Array(rows);
  const offsets = new Int32Array(rows + 1);
  const picks = new Uint16Array(rows);
  let bytes = 0;
  for (let i = 0; i < rows; i++) {
    txId[i] = BigInt(1_000_000 + i);
    userId[i] = Math.floor(rnd() * 1_000_000);
    amount[i] = Math.round(rnd() * 500_000) / 100;
    ts[i] = BigInt(1_700_000_000_000 + i * 37);
    picks[i] = Math.floor(rnd() * MERCHANTS.length);
    bytes += MERCHANT_BYTES[picks[i]].length;
    offsets[i + 1] = bytes;
  }
  const text = new Uint8Array(bytes);
  for (let i = 0; i < rows; i++) text.set(MERCHANT_BYTES[picks[i]], offsets[i]);
  const merchant = arrow.makeData({
    type: new arrow.Utf8(),
    length: rows,
    valueOffsets: offsets,
    data: text,
    nullCount: 0,
  });
  return new arrow.Table({
    tx_id: arrow.makeVector(txId),
    user_id: arrow.makeVector(userId),
    amount: arrow.makeVector(amount),
    merchant: arrow.makeVector(merchant),
    ts: arrow.makeVector(ts),
  });
}

/** The rows as plain objects: what a JSON microservice starts from. */
export function toRows(table: arrow.Table): TxRow[] {
  const out: TxRow[] = new Array(table.numRows);
  const [tx, user, amount, merchant, ts] = ["tx_id", "user_id", "amount", "merchant", "ts"].map(
    (n) => table.getChild(n)!,
  );
  for (let i = 0; i < table.numRows; i++) {
    out[i] = {
      tx_id: Number(tx.get(i)),
      user_id: user.get(i),
      amount: amount.get(i),
      merchant: merchant.get(i),
      ts: Number(ts.get(i)),
    };
  }
  return out;
}

/** Sums every 32-bit word of an int64 buffer, mod 2^32. */
function sumWords(values: BigInt64Array, acc: number): number {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length * 2);
  for (let i = 0; i < words.length; i++) acc = (acc + words[i]) >>> 0;
  return acc;
}

/** Reads every value of a transactions table, zero-copy over its buffers. */
export function checksumTable(table: arrow.Table): Checksum {
  const c: Checksum = { rows: 0, ints: 0, amount: 0, textBytes: 0, textSum: 0 };
  for (const batch of table.batches) {
    c.rows += batch.numRows;
    c.ints = sumWords(batch.getChild("tx_id")!.data[0].values as BigInt64Array, c.ints);
    c.ints = sumWords(batch.getChild("ts")!.data[0].values as BigInt64Array, c.ints);
    const users = batch.getChild("user_id")!.data[0].values as Int32Array;
    for (let i = 0; i < users.length; i++) c.ints = (c.ints + users[i]) >>> 0;
    const amounts = batch.getChild("amount")!.data[0].values as Float64Array;
    for (let i = 0; i < amounts.length; i++) c.amount += amounts[i];
    const m = batch.getChild("merchant")!.data[0];
    const start = m.valueOffsets[0], end = m.valueOffsets[m.length];
    const text = m.values as Uint8Array;
    c.textBytes += end - start;
    for (let i = start; i < end; i++) c.textSum = (c.textSum + text[i]) >>> 0;
  }
  return c;
}

/** The same checksum over JSON rows (merchant names are ASCII: one byte per character). */
export function checksumRows(rows: TxRow[]): Checksum {
  const c: Checksum = { rows: rows.length, ints: 0, amount: 0, textBytes: 0, textSum: 0 };
  for (const r of rows) {
    const words = (r.tx_id >>> 0) + Math.floor(r.tx_id / 4294967296) + (r.ts >>> 0) +
      Math.floor(r.ts / 4294967296) + r.user_id;
    c.ints = (c.ints + words) >>> 0;
    c.amount += r.amount;
    const m = r.merchant;
    c.textBytes += m.length;
    for (let i = 0; i < m.length; i++) c.textSum = (c.textSum + m.charCodeAt(i)) >>> 0;
  }
  return c;
}

/** Why two checksums differ, or null when they agree. */
export function checksumMismatch(expected: Checksum, got: Checksum): string | null {
  for (const k of ["rows", "ints", "textBytes", "textSum"] as const) {
    if (expected[k] !== got[k]) return `${k}: expected ${expected[k]}, got ${got[k]}`;
  }
  const tolerance = 1e-9 * Math.max(1, Math.abs(expected.amount));
  if (Math.abs(expected.amount - got.amount) > tolerance) {
    return `amount: expected ${expected.amount}, got ${got.amount}`;
  }
  return null;
}
