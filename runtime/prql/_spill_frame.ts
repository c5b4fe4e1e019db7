/**
 * Engine frames (rows as typed-array columns by column id) written to and read back from
 * spill files, for operators that spill what a query's first steps made of its input rather
 * than the input itself. Numbers are written as the float64 values the engine computes with
 * and text as its UTF-8 bytes, whatever Arrow type a column will have in the output, so that
 * a value read back is exactly the value written (NaN, -0, integers computed as floats). The
 * column ids, kinds and types travel beside the file in a `FrameLayout`.
 */
import * as arrow from "apache-arrow";
import {
  type Column,
  concatAll,
  fromArrow,
  gather,
  type Kind,
  tableOf,
  toArrow,
} from "./_column.ts";
import type { Frame } from "./_expr.ts";
import type { CId } from "./_rq.ts";

/** What the columns of spilled frames are: in file order. */
export interface FrameLayout {
  ids: CId[];
  kinds: Kind[];
  types: arrow.DataType[];
}

export function layoutOf(f: Frame): FrameLayout {
  const ids = [...f.cols.keys()];
  return {
    ids,
    kinds: ids.map((id) => f.cols.get(id)!.kind),
    types: ids.map((id) => f.cols.get(id)!.type),
  };
}

const FLOAT = new arrow.Float64();
const UTF8 = new arrow.Utf8();

/** Rows `idx` of `f` (all of them when null) as one Arrow IPC stream of `layout`. */
export function frameToIpc(f: Frame, layout: FrameLayout, idx: Int32Array | null): Uint8Array {
  const n = idx ? idx.length : f.n;
  const children = layout.ids.map((id, i) => {
    const c = idx ? gather(f.cols.get(id)!, idx) : f.cols.get(id)!;
    const text = layout.kinds[i] === "text";
    return toArrow({ ...c, kind: text ? "text" : "float", type: text ? UTF8 : FLOAT }, n);
  });
  const fields = layout.ids.map((_, i) =>
    new arrow.Field(`c${i}`, layout.kinds[i] === "text" ? UTF8 : FLOAT, true)
  );
  return arrow.tableToIPC(tableOf(new arrow.Schema(fields), children, n), "stream");
}

/** The frame that files written by `frameToIpc` hold, one after the other. */
export function frameFromIpc(files: Uint8Array[], layout: FrameLayout): Frame {
  const table = new arrow.Table(files.flatMap((b) => arrow.tableFromIPC(b).batches));
  const cols = new Map<CId, Column>();
  layout.ids.forEach((id, i) => {
    const kind = layout.kinds[i];
    const c = fromArrow(table.getChildAt(i)!, kind === "text" ? "text" : "float", `c${i}`);
    cols.set(id, { ...c, kind, type: layout.types[i] });
  });
  return { n: table.numRows, cols };
}

/** The rows of every frame in turn (all with the same columns). */
export function concatFrames(frames: Frame[]): Frame {
  if (frames.length === 1) return frames[0];
  const cols = new Map<CId, Column>();
  for (const id of frames[0].cols.keys()) {
    const parts = frames.map((f) => ({ col: f.cols.get(id)!, n: f.n }));
    cols.set(id, concatAll(parts, parts[0].col.type));
  }
  return { n: frames.reduce((t, f) => t + f.n, 0), cols };
}

/** Rows `idx` of every column of `f`. */
export function gatherFrame(f: Frame, idx: Int32Array): Frame {
  const cols = new Map<CId, Column>();
  for (const [id, c] of f.cols) cols.set(id, gather(c, idx));
  return { n: idx.length, cols };
}

/** Bytes a frame's columns hold beyond the buffers in `shared` (its input's). */
export function frameBytes(f: Frame, shared: Set<ArrayBufferLike>): number {
  let total = 0;
  const add = (a: ArrayBufferView | null | undefined) => {
    if (a && !shared.has(a.buffer)) total += a.byteLength;
  };
  for (const c of f.cols.values()) {
    add(c.nums as ArrayBufferView | null);
    add(c.valid);
    add(c.utf8?.offsets);
    add(c.utf8?.bytes);
    if (c.strs) total += c.strs.length * 16;
  }
  return total;
}

/** The buffers of an Arrow table's data. */
export function buffersOf(table: arrow.Table): Set<ArrayBufferLike> {
  const out = new Set<ArrayBufferLike>();
  const visit = (d: arrow.Data) => {
    for (const b of [d.values, d.valueOffsets, d.nullBitmap]) if (b) out.add(b.buffer);
    d.children.forEach(visit);
  };
  for (const b of table.batches) visit(b.data);
  return out;
}

/**
 * The spill files of one operator: written under `dir` with names that say whose they are,
 * removed as soon as they are read back, and all the rest on `removeAll`.
 */
export class SpillFiles {
  readonly live = new Set<string>();
  readonly #id = crypto.randomUUID().slice(0, 8);
  #count = 0;

  constructor(private readonly dir: string) {}

  /** Writes `bytes` to a new file named `heddle-<kind>-...`; its path. */
  write(kind: string, bytes: Uint8Array): string {
    Deno.mkdirSync(this.dir, { recursive: true });
    const file = `${this.dir}/heddle-${kind}-${Deno.pid}-${this.#id}-${this.#count++}.arrow`;
    this.live.add(file);
    Deno.writeFileSync(file, bytes);
    return file;
  }

  /** The frame `files` hold (written by `frameToIpc` with `layout`); removes them. */
  read(files: string[], layout: FrameLayout): Frame {
    const bytes = files.map((f) => Deno.readFileSync(f));
    for (const f of files) (Deno.removeSync(f), this.live.delete(f));
    return frameFromIpc(bytes, layout);
  }
}
