/**
 * Hash-partitioned spilling for a query that splits (`Partitioned` in _plan.ts) at a group, a
 * partitioned take (distinct) or a window partitioned by some key: each input batch goes
 * through the query's row-by-row first steps (filter, derive, a join with its lookup) as it
 * comes, and what they make of it gathers in memory up to `runBytes`; past that, its rows are
 * split by the hash of the split's keys (plain or computed columns) into `partitions` parts,
 * each appended to its own spill files with each row's position, and the input is released.
 * At the end the split step runs one part at a time, the parts' results go back into the
 * in-memory order, and the rest of the query runs once over them; so memory holds one part
 * plus the split's output, never the whole input, and the output is exactly the in-memory
 * run's. A window's output is as large as its input: when only row-by-row steps follow it,
 * each part's result is spilled again and the parts are merged by row position, batch by
 * batch (_spill_merge.ts). Every spill file is removed once read, and all of them on
 * `dispose`.
 */
import type * as arrow from "apache-arrow";
import { type Column, defaultType, utf8Of } from "./_column.ts";
import type { Frame } from "./_expr.ts";
import { rowHashes } from "./_hash.ts";
import { type Partitioned, ROW_ID, type Rows } from "./_plan.ts";
import { sortIndex } from "./_sort.ts";
import {
  arrowBytes,
  type ExternalSort,
  type ExternalSortOptions,
  removeAll,
  slices,
} from "./_spill.ts";
import {
  buffersOf,
  concatFrames,
  frameBytes,
  type FrameLayout,
  frameToIpc,
  gatherFrame,
  layoutOf,
  SpillFiles,
} from "./_spill_frame.ts";
import { mergeByRow } from "./_spill_merge.ts";

export interface ExternalPartitionOptions extends ExternalSortOptions {
  /** How many parts the input is split into once it spills (default 64). */
  partitions?: number;
}

/** A column of each row's position, counted from `base`. */
function positions(base: number, n: number): Column {
  const nums = new Float64Array(n);
  for (let i = 0; i < n; i++) nums[i] = base + i;
  return {
    kind: "float",
    type: defaultType("float"),
    scalar: false,
    nums,
    strs: null,
    valid: null,
  };
}

/**
 * An external (hash-partitioned) run of `p`; `output` turns the query's rows into its output
 * table.
 */
export function externalPartition(
  p: Partitioned,
  output: (rows: Rows) => arrow.Table,
  o: ExternalPartitionOptions,
): ExternalSort {
  const count = o.partitions ?? 64;
  const files: string[][] = Array.from({ length: count }, () => []);
  const spills = new SpillFiles(o.dir);
  let pending: { frame: Frame; release?: () => void }[] = [];
  let pendingBytes = 0, rows = 0, runs = 0, position = 0;
  let layout: FrameLayout | null = null;
  /** The first steps' output over no rows: the columns, for an input they filter out whole. */
  let empty: Frame | null = null;

  const releasePending = () => {
    for (const x of pending) x.release?.();
    pending = [];
    pendingBytes = 0;
  };
  /** Splits what is pending by key hash and appends each part's rows to its own file. */
  const spill = () => {
    const frame = concatFrames(pending.map((x) => x.frame));
    layout ??= layoutOf(frame);
    const keys = p.keys.map((k) => {
      const c = frame.cols.get(k)!;
      return c.kind === "text" ? { ...c, utf8: utf8Of(c) } : c;
    });
    const hashes = rowHashes(keys, frame.n);
    const sizes = new Int32Array(count);
    for (let i = 0; i < frame.n; i++) sizes[(hashes[i] >>> 0) % count]++;
    const idx = Array.from({ length: count }, (_, k) => new Int32Array(sizes[k]));
    sizes.fill(0);
    for (let i = 0; i < frame.n; i++) {
      const k = (hashes[i] >>> 0) % count;
      idx[k][sizes[k]++] = i;
    }
    for (let k = 0; k < count; k++) {
      if (idx[k].length === 0) continue;
      files[k].push(spills.write("part", frameToIpc(frame, layout, idx[k])));
    }
    // Only now: a frame's columns may share its batch's memory.
    releasePending();
    runs++;
  };

  /** The parts, one at a time, each read from its files (removed as read). */
  function* parts(): Generator<Frame> {
    for (const list of files) if (list.length > 0) yield spills.read(list.splice(0), layout!);
  }

  /** The split's results of `parts` in the in-memory order, then the rest of the query. */
  function* inOrder(parts: Iterable<Frame>): Generator<arrow.Table> {
    if (p.kind === "window" && p.rowWise && runs > 0) {
      // A window's output is as large as its input: each part's (in row order) is spilled
      // again in chunks, and the parts are merged by row position.
      const chunkRows = o.chunkRows ?? 16_384;
      const spilled: { files: string[]; shape: FrameLayout }[] = [];
      for (const part of parts) {
        const f = p.local(part);
        const shape = layoutOf(f);
        const list: string[] = [];
        for (let at = 0; at < f.n; at += chunkRows) {
          const idx = new Int32Array(Math.min(chunkRows, f.n - at)).map((_, i) => at + i);
          list.push(spills.write("window", frameToIpc(f, shape, idx)));
        }
        spilled.push({ files: list, shape });
      }
      const chunks = function* ({ files, shape }: { files: string[]; shape: FrameLayout }) {
        for (const f of files) yield spills.read([f], shape);
      };
      for (const f of mergeByRow(spilled.map(chunks), o.batchRows)) yield output(p.rest(f));
      return;
    }
    const done = [...parts].map((part) => p.local(part));
    const f = concatFrames(done);
    // One part (nothing spilled) is already in the in-memory order.
    const idx = done.length > 1
      ? sortIndex(f.n, p.order.map((c) => ({ col: f.cols.get(c)!, desc: false })))
      : null;
    f.cols.delete(ROW_ID);
    yield* slices(output(p.rest(idx ? gatherFrame(f, idx) : f)), o.batchRows);
  }

  return {
    get runs() {
      return runs;
    },
    get rows() {
      return rows;
    },
    push(table, release, lookups) {
      rows += table.numRows;
      let frame: Frame;
      try {
        frame = p.pre({ ...lookups, [p.relation]: table });
      } catch (err) {
        release?.();
        throw err;
      }
      empty ??= gatherFrame(frame, new Int32Array(0));
      if (frame.n === 0) return release?.();
      frame.cols.set(ROW_ID, positions(position, frame.n));
      position += frame.n;
      pending.push({ frame, release });
      pendingBytes += arrowBytes(table) + frameBytes(frame, buffersOf(table));
      if (pendingBytes >= o.runBytes) spill();
    },
    *finish() {
      try {
        if (runs === 0) {
          if (!empty) return;
          const whole = pending.length > 0 ? concatFrames(pending.map((x) => x.frame)) : {
            n: 0,
            cols: new Map([...empty.cols, [ROW_ID, positions(0, 0)]]),
          };
          yield* inOrder([whole]);
          return;
        }
        if (pending.length > 0) spill();
        yield* inOrder(parts());
      } finally {
        this.dispose();
      }
    },
    dispose() {
      releasePending();
      removeAll(spills.live);
    },
  };
}
