/**
 * Hash-partitioned spilling for a block whose first keyed operator is a group or a
 * partitioned take (distinct): input batches gather in memory up to `runBytes` of Arrow data;
 * past that, their rows are split by the hash of the operator's keys into `partitions` parts,
 * each appended to its own spill files (with each row's position in the whole input), and the
 * batches are released. At the end the query runs one part at a time up to that operator, and
 * the rest of it once over the parts' results (`Partitioned` in _plan.ts), so memory holds one
 * part plus the operator's output, never the whole input. The output is exactly the in-memory
 * run's, in the same order. Every spill file is removed once read, and all of them on
 * `dispose`.
 */
import * as arrow from "apache-arrow";
import { type Column, fromArrow, gather, kindOf, tableOf, toArrow, utf8Of } from "./_column.ts";
import { rowHashes } from "./_hash.ts";
import type { Part, Partitioned } from "./_plan.ts";
import { externalOperator, type ExternalSort, type ExternalSortOptions } from "./_spill.ts";

export interface ExternalPartitionOptions extends ExternalSortOptions {
  /** How many parts the input is split into once it spills (default 64). */
  partitions?: number;
}

/** The column each spilled row carries: its position in the whole input. */
const ROW_FIELD = "__heddle_row";

/**
 * An external (hash-partitioned) run of `partitioned`: `whole` runs the query over all of the
 * input at once (when it never spilled), `runParts` over its parts; `columns` are the input
 * columns the query reads (the only ones spilled).
 */
export function externalPartition(
  whole: (input: arrow.Table) => arrow.Table,
  partitioned: Partitioned,
  runParts: (parts: Iterable<Part>) => arrow.Table,
  columns: string[],
  o: ExternalPartitionOptions,
): ExternalSort {
  const count = o.partitions ?? 64;
  let spilledRows = 0, spills = 0;
  const files: string[][] = Array.from({ length: count }, () => []);
  const live = new Set<string>();
  const id = crypto.randomUUID().slice(0, 8);

  /** Splits a run by key hash and writes each part's rows to its own file. */
  const spill = (input: arrow.Table, release: () => void) => {
    const n = input.numRows;
    const read = (name: string) => {
      const v = input.getChild(name);
      if (!v) throw new Error(`the input has no column \`${name}\``);
      return {
        field: input.schema.fields.find((f) => f.name === name)!,
        col: fromArrow(v, kindOf(v.type)!, name),
      };
    };
    const cols = columns.map(read);
    const keys = partitioned.keys.map((k) =>
      cols.find((c) => c.field.name === k)?.col ?? read(k).col
    );
    for (const k of keys) if (k.kind === "text") utf8Of(k);
    const hashes = rowHashes(keys, n);
    const sizes = new Int32Array(count);
    for (let i = 0; i < n; i++) sizes[(hashes[i] >>> 0) % count]++;
    const idx = Array.from({ length: count }, (_, p) => new Int32Array(sizes[p]));
    sizes.fill(0);
    for (let i = 0; i < n; i++) {
      const p = (hashes[i] >>> 0) % count;
      idx[p][sizes[p]++] = i;
    }
    Deno.mkdirSync(o.dir, { recursive: true });
    for (let p = 0; p < count; p++) {
      if (idx[p].length === 0) continue;
      const file = `${o.dir}/heddle-part-${Deno.pid}-${id}-${p}-${spills}.arrow`;
      live.add(file);
      Deno.writeFileSync(file, arrow.tableToIPC(pick(cols, idx[p], spilledRows), "stream"));
      files[p].push(file);
    }
    // Only now: a column read from one batch shares that batch's memory.
    release();
    spilledRows += n;
    spills++;
  };

  /** The parts, one at a time, each read from its files (removed as read). */
  function* parts(): Generator<Part> {
    for (const list of files) {
      if (list.length === 0) continue;
      const batches: arrow.RecordBatch[] = [];
      for (const file of list.splice(0)) {
        batches.push(...arrow.tableFromIPC(Deno.readFileSync(file)).batches);
        Deno.removeSync(file);
        live.delete(file);
      }
      const table = new arrow.Table(batches);
      const rowIds = fromArrow(table.getChild(ROW_FIELD)!, "float", ROW_FIELD).nums;
      yield { table, rowIds: rowIds as Float64Array };
    }
  }

  function* spilled(): Generator<arrow.Table> {
    const out = runParts(parts());
    for (let at = 0; at < out.numRows; at += o.batchRows) yield out.slice(at, at + o.batchRows);
  }

  return externalOperator({ spill, whole, spilled, files: live }, o);
}

/** Rows `idx` of `cols` (copied), plus their positions in the whole input counted from `base`. */
function pick(
  cols: { field: arrow.Field; col: Column }[],
  idx: Int32Array,
  base: number,
): arrow.Table {
  const n = idx.length;
  const children = cols.map(({ field, col }) =>
    toArrow({ ...gather(col, idx), type: field.type }, n)
  );
  const ids = new Float64Array(n);
  for (let i = 0; i < n; i++) ids[i] = base + idx[i];
  children.push(arrow.makeData({ type: new arrow.Float64(), length: n, nullCount: 0, data: ids }));
  const fields = [
    ...cols.map((c) => c.field),
    new arrow.Field(ROW_FIELD, new arrow.Float64(), false),
  ];
  return tableOf(new arrow.Schema(fields), children, n);
}
