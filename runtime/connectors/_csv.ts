/**
 * The CSV tokenizer: RFC 4180 over bytes. A double quote opens a quoted field only at the
 * start of a field; inside one, `""` is a quote and commas, CR and LF are data; a record ends
 * at an unquoted LF, CRLF or CR. It exists because record boundaries decide everything after:
 * a quote in the middle of an unquoted field (`5" screen`) must never swallow the rest of the
 * file. Such a field is a row error in the default strict mode and literal text in lenient
 * mode (Python's `csv` reads it the same way); either way the next line is a new record.
 */
import { ESCAPED, MESSY, QUOTED } from "./_columns.ts";
import { type ByteSource, ByteWindow, type ReadLimits, validUtf8 } from "./_records.ts";

const COMMA = 44;
const QUOTE = 34;
const LF = 10;
const CR = 13;

/** Stop a batch early once it holds this many bytes, so a batch of long rows stays bounded. */
const BATCH_BYTES = 32 << 20;

export interface CsvOptions extends ReadLimits {
  /** Keep bare quotes and text after a closing quote as data instead of rejecting the row. */
  lenient: boolean;
}

/**
 * Records found in one pass, as parallel arrays (one object per record cost more than the
 * parse: 1M of them per million rows). Record `k` of the batch is data record
 * `record + k` (zero-based, the header and blank lines not counted); its bytes are
 * `buf[recStarts[k], recEnds[k])`, its fields `firsts[k]` .. `firsts[k] + widths[k] - 1` of
 * `starts`/`ends`/`flags`; `errors` says why a malformed record is (by `k`). Offsets point
 * into `buf` and are valid until the next `read`.
 */
export interface CsvBatch {
  buf: Uint8Array;
  record: number;
  count: number;
  recStarts: Int32Array;
  recEnds: Int32Array;
  firsts: Int32Array;
  widths: Int32Array;
  errors: Map<number, string>;
  starts: Int32Array;
  ends: Int32Array;
  flags: Uint8Array;
}

class RecordList {
  starts = new Int32Array(1024);
  ends = new Int32Array(1024);
  firsts = new Int32Array(1024);
  widths = new Int32Array(1024);
  count = 0;

  push(start: number, end: number, first: number, width: number): void {
    if (this.count === this.starts.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.starts = grow(this.starts), this.ends = grow(this.ends);
      this.firsts = grow(this.firsts), this.widths = grow(this.widths);
    }
    const k = this.count++;
    this.starts[k] = start;
    this.ends[k] = end;
    this.firsts[k] = first;
    this.widths[k] = width;
  }
}

class FieldList {
  starts = new Int32Array(4096);
  ends = new Int32Array(4096);
  flags = new Uint8Array(4096);
  count = 0;

  push(start: number, end: number, flags: number): void {
    if (this.count === this.starts.length) {
      const n = this.count * 2;
      const s = new Int32Array(n), e = new Int32Array(n), f = new Uint8Array(n);
      s.set(this.starts), e.set(this.ends), f.set(this.flags);
      this.starts = s, this.ends = e, this.flags = f;
    }
    this.starts[this.count] = start;
    this.ends[this.count] = end;
    this.flags[this.count++] = flags;
  }
}

/** Bytes an unquoted field must look at: END for a comma, CR or LF, BARE for a quote. */
const END = 1, BARE = 2;
const SPECIAL = new Uint8Array(256);
SPECIAL[COMMA] = SPECIAL[LF] = SPECIAL[CR] = END;
SPECIAL[QUOTE] = BARE;

function isEnd(c: number): boolean {
  return c === COMMA || c === LF || c === CR;
}

/**
 * Scans one record starting at `from`. Returns the offset after its line terminator, or -1
 * when `buf[from, len)` ends inside the record and more bytes may follow (`eof` false).
 */
function scanRecord(
  buf: Uint8Array,
  from: number,
  len: number,
  eof: boolean,
  lenient: boolean,
  out: FieldList,
  problem: { error: string | null },
): number {
  let i = from;
  let n = 0;
  while (true) {
    const start = i;
    let flags = 0;
    if (i < len && buf[i] === QUOTE) {
      flags = QUOTED;
      let j = i + 1;
      while (true) {
        let q = buf.indexOf(QUOTE, j);
        if (q >= len) q = -1;
        if (q < 0) {
          if (!eof) return -1;
          problem.error ??= `field ${n + 1}: the quote that opens it is never closed`;
          out.push(start, len, flags | MESSY);
          return len;
        }
        if (q + 1 === len && !eof) return -1;
        if (q + 1 < len && buf[q + 1] === QUOTE) {
          flags |= ESCAPED;
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      if (i < len && !isEnd(buf[i])) {
        if (!lenient) {
          problem.error ??= `field ${n + 1}: unexpected \`${
            String.fromCharCode(buf[i])
          }\` after the closing quote`;
        }
        flags |= MESSY;
        while (i < len && !isEnd(buf[i])) i++;
        if (i === len && !eof) return -1;
      }
    } else {
      let bare = false;
      for (; i < len; i++) {
        // One table load per byte instead of four comparisons: most bytes are ordinary.
        const c = SPECIAL[buf[i]];
        if (c === 0) continue;
        if (c === END) break;
        bare = true;
      }
      if (i === len && !eof) return -1;
      if (bare && !lenient) {
        problem.error ??= `field ${n + 1}: a \`"\` inside an unquoted field ` +
          `(quote the field and double the quote, or read with \`quotes: "lenient"\`)`;
      }
    }
    out.push(start, i, flags);
    n++;
    if (i === len) return len;
    if (buf[i] === COMMA) {
      i++;
      continue;
    }
    if (buf[i] === CR) {
      if (i + 1 === len && !eof) return -1;
      return buf[i + 1] === LF && i + 1 < len ? i + 2 : i + 1;
    }
    return i + 1;
  }
}

/** Reads a CSV file batch by batch; the first record can be taken as the header. */
export class CsvReader {
  #window: ByteWindow;
  #fields = new FieldList();
  #records = new RecordList();
  #pos = 0;
  #record = 0;
  #problem: { error: string | null } = { error: null };

  constructor(input: ByteSource, path: string, private options: CsvOptions) {
    this.#window = new ByteWindow(input, path, options);
  }

  /** The next batch of at most `max` records (blank lines skipped), or null at the end. */
  async read(max: number): Promise<CsvBatch | null> {
    const w = this.#window;
    // Moving the unread bytes to the front costs a copy: only once half the buffer is read.
    if (this.#pos > w.buf.length >> 1) {
      w.compact(this.#pos);
      this.#pos = 0;
    }
    const records = this.#records;
    records.count = 0;
    const errors = new Map<number, string>();
    const f = this.#fields;
    f.count = 0;
    const first = this.#record;
    while (records.count < max && this.#pos < BATCH_BYTES) {
      if (this.#pos >= w.length) {
        if (!(await w.more(this.#pos, this.#record))) break;
        continue;
      }
      const from = f.count;
      this.#problem.error = null;
      const end = scanRecord(
        w.buf,
        this.#pos,
        w.length,
        w.eof,
        this.options.lenient,
        f,
        this.#problem,
      );
      if (end < 0) {
        f.count = from;
        await w.more(this.#pos, this.#record);
        continue;
      }
      w.check(this.#pos, end, this.#record);
      const blank = f.count - from === 1 && f.starts[from] === f.ends[from] &&
        f.flags[from] === 0;
      if (!blank) {
        if (this.#problem.error !== null) errors.set(records.count, this.#problem.error);
        records.push(this.#pos, end, from, f.count - from);
        this.#record++;
      } else f.count = from;
      this.#pos = end;
    }
    const n = records.count;
    if (n === 0) return null;
    const buf = w.buf;
    if (!validUtf8(buf, records.starts[0], records.ends[n - 1])) {
      for (let k = 0; k < n; k++) {
        if (!errors.has(k) && !validUtf8(buf, records.starts[k], records.ends[k])) {
          errors.set(k, "invalid UTF-8");
        }
      }
    }
    return {
      buf,
      record: first,
      count: n,
      recStarts: records.starts,
      recEnds: records.ends,
      firsts: records.firsts,
      widths: records.widths,
      errors,
      starts: f.starts,
      ends: f.ends,
      flags: f.flags,
    };
  }

  /** Takes the next record as the header (it does not count as a data record). */
  async header(): Promise<CsvBatch | null> {
    const batch = await this.read(1);
    if (!batch) return null;
    this.#record--;
    return batch;
  }
}
