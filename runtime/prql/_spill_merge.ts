/**
 * Merges frames that several sources give in ascending row position (`ROW_ID`) into one
 * sequence in that order, a batch at a time: what puts a window's output, computed one hash
 * part at a time, back into the input's order without holding it whole. Each batch takes,
 * from every source, its rows below the next position limit, so that memory holds one chunk
 * per source and one batch.
 */
import { type Column, slice } from "./_column.ts";
import type { Frame } from "./_expr.ts";
import { ROW_ID } from "./_plan.ts";
import type { CId } from "./_rq.ts";
import { sortIndex } from "./_sort.ts";
import { concatFrames, gatherFrame } from "./_spill_frame.ts";

interface Source {
  chunks: Iterator<Frame>;
  frame: Frame | null;
  row: number;
}

function sliceFrame(f: Frame, start: number, end: number): Frame {
  const cols = new Map<CId, Column>();
  for (const [id, c] of f.cols) cols.set(id, slice(c, start, end));
  return { n: end - start, cols };
}

function advance(s: Source): void {
  const next = s.chunks.next();
  s.frame = next.done ? null : next.value;
  s.row = 0;
}

/**
 * The rows of every source in ascending `ROW_ID`, in frames of about `batchRows` rows (the
 * positions are those of rows counted from 0 across all sources), without `ROW_ID`.
 */
export function* mergeByRow(sources: Iterator<Frame>[], batchRows: number): Generator<Frame> {
  const all: Source[] = sources.map((chunks) => ({ chunks, frame: null, row: 0 }));
  for (const s of all) advance(s);
  for (let limit = batchRows; all.some((s) => s.frame); limit += batchRows) {
    const pieces: Frame[] = [];
    for (const s of all) {
      while (s.frame) {
        const ids = s.frame.cols.get(ROW_ID)!.nums!;
        let end = s.row;
        while (end < s.frame.n && ids[end] < limit) end++;
        if (end > s.row) pieces.push(sliceFrame(s.frame, s.row, end));
        s.row = end;
        if (end < s.frame.n) break;
        advance(s);
      }
    }
    if (pieces.length === 0) continue;
    const f = concatFrames(pieces);
    const idx = sortIndex(f.n, [{ col: f.cols.get(ROW_ID)!, desc: false }]);
    f.cols.delete(ROW_ID);
    yield gatherFrame(f, idx);
  }
}
