/**
 * `fhub/file`: reading CSV, JSON Lines, Arrow IPC and Parquet files as a bounded source, and writing
 * them as a sink. It exists so that a program runs with no outside service at all (the
 * quickstart, tests). A malformed line must never crash a run: it becomes a row error that
 * the executor routes to a handler, and no value may change on the way in (see `_columns.ts`).
 * A written file must never be seen half-written: rows go to a locked temporary file that is
 * renamed into place only when the run completes (`flush`); a stopped or failed run removes
 * it (`abort`), leaving any previous file untouched.
 */
import {
  makeData,
  RecordBatch,
  type Schema,
  Struct,
  Table,
  tableFromIPC,
  tableToIPC,
} from "apache-arrow";
import { basename, dirname, isAbsolute, join } from "node:path";
import type { ArrowField } from "../../compiler/modules/mod.ts";
import { jsonValue, rawRowsOf, toArrowSchema } from "./_arrow.ts";
import {
  cellText,
  type ColumnBuilder,
  columnBuilder,
  inferCsvField,
  inferJsonField,
  rawJson,
} from "./_columns.ts";
import { type CsvBatch, type CsvOptions, CsvReader } from "./_csv.ts";
import { ByteBuffer, csvHeader, csvRows } from "./_csv_writer.ts";
import { type JsonLine, JsonlReader } from "./_jsonl.ts";
import { type ByteSource, DEFAULT_MAX_RECORD_BYTES, excerpt, openInput } from "./_records.ts";
import type { ParquetInput } from "./_parquet.ts";

/** `_parquet.ts`, loaded for Parquet only: parquet-wasm costs ~40 ms of start-up to evaluate. */
const parquet = () => import("./_parquet.ts");
import { intOf } from "./_remote.ts";
import { allowedPath } from "./_paths.ts";
import {
  type ColumnSpec,
  type ConnectorContext,
  ConnectorError,
  type ConnectorFactory,
  type Position,
  type Sink,
  type Source,
  type SourceBatch,
  type SourceRowError,
} from "./_types.ts";

type Format = "csv" | "jsonl" | "arrow" | "parquet";

interface FileConfig extends CsvOptions {
  path: string;
  format: Format;
  /** Parquet: the columns to read (all when null). */
  columns: string[] | null;
}

function fileConfig(ctx: ConnectorContext): FileConfig {
  const { path, format, quotes = "strict", max_record_bytes, columns = null } = ctx.config;
  if (typeof path !== "string" || path === "") {
    throw new ConnectorError("config", "`path` must be a non-empty string");
  }
  if (format !== "csv" && format !== "jsonl" && format !== "arrow" && format !== "parquet") {
    throw new ConnectorError(
      "config",
      `\`format\` must be one of \`csv\`, \`jsonl\`, \`arrow\`, \`parquet\`; found ${
        JSON.stringify(format)
      }`,
    );
  }
  const names = Array.isArray(columns) && columns.every((c) => typeof c === "string" && c !== "");
  if (columns !== null && (!names || format !== "parquet")) {
    throw new ConnectorError("config", "`columns` is a list of column names, for `parquet` only");
  }
  if (quotes !== "strict" && quotes !== "lenient") {
    throw new ConnectorError("config", "`quotes` must be `strict` or `lenient`");
  }
  const maxRecordBytes = intOf(ctx.config, "max_record_bytes", DEFAULT_MAX_RECORD_BYTES);
  if (maxRecordBytes < 1 || (max_record_bytes !== undefined && maxRecordBytes > 2 ** 30)) {
    throw new ConnectorError("config", "`max_record_bytes` must be between 1 and 1073741824");
  }
  return {
    path: allowedPath(isAbsolute(path) ? path : join(ctx.baseDir, path), ctx.allowPaths),
    format,
    lenient: quotes === "lenient",
    maxRecordBytes,
    columns: columns as string[] | null,
  };
}

/**
 * The schema of the rows: fields the compiler pinned keep their declared type; other
 * columns found in the file are inferred from the first batch and appended in file order.
 */
function resolveSchema(
  pinned: ColumnSpec[] | null,
  columns: string[],
  infer: (name: string) => ArrowField,
): Schema {
  const byName = new Map((pinned ?? []).map((f) => [f.name, f]));
  const names = [
    ...columns,
    ...(pinned ?? []).map((f) => f.name).filter((n) => !columns.includes(n)),
  ];
  return toArrowSchema(names.map((name) => {
    const spec = byName.get(name);
    return spec?.type ? { name, type: spec.type, nullable: spec.nullable } : infer(name);
  }));
}

/**
 * A rejected record: `why` never quotes the record (the control plane sees it), the start of
 * the record's text is added only to the message the handler's rows get.
 */
function recordError(
  where: string,
  record: number,
  why: string,
  raw: string,
  column: string | undefined,
): SourceRowError {
  const reason = `${where}: record ${record + 1}: ${why}`;
  return { record, message: `${reason}: ${raw}`, reason, column };
}

/**
 * Builds one typed batch row by row; a row any column rejects becomes a row error. The
 * column builders are the source's, emptied: `finish` copies their cells out, so their
 * buffers serve the next batch (allocating them per batch cost more than filling them).
 */
class BatchBuilder {
  #rows = 0;
  errors: SourceRowError[] = [];

  constructor(
    readonly schema: Schema,
    private path: string,
    readonly builders: ColumnBuilder[],
  ) {
    for (const b of builders) b.truncate(0);
  }

  /**
   * Ends a row: kept when `why` is null, else rolled back in every column and rejected with
   * the start of its text, `buf[start, end)`; `column` is the column that rejected it.
   */
  end(
    record: number,
    why: string | null,
    buf: Uint8Array,
    start: number,
    end: number,
    column?: string,
  ): void {
    if (why === null) this.#rows++;
    else {
      for (const b of this.builders) b.truncate(this.#rows);
      this.errors.push(recordError(this.path, record, why, excerpt(buf, start, end), column));
    }
  }

  finish(): Table {
    const data = makeData({
      type: new Struct(this.schema.fields),
      length: this.#rows,
      nullCount: 0,
      children: this.builders.map((b) => b.finish()),
    });
    return new Table([new RecordBatch(this.schema, data)]);
  }
}

/** What every file source shares: bounded, and positions that only need remembering. */
abstract class FileSource implements Source {
  readonly bounded = true;
  schema!: Schema;
  committed: Position | null = null;

  constructor(protected config: FileConfig, protected ctx: ConnectorContext) {}

  abstract batches(signal: AbortSignal): AsyncIterable<SourceBatch>;

  /** The number of records a resumed run skips. */
  protected get skip(): number {
    return typeof this.ctx.resumeAfter === "number" ? this.ctx.resumeAfter : 0;
  }

  commit(position: Position): Promise<void> {
    this.committed = position;
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** What a text source needs from its format: a header, a sample, and typed batches. */
abstract class TextSource<Raw> extends FileSource {
  #input!: ByteSource;
  #first: SourceBatch | null = null;
  #builders: ColumnBuilder[] | null = null;

  /** An empty batch over this source's column builders (made for the first batch's size). */
  protected newBatch(capacity: number): BatchBuilder {
    this.#builders ??= this.schema.fields.map((f) => columnBuilder(f, capacity));
    return new BatchBuilder(this.schema, this.config.path, this.#builders);
  }

  /** Reads what comes before the data (the CSV header). */
  protected abstract start(input: ByteSource): Promise<void>;
  /** The next raw batch of at most `n` records, or null at the end. */
  protected abstract read(n: number): Promise<Raw | null>;
  /** The column names and an inference function, from the first raw batch. */
  protected abstract sample(raw: Raw | null): { columns: string[]; infer: Infer };
  /** Types the records numbered `skip` and up; returns the batch and its position. */
  protected abstract build(raw: Raw, skip: number): { batch: BatchBuilder; position: number };

  async open(): Promise<this> {
    this.#input = await openInput(this.config.path);
    try {
      await this.start(this.#input);
      const raw = await this.read(this.ctx.batchRows);
      const { columns, infer } = this.sample(raw);
      this.schema = resolveSchema(this.ctx.schema, columns, infer);
      if (raw) this.#first = this.#typed(raw);
    } catch (e) {
      await this.close();
      throw e;
    }
    return this;
  }

  #typed(raw: Raw): SourceBatch {
    const { batch, position } = this.build(raw, this.skip);
    return { table: batch.finish(), errors: batch.errors, position };
  }

  async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
    let next = this.#first;
    this.#first = null;
    while (next && !signal.aborted) {
      if (next.table.numRows > 0 || next.errors.length > 0) yield next;
      const raw = await this.read(this.ctx.batchRows);
      next = raw ? this.#typed(raw) : null;
    }
  }

  override close(): Promise<void> {
    this.#input?.close();
    return Promise.resolve();
  }
}

type Infer = (name: string) => ArrowField;

class CsvSource extends TextSource<CsvBatch> {
  #reader!: CsvReader;
  #header: string[] = [];

  protected async start(input: ByteSource): Promise<void> {
    this.#reader = new CsvReader(input, this.config.path, this.config);
    const b = await this.#reader.header();
    const where = `\`${this.config.path}\``;
    if (!b) throw new ConnectorError("config", `${where} has no CSV header line`);
    const error = b.errors.get(0);
    if (error) throw new ConnectorError("config", `${where}: the header line: ${error}`);
    const first = b.firsts[0];
    this.#header = Array.from(
      { length: b.widths[0] },
      (_, i) => cellText(b.buf, b.starts[first + i], b.ends[first + i], b.flags[first + i]).trim(),
    );
    const empty = this.#header.findIndex((h) => h === "");
    if (empty >= 0) {
      throw new ConnectorError("config", `${where}: header column ${empty + 1} has no name`);
    }
    const seen = new Map<string, number>();
    const dupes: string[] = [];
    this.#header.forEach((h, i) => {
      if (seen.has(h)) dupes.push(`\`${h}\` (columns ${seen.get(h)! + 1} and ${i + 1})`);
      else seen.set(h, i);
    });
    if (dupes.length > 0) {
      throw new ConnectorError("config", `${where}: duplicate header names: ${dupes.join(", ")}`);
    }
  }

  protected read(n: number): Promise<CsvBatch | null> {
    return this.#reader.read(n);
  }

  protected sample(raw: CsvBatch | null) {
    const width = this.#header.length;
    const good: number[] = [];
    for (let k = 0; k < (raw?.count ?? 0); k++) {
      if (!raw!.errors.has(k) && raw!.widths[k] === width) good.push(k);
    }
    const infer = (name: string) => {
      const c = this.#header.indexOf(name);
      const texts = good.map((k) => {
        const f = raw!.firsts[k] + c;
        return raw!.flags[f] === 0 && raw!.starts[f] === raw!.ends[f]
          ? ""
          : cellText(raw!.buf, raw!.starts[f], raw!.ends[f], raw!.flags[f]);
      });
      return inferCsvField(name, texts);
    };
    return { columns: this.#header, infer };
  }

  protected build(raw: CsvBatch, skip: number) {
    const batch = this.newBatch(raw.count);
    const builders = batch.builders;
    const width = this.#header.length;
    const { buf, starts, ends, flags, recStarts, recEnds, firsts, widths, errors } = raw;
    for (let k = Math.max(0, skip - raw.record); k < raw.count; k++) {
      const record = raw.record + k;
      const error = errors.size > 0 ? errors.get(k) : undefined;
      if (error) batch.end(record, error, buf, recStarts[k], recEnds[k]);
      else if (widths[k] !== width) {
        const why = `expected ${width} fields, found ${widths[k]}`;
        batch.end(record, why, buf, recStarts[k], recEnds[k]);
      } else {
        let why: string | null = null;
        let c = 0;
        for (; c < builders.length; c++) {
          const f = firsts[k] + c;
          why = c < width
            ? builders[c].cell(buf, starts[f], ends[f], flags[f])
            : builders[c].value(null);
          if (why !== null) break;
        }
        batch.end(record, why, buf, recStarts[k], recEnds[k], builders[c]?.field.name);
      }
    }
    return { batch, position: raw.record + raw.count };
  }
}

class JsonlSource extends TextSource<{ buf: Uint8Array; lines: JsonLine[] }> {
  #reader!: JsonlReader;
  #sampled = 0;

  protected start(input: ByteSource): Promise<void> {
    this.#reader = new JsonlReader(input, this.config.path, this.config);
    return Promise.resolve();
  }

  protected read(n: number) {
    return this.#reader.read(n);
  }

  protected sample(raw: { lines: JsonLine[] } | null) {
    const objects = (raw?.lines ?? []).flatMap((l) => typeof l.value === "string" ? [] : [l.value]);
    this.#sampled = raw?.lines.length ?? 0;
    const columns = [...new Set(objects.flatMap((o) => Object.keys(o)))];
    const infer = (name: string) => inferJsonField(name, objects.map((o) => o[name]));
    return { columns, infer };
  }

  /**
   * Appends one object's values; returns why it does not fit (never quoting a key or value:
   * the record's text is added for the handler only) and the column at fault, or null.
   */
  #fill(builders: ColumnBuilder[], value: Record<string, unknown>, known: Set<string>) {
    for (const key in value) {
      if (!known.has(key) && value[key] !== null) {
        const why = "a key is not a column: the schema was inferred from the first " +
          `${this.#sampled} lines (declare the field in the step's row type)`;
        return { why, column: undefined };
      }
    }
    for (const b of builders) {
      const why = b.value(value[b.field.name]);
      if (why !== null) return { why, column: b.field.name };
    }
    return null;
  }

  protected build(raw: { buf: Uint8Array; lines: JsonLine[] }, skip: number) {
    const batch = this.newBatch(raw.lines.length);
    const known = new Set(this.schema.fields.map((f) => f.name));
    for (const line of raw.lines) {
      if (line.record < skip) continue;
      const value = line.value;
      const failed = typeof value === "string"
        ? { why: value, column: undefined }
        : this.#fill(batch.builders, value, known);
      batch.end(line.record, failed?.why ?? null, raw.buf, line.start, line.end, failed?.column);
    }
    return { batch, position: raw.lines[raw.lines.length - 1].record + 1 };
  }
}

class ArrowFileSource extends FileSource {
  #table!: Table;

  async open(): Promise<this> {
    try {
      this.#table = tableFromIPC(await Deno.readFile(this.config.path));
    } catch (e) {
      throw new ConnectorError("config", `cannot read Arrow file \`${this.config.path}\`: ${e}`, {
        cause: e,
      });
    }
    this.schema = this.#table.schema;
    return this;
  }

  async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
    for (
      let at = this.skip;
      at < this.#table.numRows && !signal.aborted;
      at += this.ctx.batchRows
    ) {
      const end = Math.min(at + this.ctx.batchRows, this.#table.numRows);
      yield { table: this.#table.slice(at, end), errors: [], position: end };
      await Promise.resolve();
    }
  }
}

/** Parquet, streamed in batches from the row groups; see `_parquet.ts`. */
class ParquetSource extends FileSource {
  #input!: ParquetInput;

  async open(): Promise<this> {
    this.#input = await (await parquet()).openParquet(
      this.config.path,
      this.config.columns,
      this.ctx.schema,
    );
    this.schema = this.#input.schema;
    return this;
  }

  async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
    let at = 0;
    for await (const table of this.#input.batches(this.ctx.batchRows)) {
      if (signal.aborted) return;
      const from = Math.min(table.numRows, Math.max(0, this.skip - at));
      at += table.numRows;
      if (from < table.numRows) {
        yield { table: from > 0 ? table.slice(from) : table, errors: [], position: at };
      }
    }
  }
}

/** The columns of a schema whose types are known (an empty file still gets a header). */
function pinnedFields(schema: ColumnSpec[] | null): ArrowField[] {
  return (schema ?? []).flatMap((f) => f.type ? [{ ...f, type: f.type }] : []);
}

/** One JSON line; 64-bit integers are written as exact JSON numbers, never rounded. */
function jsonLine(row: Record<string, unknown>): string {
  return JSON.stringify(
    row,
    (key, v) => key === "" ? v : typeof v === "bigint" ? rawJson(v.toString()) : jsonValue(v),
  ) + "\n";
}

const TEMP_MARK = ".heddle-tmp-";
/** Output is written to the file in pieces of about this size. */
const DRAIN_BYTES = 1 << 20;
/** A temp file this young and still empty may be one another process is about to lock. */
const FRESH_MS = 5_000;

/**
 * Removes the hidden temporary outputs for `name` in `dir` that no live process holds. Every
 * writer keeps an exclusive lock on its temp file until it renames or removes it, and the
 * kernel drops a lock when its process dies (`kill -9` included), so an unlocked temp file is
 * a leftover. A lock is seen across PID namespaces, unlike a PID in the file name.
 */
async function removeStaleTemps(dir: string, name: string): Promise<void> {
  const prefix = `.${name}${TEMP_MARK}`;
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.isFile || !e.name.startsWith(prefix)) continue;
    const path = join(dir, e.name);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch {
      continue;
    }
    try {
      if (!(await file.tryLock(true))) continue;
      const info = await file.stat();
      const age = Date.now() - (info.mtime?.getTime() ?? 0);
      if (info.size === 0 && age < FRESH_MS) continue;
      await Deno.remove(path);
    } catch {
      // Gone already, or not ours to remove: leave it.
    } finally {
      file.close();
    }
  }
}

class FileSink implements Sink {
  readonly acknowledges = "on-flush";
  #temp: string;
  #file: Deno.FsFile | null = null;
  #columns: string[] | null = null;
  #arrow: Table[] = [];
  #done = false;
  /** Output not yet written to the file, drained past `DRAIN_BYTES` and before publishing. */
  #out = new ByteBuffer();

  constructor(private config: FileConfig, private ctx: ConnectorContext) {
    this.#temp = join(
      dirname(config.path),
      `.${basename(config.path)}${TEMP_MARK}${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
    );
  }

  async open(): Promise<this> {
    try {
      await Deno.mkdir(dirname(this.config.path), { recursive: true });
      await removeStaleTemps(dirname(this.config.path), basename(this.config.path));
      this.#file = await Deno.open(this.#temp, { write: true, createNew: true });
      // Held until the file is renamed or removed: it tells other processes it is live.
      await this.#file.lock(true);
    } catch (e) {
      throw new ConnectorError("config", `cannot write next to \`${this.config.path}\`: ${e}`, {
        cause: e,
      });
    }
    return this;
  }

  async #drain(): Promise<void> {
    const bytes = this.#out.buf.subarray(0, this.#out.at);
    let written = 0;
    while (written < bytes.length) written += await this.#file!.write(bytes.subarray(written));
    this.#out.at = 0;
  }

  async write(rows: Table): Promise<void> {
    if (this.config.format === "arrow" || this.config.format === "parquet") {
      // The batch lives in shared memory that is freed after this call: keep a copy.
      this.#arrow.push(tableFromIPC(tableToIPC(rows, "stream")));
      return;
    }
    if (this.config.format === "jsonl") this.#out.utf8(rawRowsOf(rows).map(jsonLine).join(""));
    else {
      if (!this.#columns) {
        this.#columns = rows.schema.fields.map((f) => f.name);
        csvHeader(this.#columns, this.#out);
      }
      csvRows(rows, this.#columns, this.#out);
    }
    if (this.#out.at >= DRAIN_BYTES) await this.#drain();
  }

  /** Publishes the output: renames the complete file into place (the run completed). */
  async flush(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    if (this.config.format === "arrow" || this.config.format === "parquet") {
      const table = this.#arrow.length > 0
        ? new Table(this.#arrow.flatMap((t) => t.batches))
        : new Table(toArrowSchema(pinnedFields(this.ctx.schema)));
      this.#out.buf = this.config.format === "arrow"
        ? tableToIPC(table, "file")
        : (await parquet()).parquetBytes(table);
      this.#out.at = this.#out.buf.length;
    } else if (this.config.format === "csv" && !this.#columns && this.ctx.schema) {
      csvHeader(this.ctx.schema.map((f) => f.name), this.#out);
    }
    await this.#drain();
    await this.#file!.sync();
    // Renamed while still locked, so no other process takes it for a leftover meanwhile.
    await Deno.rename(this.#temp, this.config.path);
    this.#file!.close();
    this.#file = null;
  }

  /** Discards the output: the previous file at `path`, if any, stays as it was. */
  async abort(): Promise<void> {
    this.#done = true;
    try {
      if (this.#file) await Deno.remove(this.#temp);
    } catch {
      // Nothing left to clean up.
    }
    try {
      this.#file?.close();
    } catch {
      // Already closed.
    }
    this.#file = null;
  }
}

/** `file.read {path, format}`: a bounded source of micro-batches. */
export const fileRead: ConnectorFactory = {
  role: "source",
  async open(ctx) {
    const config = fileConfig(ctx);
    if (config.format === "arrow") return await new ArrowFileSource(config, ctx).open();
    if (config.format === "parquet") return await new ParquetSource(config, ctx).open();
    if (config.format === "csv") return await new CsvSource(config, ctx).open();
    return await new JsonlSource(config, ctx).open();
  },
};

/** `file.write {path, format}`: a sink whose file appears, complete, when the run completes. */
export const fileWrite: ConnectorFactory = {
  role: "sink",
  async open(ctx) {
    return await new FileSink(fileConfig(ctx), ctx).open();
  },
};
