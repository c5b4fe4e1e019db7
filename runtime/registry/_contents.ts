/**
 * The complete check of an object's values, run once where data enters the registry from
 * another process (`adopt`: a plugin's output, a batch fetched over Flight). `decodeStream`
 * checks framing and buffer sizes in constant time per column; this walks every offset and
 * every string, so that readers can trust what the registry hands out without checking it
 * again. The Rust SDK relies on it: arrow-rs validation costs O(rows) per consumer (46 ms for
 * a 100 MB batch), so it decodes registry objects unvalidated, which is sound only for data
 * that is valid Arrow: offsets that never decrease and stay inside their values, UTF-8 text
 * cut at character boundaries, dictionary indices inside their dictionary.
 */
import { type Data, type Table, Type } from "apache-arrow";

const fatal = new TextDecoder("utf-8", { fatal: true });

function isValid(data: Data, i: number): boolean {
  const bitmap = data.nullBitmap;
  if (data.nullCount === 0 || !bitmap || bitmap.length === 0) return true;
  const bit = data.offset + i;
  return (bitmap[bit >> 3] & (1 << (bit & 7))) !== 0;
}

/** Offsets from `data.offset` on never decrease and stay within `limit`. */
function offsetsProblem(data: Data, limit: number): string | undefined {
  const offsets = data.valueOffsets as Int32Array | BigInt64Array;
  let previous = Number(offsets[data.offset]);
  if (previous < 0 || previous > limit) return `offset ${previous} is outside 0..${limit}`;
  for (let i = 1; i <= data.length; i++) {
    const next = Number(offsets[data.offset + i]);
    if (next < previous || next > limit) {
      return `offset ${next} of row ${
        i - 1
      } breaks the order (previous ${previous}, limit ${limit})`;
    }
    previous = next;
  }
  return undefined;
}

/** UTF-8 text whose every value starts and ends on a character boundary. */
function textProblem(data: Data): string | undefined {
  const offsets = data.valueOffsets as Int32Array | BigInt64Array;
  const values = data.values as Uint8Array;
  const first = Number(offsets[data.offset]);
  const last = Number(offsets[data.offset + data.length]);
  try {
    fatal.decode(values.subarray(first, last));
  } catch {
    return "text is not valid UTF-8";
  }
  for (let i = 1; i < data.length; i++) {
    const at = Number(offsets[data.offset + i]);
    // A continuation byte (10xxxxxx) where a value starts cuts a character in two.
    if (at < last && (values[at] & 0xc0) === 0x80) return `row ${i} starts inside a character`;
  }
  return undefined;
}

function dictionaryProblem(data: Data): string | undefined {
  const size = (data.dictionary?.data ?? []).reduce((n, d) => n + d.length, 0);
  const indices = data.values as ArrayLike<number | bigint>;
  for (let i = 0; i < data.length; i++) {
    const index = Number(indices[data.offset + i]);
    if (isValid(data, i) && (index < 0 || index >= size)) {
      return `row ${i} indexes entry ${index} of a ${size}-entry dictionary`;
    }
  }
  return undefined;
}

function columnProblem(data: Data, path: string): string | undefined {
  let problem: string | undefined;
  switch (data.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
      problem = offsetsProblem(data, (data.values as Uint8Array).length) ?? textProblem(data);
      break;
    case Type.Binary:
    case Type.LargeBinary:
      problem = offsetsProblem(data, (data.values as Uint8Array).length);
      break;
    case Type.List:
    case Type.LargeList:
    case Type.Map:
      problem = offsetsProblem(data, data.children[0]?.length ?? 0);
      break;
    case Type.Dictionary:
      problem = dictionaryProblem(data);
      for (const dictionary of data.dictionary?.data ?? []) {
        problem ??= columnProblem(dictionary, `${path} (dictionary)`);
      }
      break;
  }
  if (problem !== undefined) return `${path}: ${problem}`;
  for (const [i, child] of data.children.entries()) {
    const found = columnProblem(child, `${path}.${data.type.children?.[i]?.name ?? i}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** What is wrong with the table's values, or undefined when every value is valid Arrow. */
export function contentsProblem(table: Table): string | undefined {
  for (const batch of table.batches) {
    for (const [i, column] of batch.data.children.entries()) {
      const problem = columnProblem(column, table.schema.fields[i]?.name ?? String(i));
      if (problem !== undefined) return problem;
    }
  }
  return undefined;
}
