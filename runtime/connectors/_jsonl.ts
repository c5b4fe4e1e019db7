/**
 * The JSON Lines tokenizer: one record per LF-terminated line (a trailing CR dropped), split
 * with a byte search; quotes are never looked at, since JSON text cannot hold a raw newline.
 * Each line is parsed with `JSON.parse`, and integers beyond 2^53 are read from their source
 * text as BigInt, so that a 19-digit id is never rounded to the nearest double.
 */
import { type ByteSource, ByteWindow, type ReadLimits } from "./_records.ts";

const LF = 10;
const CR = 13;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Any run of 16 digits: the only lines that may hold an integer a double cannot. */
const LONG_DIGITS = /\d{16}/;

function exactIntegers(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== "number" || Number.isSafeInteger(value)) return value;
  const source = context?.source;
  return source !== undefined && /^-?\d+$/.test(source) ? BigInt(source) : value;
}

/** A parsed line: the value, or why it is not a JSON object. */
export function parseJsonLine(text: string): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = LONG_DIGITS.test(text)
      ? JSON.parse(text, exactIntegers as (k: string, v: unknown) => unknown)
      : JSON.parse(text);
  } catch (e) {
    return `invalid JSON: ${(e as Error).message}`;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return "expected a JSON object";
  }
  return value as Record<string, unknown>;
}

export interface JsonLine {
  /** Zero-based number among the non-blank lines. */
  record: number;
  start: number;
  end: number;
  /** The parsed object, or why the line is not one. */
  value: Record<string, unknown> | string;
}

function blank(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c !== 32 && c !== 9 && c !== CR) return false;
  }
  return true;
}

/** Reads a JSON Lines file batch by batch. */
export class JsonlReader {
  #window: ByteWindow;
  #pos = 0;
  #record = 0;

  constructor(input: ByteSource, path: string, limits: ReadLimits) {
    this.#window = new ByteWindow(input, path, limits);
  }

  /** The next batch of at most `max` non-blank lines, or null at the end. */
  async read(max: number): Promise<{ buf: Uint8Array; lines: JsonLine[] } | null> {
    const w = this.#window;
    if (this.#pos > w.buf.length >> 1) {
      w.compact(this.#pos);
      this.#pos = 0;
    }
    const lines: JsonLine[] = [];
    while (lines.length < max) {
      let nl = w.buf.indexOf(LF, this.#pos);
      if (nl >= w.length) nl = -1;
      if (nl < 0 && !w.eof) {
        await w.more(this.#pos, this.#record);
        continue;
      }
      if (nl < 0 && this.#pos >= w.length) break;
      const end = nl < 0 ? w.length : nl + 1;
      w.check(this.#pos, end, this.#record);
      const textEnd = nl < 0 ? end : w.buf[nl - 1] === CR && nl > this.#pos ? nl - 1 : nl;
      if (!blank(w.buf, this.#pos, textEnd)) {
        let value: JsonLine["value"];
        try {
          value = parseJsonLine(utf8.decode(w.buf.subarray(this.#pos, textEnd)));
        } catch {
          value = "invalid UTF-8";
        }
        lines.push({ record: this.#record++, start: this.#pos, end, value });
      }
      this.#pos = end;
    }
    return lines.length === 0 ? null : { buf: w.buf, lines };
  }
}
