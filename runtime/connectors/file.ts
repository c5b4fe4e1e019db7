/**
 * `fhub/file`: reading CSV, JSON Lines and Arrow IPC files as a bounded source, and writing
 * them as a sink. It exists so that a program runs with no outside service at all (the
 * quickstart, tests). A malformed line must never crash a run: it becomes a row error that
 * the executor routes to a handler. A written file must never be seen half-written: rows go
 * to a temporary file that is renamed into place only when the sink is flushed.
 */
import { type Schema, Table, tableFromIPC, tableToIPC } from "apache-arrow";
import { dirname, isAbsolute, join } from "node:path";
import type { ArrowField } from "../../compiler/modules/mod.ts";
import { jsonValue, rowsOf, tableFromRows, toArrowSchema } from "./_arrow.ts";
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

type Format = "csv" | "jsonl" | "arrow";

interface FileConfig {
  path: string;
  format: Format;
}

function fileConfig(ctx: ConnectorContext): FileConfig {
  const { path, format } = ctx.config;
  if (typeof path !== "string" || path === "") {
    throw new ConnectorError("config", "`path` must be a non-empty string");
  }
  if (format !== "csv" && format !== "jsonl" && format !== "arrow") {
    throw new ConnectorError(
      "config",
      `\`format\` must be one of \`csv\`, \`jsonl\`, \`arrow\`; found ${JSON.stringify(format)}`,
    );
  }
  return { path: isAbsolute(path) ? path : join(ctx.baseDir, path), format };
}

/** Splits text into CSV records: a newline inside double quotes does not end a record. */
async function* records(file: Deno.FsFile): AsyncGenerator<string> {
  let pending = "";
  let quoted = false;
  let scanFrom = 0;
  for await (const chunk of file.readable.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let start = 0;
    for (let i = scanFrom; i < pending.length; i++) {
      const ch = pending[i];
      if (ch === '"') quoted = !quoted;
      else if (ch === "\n" && !quoted) {
        yield pending.slice(start, i).replace(/\r$/, "");
        start = i + 1;
      }
    }
    pending = pending.slice(start);
    scanFrom = pending.length;
  }
  if (pending.trim() !== "") yield pending.replace(/\r$/, "");
}

function parseCsvRecord(text: string): string[] | string {
  const cells: string[] = [];
  let i = 0;
  while (true) {
    if (text[i] === '"') {
      let value = "";
      i++;
      while (true) {
        const end = text.indexOf('"', i);
        if (end < 0) return "unterminated quoted field";
        value += text.slice(i, end);
        i = end + 1;
        if (text[i] === '"') {
          value += '"';
          i++;
        } else break;
      }
      cells.push(value);
      if (i < text.length && text[i] !== ",") return `unexpected \`${text[i]}\` after a quote`;
    } else {
      const end = text.indexOf(",", i);
      cells.push(text.slice(i, end < 0 ? text.length : end));
      i = end < 0 ? text.length : end;
    }
    if (i >= text.length) return cells;
    i++;
  }
}

function excerpt(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

type Cell = string | number | boolean | null | object;

/** The Arrow type a column's first values suggest; text when in doubt. */
function inferField(name: string, values: Cell[]): ArrowField {
  const present = values.filter((v) => v !== null && v !== "");
  const text = (v: Cell) => typeof v === "string" ? v.trim() : JSON.stringify(v);
  const is = (re: RegExp) => present.length > 0 && present.every((v) => re.test(text(v)));
  const type = is(/^[+-]?\d{1,15}$/)
    ? "int64"
    : is(/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/)
    ? "float64"
    : is(/^(true|false)$/)
    ? "bool"
    : "utf8";
  return { name, type: { kind: "primitive", name: type }, nullable: true };
}

/**
 * The schema of the rows: fields the compiler pinned keep their declared type; other
 * columns found in the file are inferred from the first batch and appended in file order.
 */
function resolveSchema(
  pinned: ColumnSpec[] | null,
  columns: string[],
  sample: Record<string, Cell>[],
): Schema {
  const byName = new Map((pinned ?? []).map((f) => [f.name, f]));
  const names = [
    ...columns,
    ...(pinned ?? []).map((f) => f.name).filter((n) => !columns.includes(n)),
  ];
  return toArrowSchema(names.map((name) => {
    const spec = byName.get(name);
    const inferred = inferField(name, sample.map((r) => r[name] ?? null));
    return spec?.type ? { name, type: spec.type, nullable: spec.nullable } : inferred;
  }));
}

/** Builds a typed batch; rows that do not fit the schema become row errors, one by one. */
function typedBatch(
  schema: Schema,
  rows: { record: number; raw: string; value: Record<string, Cell> }[],
  errors: SourceRowError[],
  where: string,
): Table {
  try {
    return tableFromRows(schema, rows.map((r) => r.value));
  } catch {
    const good: Record<string, Cell>[] = [];
    for (const r of rows) {
      try {
        tableFromRows(schema, [r.value]);
        good.push(r.value);
      } catch (e) {
        errors.push(recordError(where, r.record, (e as Error).message, r.raw));
      }
    }
    errors.sort((a, b) => a.record - b.record);
    return tableFromRows(schema, good);
  }
}

function recordError(where: string, record: number, why: string, raw: string): SourceRowError {
  return { record, message: `${where}: record ${record + 1}: ${why}: ${excerpt(raw)}` };
}

class LineSource implements Source {
  readonly bounded = true;
  schema!: Schema;
  committed: Position | null = null;
  #header: string[] | null = null;
  #iterator!: AsyncGenerator<string>;
  #file!: Deno.FsFile;
  #record = 0;
  #first: { record: number; raw: string }[] = [];

  constructor(private config: FileConfig, private ctx: ConnectorContext) {}

  async open(): Promise<this> {
    try {
      this.#file = await Deno.open(this.config.path, { read: true });
    } catch (e) {
      throw new ConnectorError("config", `cannot open \`${this.config.path}\`: ${e}`, {
        cause: e,
      });
    }
    this.#iterator = records(this.#file);
    if (this.config.format === "csv") {
      const head = await this.#iterator.next();
      const cells = head.done ? [] : parseCsvRecord(head.value);
      if (typeof cells === "string" || cells.length === 0) {
        throw new ConnectorError("config", `\`${this.config.path}\` has no CSV header line`);
      }
      this.#header = cells.map((c) => c.trim());
    }
    const skip = typeof this.ctx.resumeAfter === "number" ? this.ctx.resumeAfter : 0;
    this.#first = await this.#take(this.ctx.batchRows, skip);
    const sample = this.#first.map((r) => this.#parse(r.raw)).filter((r) =>
      typeof r !== "string"
    ) as Record<string, Cell>[];
    const columns = this.#header ?? [...new Set(sample.flatMap((r) => Object.keys(r)))];
    this.schema = resolveSchema(this.ctx.schema, columns, sample);
    return this;
  }

  async #take(n: number, skip = 0): Promise<{ record: number; raw: string }[]> {
    const out: { record: number; raw: string }[] = [];
    while (out.length < n) {
      const next = await this.#iterator.next();
      if (next.done) break;
      if (next.value.trim() === "") continue;
      const record = this.#record++;
      if (record >= skip) out.push({ record, raw: next.value });
    }
    return out;
  }

  #parse(raw: string): Record<string, Cell> | string {
    if (this.#header) {
      const cells = parseCsvRecord(raw);
      if (typeof cells === "string") return cells;
      if (cells.length !== this.#header.length) {
        return `expected ${this.#header.length} fields, found ${cells.length}`;
      }
      return Object.fromEntries(this.#header.map((h, i) => [h, cells[i] === "" ? null : cells[i]]));
    }
    try {
      const value = JSON.parse(raw);
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        return "expected a JSON object";
      }
      return value;
    } catch (e) {
      return `invalid JSON: ${(e as Error).message}`;
    }
  }

  async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
    let chunk = this.#first;
    while (chunk.length > 0 && !signal.aborted) {
      const errors: SourceRowError[] = [];
      const rows: { record: number; raw: string; value: Record<string, Cell> }[] = [];
      for (const r of chunk) {
        const parsed = this.#parse(r.raw);
        if (typeof parsed === "string") {
          errors.push(recordError(this.config.path, r.record, parsed, r.raw));
        } else rows.push({ ...r, value: parsed });
      }
      const table = typedBatch(this.schema, rows, errors, this.config.path);
      yield { table, errors, position: chunk[chunk.length - 1].record + 1 };
      chunk = await this.#take(this.ctx.batchRows);
    }
  }

  commit(position: Position): Promise<void> {
    this.committed = position;
    return Promise.resolve();
  }

  close(): Promise<void> {
    try {
      this.#file?.close();
    } catch {
      // Already closed when the reader ran to the end of the file.
    }
    return Promise.resolve();
  }
}

class ArrowFileSource implements Source {
  readonly bounded = true;
  schema!: Schema;
  committed: Position | null = null;
  #table!: Table;

  constructor(private config: FileConfig, private ctx: ConnectorContext) {}

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
    const start = typeof this.ctx.resumeAfter === "number" ? this.ctx.resumeAfter : 0;
    for (let at = start; at < this.#table.numRows && !signal.aborted; at += this.ctx.batchRows) {
      const end = Math.min(at + this.ctx.batchRows, this.#table.numRows);
      yield { table: this.#table.slice(at, end), errors: [], position: end };
      await Promise.resolve();
    }
  }

  commit(position: Position): Promise<void> {
    this.committed = position;
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The columns of a schema whose types are known (an empty file still gets a header). */
function pinnedFields(schema: ColumnSpec[] | null): ArrowField[] {
  return (schema ?? []).flatMap((f) => f.type ? [{ ...f, type: f.type }] : []);
}

function csvCell(value: unknown): string {
  const v = jsonValue(value);
  if (v === null || v === undefined) return "";
  const text = typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

class FileSink implements Sink {
  readonly acknowledges = "on-flush";
  #temp: string;
  #file: Deno.FsFile | null = null;
  #columns: string[] | null = null;
  #arrow: Table[] = [];
  #done = false;
  #encoder = new TextEncoder();

  constructor(private config: FileConfig, private ctx: ConnectorContext) {
    const name = config.path.slice(config.path.lastIndexOf("/") + 1);
    this.#temp = join(
      dirname(config.path),
      `.${name}.heddle-tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
    );
  }

  async open(): Promise<this> {
    try {
      await Deno.mkdir(dirname(this.config.path), { recursive: true });
      this.#file = await Deno.open(this.#temp, { write: true, createNew: true });
    } catch (e) {
      throw new ConnectorError("config", `cannot write next to \`${this.config.path}\`: ${e}`, {
        cause: e,
      });
    }
    return this;
  }

  async #append(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? this.#encoder.encode(data) : data;
    let written = 0;
    while (written < bytes.length) written += await this.#file!.write(bytes.subarray(written));
  }

  async write(rows: Table): Promise<void> {
    if (this.config.format === "arrow") {
      // The batch lives in shared memory that is freed after this call: keep a copy.
      this.#arrow.push(tableFromIPC(tableToIPC(rows, "stream")));
      return;
    }
    const objects = rowsOf(rows);
    if (this.config.format === "jsonl") {
      await this.#append(objects.map((o) => JSON.stringify(o) + "\n").join(""));
      return;
    }
    if (!this.#columns) {
      this.#columns = rows.schema.fields.map((f) => f.name);
      await this.#append(this.#columns.map(csvCell).join(",") + "\n");
    }
    const columns = this.#columns;
    await this.#append(
      objects.map((o) => columns.map((c) => csvCell(o[c])).join(",") + "\n").join(""),
    );
  }

  async flush(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    if (this.config.format === "arrow") {
      const table = this.#arrow.length > 0
        ? new Table(this.#arrow.flatMap((t) => t.batches))
        : new Table(toArrowSchema(pinnedFields(this.ctx.schema)));
      await this.#append(tableToIPC(table, "file"));
    } else if (this.config.format === "csv" && !this.#columns && this.ctx.schema) {
      await this.#append(this.ctx.schema.map((f) => csvCell(f.name)).join(",") + "\n");
    }
    this.#file!.close();
    this.#file = null;
    await Deno.rename(this.#temp, this.config.path);
  }

  async abort(): Promise<void> {
    this.#done = true;
    try {
      this.#file?.close();
      this.#file = null;
      await Deno.remove(this.#temp);
    } catch {
      // Nothing left to clean up.
    }
  }
}

/** `file.read {path, format}`: a bounded source of micro-batches. */
export const fileRead: ConnectorFactory = {
  role: "source",
  async open(ctx) {
    const config = fileConfig(ctx);
    return config.format === "arrow"
      ? await new ArrowFileSource(config, ctx).open()
      : await new LineSource(config, ctx).open();
  },
};

/** `file.write {path, format}`: a sink that appears atomically when flushed. */
export const fileWrite: ConnectorFactory = {
  role: "sink",
  async open(ctx) {
    return await new FileSink(fileConfig(ctx), ctx).open();
  },
};
