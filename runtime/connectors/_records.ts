/**
 * The byte window the CSV and JSONL readers scan: a file read in large chunks into one
 * growable buffer, so that records are found with byte searches and fields are referenced by
 * offsets, never copied into strings on the way. It exists to bound memory: a record longer
 * than `maxRecordBytes` stops the read with an error naming where it started, instead of
 * growing the buffer until the machine runs out (a 100 MB line without a newline).
 */
import { ConnectorError } from "./_types.ts";

const CHUNK = 1 << 20;

/** The default upper bound for one record (a CSV row or JSON line), in bytes. */
export const DEFAULT_MAX_RECORD_BYTES = 16 << 20;

/** Limits and modes of the text readers, parsed once from the step's config. */
export interface ReadLimits {
  maxRecordBytes: number;
  /** Bytes read at a time (tests use tiny chunks to put records across chunk boundaries). */
  chunkBytes?: number;
}

export class ByteWindow {
  /** The bytes; `[0, length)` are valid. Offsets stay valid until `compact`. */
  buf: Uint8Array;
  length = 0;
  eof = false;
  /** Bytes dropped by `compact` so far (the file offset of `buf[0]`). */
  dropped = 0;
  #bom = true;
  #chunk: number;

  constructor(private file: Deno.FsFile, private path: string, private limits: ReadLimits) {
    this.#chunk = limits.chunkBytes ?? CHUNK;
    this.buf = new Uint8Array(this.#chunk);
  }

  /** Drops the bytes before `from`, which the caller no longer references. */
  compact(from: number): void {
    if (from === 0) return;
    this.buf.copyWithin(0, from, this.length);
    this.length -= from;
    this.dropped += from;
  }

  /** Throws when the record at `[start, end)` is longer than the limit. */
  check(start: number, end: number, record: number): void {
    if (end - start <= this.limits.maxRecordBytes) return;
    throw new ConnectorError(
      "config",
      `\`${this.path}\`: record ${record + 1} (at byte ${this.dropped + start}) is longer than ` +
        `${this.limits.maxRecordBytes} bytes, the limit \`max_record_bytes\` sets ` +
        `(an unclosed quote, or a file without line breaks?)`,
    );
  }

  /**
   * Reads more bytes after a record starting at `recordStart` turned out to be incomplete.
   * The buffer at least doubles the incomplete part's room, so rescanning it stays linear.
   * Throws when the record is longer than the limit; returns false at the end of the file.
   */
  async more(recordStart: number, record: number): Promise<boolean> {
    if (this.eof) return false;
    const partial = this.length - recordStart;
    this.check(recordStart, this.length, record);
    const want = this.length + Math.max(this.#chunk, partial);
    if (want > this.buf.length) {
      const bigger = new Uint8Array(Math.max(want, this.buf.length * 2));
      bigger.set(this.buf.subarray(0, this.length));
      this.buf = bigger;
    }
    while (this.length < want) {
      const n = await this.file.read(this.buf.subarray(this.length, want));
      if (n === null) {
        this.eof = true;
        break;
      }
      this.length += n;
    }
    if (this.#bom && this.length >= 3) {
      this.#bom = false;
      // A UTF-8 byte order mark is not part of the first header name.
      if (this.buf[0] === 0xef && this.buf[1] === 0xbb && this.buf[2] === 0xbf) {
        this.buf.copyWithin(0, 3, this.length);
        this.length -= 3;
        this.dropped += 3;
      }
    }
    return true;
  }
}

const fatal = new TextDecoder("utf-8", { fatal: true });
const lenient = new TextDecoder();

/** Whether `buf[start, end)` is valid UTF-8 (checked per batch; per record only on failure). */
export function validUtf8(buf: Uint8Array, start: number, end: number): boolean {
  try {
    fatal.decode(buf.subarray(start, end));
    return true;
  } catch {
    return false;
  }
}

/** The start of a record's text for an error message. */
export function excerpt(buf: Uint8Array, start: number, end: number): string {
  const text = lenient.decode(buf.subarray(start, Math.min(end, start + 480)));
  const line = text.replace(/\r?\n$/, "");
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}
