/**
 * External merge sort for a block that sorts once after row-by-row steps: input batches are
 * gathered into runs of at most `runBytes` of Arrow data, each run goes through the block
 * (filtered, derived, sorted) and is written to the spill directory as Arrow IPC chunks, and
 * the runs are merged chunk by chunk into batches of `batchRows` rows. Memory holds one run being sorted, or one chunk per run while
 * merging, never the whole input. The output is exactly what sorting everything at once
 * gives: the engine's sort is stable and ties between runs go to the earlier run. Every spill
 * file is removed as soon as it has been read, and all of them on `dispose`.
 */
import * as arrow from "apache-arrow";
import { type Column, fromArrow, isValid, kindOf, tableOf, toArrow, utf8Of } from "./_column.ts";
import type { SortedRun } from "./_plan.ts";
import { compareNumbers } from "./_sort.ts";
import { compareBytes } from "./_utf8.ts";

export interface ExternalSortOptions {
  /** Arrow bytes of input gathered into one run before it is sorted and spilled. */
  runBytes: number;
  /** Where the runs go (created when needed). */
  dir: string;
  /** Rows per output batch. */
  batchRows: number;
  /** Rows per spilled chunk (what the merge reads at a time from each run). */
  chunkRows?: number;
}

/** Sorts batches pushed one at a time; `finish` yields the sorted output in batches. */
export interface ExternalSort {
  /**
   * Adds a batch; `release` is called once the batch is no longer needed. `lookups` are the
   * other relations the query reads, as they apply to this batch (a join's lookup results).
   */
  push(table: arrow.Table, release?: () => void, lookups?: Record<string, arrow.Table>): void;
  /** The sorted output, batch by batch. */
  finish(): Generator<arrow.Table>;
  /** Removes every spill file left (idempotent). */
  dispose(): void;
  /** How many runs went to disk so far. */
  readonly runs: number;
  /** How many rows were pushed (and will come out). */
  readonly rows: number;
}

/** Bytes of Arrow buffers a table holds. */
export function arrowBytes(table: arrow.Table): number {
  let total = 0;
  const visit = (d: arrow.Data) => {
    total += (d.values?.byteLength ?? 0) + (d.valueOffsets?.byteLength ?? 0) +
      (d.nullBitmap?.byteLength ?? 0);
    d.children.forEach(visit);
  };
  for (const b of table.batches) visit(b.data);
  return total;
}

interface Chunk {
  rows: number;
  /** Every output column, decoded once when the chunk is read. */
  cols: Column[];
  keys: Column[];
}

interface Run {
  files: string[];
  next: number;
  chunk: Chunk | null;
  row: number;
}

/** What an external operator does with its input (see `externalOperator`). */
export interface Spiller {
  /** Spills one run (the input gathered so far); `release` frees that input. */
  spill(input: arrow.Table, release: () => void): void;
  /** The output of an input that never spilled, computed in memory. */
  whole(input: arrow.Table): arrow.Table;
  /** The output once something spilled. */
  spilled(): Generator<arrow.Table>;
  /** The spill files not removed yet (each removed as soon as it is read). */
  files: Set<string>;
}

/**
 * The part every external operator shares: input batches gather until they hold `runBytes`
 * of Arrow data, then go to `spiller.spill` as one run; an input that never reached that
 * size is computed in memory. Removes whatever spill file is left when done or disposed.
 */
export function externalOperator(spiller: Spiller, o: ExternalSortOptions): ExternalSort {
  let pending: { table: arrow.Table; release?: () => void }[] = [];
  let pendingBytes = 0, rows = 0, runs = 0;
  const releasePending = () => {
    for (const p of pending) p.release?.();
    pending = [];
    pendingBytes = 0;
  };
  const input = () =>
    new arrow.Table(pending[0].table.schema, pending.flatMap((p) => p.table.batches));
  const spill = () => {
    const run = input();
    const held = pending;
    pending = [];
    pendingBytes = 0;
    let released = false;
    const release = () => {
      if (!released) { for (const p of held) p.release?.(); }
      released = true;
    };
    try {
      spiller.spill(run, release);
    } finally {
      release();
    }
    runs++;
  };
  return {
    get runs() {
      return runs;
    },
    get rows() {
      return rows;
    },
    push(table, release) {
      rows += table.numRows;
      if (table.numRows === 0) return release?.();
      pending.push({ table, release });
      pendingBytes += arrowBytes(table);
      if (pendingBytes >= o.runBytes) spill();
    },
    *finish() {
      try {
        if (runs === 0) {
          if (pending.length === 0) return;
          yield* slices(spiller.whole(input()), o.batchRows);
          return;
        }
        if (pending.length > 0) spill();
        yield* spiller.spilled();
      } finally {
        this.dispose();
      }
    },
    dispose() {
      releasePending();
      removeAll(spiller.files);
    },
  };
}

/** A table cut (zero-copy) into tables of at most `rows` rows. */
export function* slices(table: arrow.Table, rows: number): Generator<arrow.Table> {
  for (let at = 0; at < table.numRows; at += rows) yield table.slice(at, at + rows);
}

/** Removes every file in `files` (those already gone too) and forgets them. */
export function removeAll(files: Set<string>): void {
  for (const f of files) {
    try {
      Deno.removeSync(f);
    } catch { /* already gone */ }
  }
  files.clear();
}

/**
 * An external sort of the rows `run` sorts; `sorted` describes its keys by output position,
 * `schema` its output.
 */
export function externalSort(
  run: (input: arrow.Table) => arrow.Table,
  sorted: SortedRun,
  schema: arrow.Schema,
  o: ExternalSortOptions,
): ExternalSort {
  const chunkRows = o.chunkRows ?? 16_384;
  const runs: Run[] = [];
  const files = new Set<string>();
  const id = crypto.randomUUID().slice(0, 8);

  const spill = (input: arrow.Table, release: () => void) => {
    const out = run(input);
    release();
    Deno.mkdirSync(o.dir, { recursive: true });
    const r: Run = { files: [], next: 0, chunk: null, row: 0 };
    for (let at = 0; at < out.numRows; at += chunkRows) {
      const file = `${o.dir}/heddle-sort-${Deno.pid}-${id}-${runs.length}-${r.files.length}.arrow`;
      files.add(file);
      Deno.writeFileSync(file, arrow.tableToIPC(out.slice(at, at + chunkRows), "stream"));
      r.files.push(file);
    }
    runs.push(r);
  };
  const load = (r: Run): boolean => {
    if (r.next >= r.files.length) return (r.chunk = null, false);
    const file = r.files[r.next++];
    const table = arrow.tableFromIPC(Deno.readFileSync(file));
    Deno.removeSync(file);
    files.delete(file);
    const cols = schema.fields.map((f, i) => {
      const c = fromArrow(table.getChildAt(i)!, kindOf(f.type)!, f.name);
      if (c.kind === "text") utf8Of(c);
      return c;
    });
    r.chunk = { rows: table.numRows, cols, keys: sorted.keys.map((k) => cols[k.position]) };
    r.row = 0;
    return true;
  };
  /** Run a's current row against run b's: key order, then the earlier run. */
  const before = (a: number, b: number): boolean => {
    const x = runs[a], y = runs[b];
    for (let k = 0; k < sorted.keys.length; k++) {
      const c = cmpKey(x.chunk!.keys[k], x.row, y.chunk!.keys[k], y.row, sorted.keys[k].desc);
      if (c !== 0) return c < 0;
    }
    return a < b;
  };

  function* merge(): Generator<arrow.Table> {
    const heap: number[] = [];
    const down = (at: number) => {
      for (;;) {
        const l = 2 * at + 1, r = l + 1;
        let top = at;
        if (l < heap.length && before(heap[l], heap[top])) top = l;
        if (r < heap.length && before(heap[r], heap[top])) top = r;
        if (top === at) return;
        [heap[at], heap[top]] = [heap[top], heap[at]];
        at = top;
      }
    };
    runs.forEach((r, i) => load(r) && heap.push(i));
    for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
    // The batch being built: for each row, the chunk and the row in it.
    let from: Chunk[] = [], rowsOf: number[] = [];
    const emit = () => {
      const table = gatherChunks(from, rowsOf, schema);
      (from = [], rowsOf = []);
      return table;
    };
    while (heap.length > 0) {
      const r = runs[heap[0]];
      const chunk = r.chunk!;
      from.push(chunk);
      rowsOf.push(r.row);
      if (++r.row >= chunk.rows && !load(r)) {
        heap[0] = heap[heap.length - 1];
        heap.pop();
      }
      if (heap.length > 0) down(0);
      if (rowsOf.length === o.batchRows) yield emit();
    }
    if (rowsOf.length > 0) yield emit();
  }

  return externalOperator({ spill, whole: run, spilled: merge, files }, o);
}

/** Compares row i of `a` with row j of `b` (same kind): NULLs last, NaN greatest. */
function cmpKey(a: Column, i: number, b: Column, j: number, desc: boolean): number {
  const av = !a.valid || a.valid[i] === 1, bv = !b.valid || b.valid[j] === 1;
  if (!av || !bv) return av === bv ? 0 : av ? -1 : 1;
  let c: number;
  if (a.kind === "text") {
    const x = a.utf8!, y = b.utf8!;
    c = compareBytes(
      x.bytes,
      x.offsets[i],
      x.offsets[i + 1],
      y.bytes,
      y.offsets[j],
      y.offsets[j + 1],
    );
  } else c = compareNumbers(a.nums![i], b.nums![j]);
  return desc ? -c : c;
}

/** Row `rows[i]` of chunk `from[i]` for every i, as one table of `schema`. */
function gatherChunks(from: Chunk[], rows: number[], schema: arrow.Schema): arrow.Table {
  const n = rows.length;
  const children = schema.fields.map((f, c) => {
    const first = from[0].cols[c];
    const valid = from.some((k) => k.cols[c].valid) ? new Uint8Array(n) : null;
    if (valid) { for (let i = 0; i < n; i++) valid[i] = isValid(from[i].cols[c], rows[i]) ? 1 : 0; }
    const col: Column = { ...first, type: f.type, scalar: false, strs: null, valid };
    if (first.kind === "text") {
      const offsets = new Int32Array(n + 1);
      for (let i = 0; i < n; i++) {
        const o = from[i].cols[c].utf8!.offsets;
        offsets[i + 1] = offsets[i] + o[rows[i] + 1] - o[rows[i]];
      }
      const bytes = new Uint8Array(offsets[n]);
      for (let i = 0; i < n; i++) {
        const { offsets: o, bytes: b } = from[i].cols[c].utf8!;
        bytes.set(b.subarray(o[rows[i]], o[rows[i] + 1]), offsets[i]);
      }
      col.utf8 = { offsets, bytes };
    } else {
      const nums = first.kind === "bool" ? new Uint8Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) nums[i] = from[i].cols[c].nums![rows[i]];
      col.nums = nums;
    }
    return toArrow(col, n);
  });
  return tableOf(schema, children, n);
}
