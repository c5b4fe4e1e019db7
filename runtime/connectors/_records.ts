/**
 * The byte window the CSV and JSONL readers scan: a file read in large chunks into one
 * growable buffer, so that records are found with byte searches and fields are referenced by
 * offsets, never copied into strings on the way. It exists to bound memory: a record longer
 * than `maxRecordBytes` stops the read with an error naming where it started, instead of
 * growing the buffer until the machine runs out (a 100 MB line without a newline).
 */
import { Decompress } from "fzstd";
import { isUtf8 } from "node:buffer";
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

/** Where a window's bytes come from: a file as it is, or decompressed on the way. */
export interface ByteSource {
  /** Fills the start of `into`; the number of bytes, or null at the end. */
  read(into: Uint8Array): Promise<number | null>;
  close(): void;
}

/** A readable stream of chunks as a `ByteSource`. */
class StreamSource implements ByteSource {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #pending: Uint8Array = new Uint8Array(0);

  constructor(stream: ReadableStream<Uint8Array>, private path: string) {
    this.#reader = stream.getReader();
  }

  async read(into: Uint8Array): Promise<number | null> {
    while (this.#pending.length === 0) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await this.#reader.read();
      } catch (e) {
        throw new ConnectorError(
          "config",
          `cannot decompress \`${this.path}\`: ${(e as Error).message ?? e}`,
          { cause: e },
        );
      }
      if (next.done) return null;
      this.#pending = next.value;
    }
    const n = Math.min(into.length, this.#pending.length);
    into.set(this.#pending.subarray(0, n));
    this.#pending = this.#pending.subarray(n);
    return n;
  }

  close(): void {
    this.#reader.cancel().catch(() => {});
  }
}

/** zstd frames decompressed with fzstd (pure TypeScript), as a stream transform. */
function zstdStream(): TransformStream<Uint8Array, Uint8Array> {
  let decoder: Decompress;
  return new TransformStream({
    start(controller) {
      // fzstd may reuse its output window: each chunk is copied before it is passed on.
      decoder = new Decompress((chunk) => controller.enqueue(chunk.slice()));
    },
    transform(chunk) {
      decoder.push(chunk);
    },
    flush() {
      decoder.push(new Uint8Array(0), true);
    },
  });
}

/**
 * Opens `path` for reading. A name ending in `.gz` is gunzipped and one ending in `.zst`
 * zstd-decompressed as it is read, so that limits and offsets count decompressed bytes.
 */
export async function openInput(path: string): Promise<ByteSource> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    throw new ConnectorError("config", `cannot open \`${path}\`: ${e}`, { cause: e });
  }
  if (path.endsWith(".gz")) {
    return new StreamSource(file.readable.pipeThrough(new DecompressionStream("gzip")), path);
  }
  if (path.endsWith(".zst")) return new StreamSource(file.readable.pipeThrough(zstdStream()), path);
  return {
    read: (into) => file.read(into),
    close: () => {
      try {
        file.close();
      } catch {
        // Already closed.
      }
    },
  };
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

  constructor(private file: ByteSource, private path: string, private limits: ReadLimits) {
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

const lenient = new TextDecoder();

/**
 * Whether `buf[start, end)` is valid UTF-8 (checked per batch; per record only on failure).
 * `isUtf8` validates without building a string: a fatal `TextDecoder` took ~300 ms for 39 MB,
 * this ~3 ms; both reject what the WHATWG decoder rejects (overlongs, surrogates, truncation).
 */
export function validUtf8(buf: Uint8Array, start: number, end: number): boolean {
  return isUtf8(buf.subarray(start, end));
}

/** The start of a record's text for an error message. */
export function excerpt(buf: Uint8Array, start: number, end: number): string {
  const text = lenient.decode(buf.subarray(start, Math.min(end, start + 480)));
  const line = text.replace(/\r?\n$/, "");
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}
