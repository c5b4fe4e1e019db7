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

/** Whether a parsed object may hold an integer that a double rounded. */
function mayBeRounded(value: Record<string, unknown>, text: string): boolean {
  for (const key in value) {
    const v = value[key];
    if (typeof v === "number") {
      if (Number.isInteger(v) && !Number.isSafeInteger(v)) return true;
    } else if (v !== null && typeof v === "object" && LONG_DIGITS.test(text)) return true;
  }
  return false;
}

/**
 * Why a text is not JSON, without the text: V8's messages quote the input, and this reason
 * reaches the control plane (the handler's rows carry the record's text).
 */
export function invalidJson(error: unknown): string {
  const at = /position (\d+)/.exec((error as Error)?.message ?? "")?.[1];
  return at === undefined ? "invalid JSON" : `invalid JSON at character ${Number(at) + 1}`;
}

/** A parsed line: the value, or why it is not a JSON object. */
export function parseJsonLine(text: string): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return invalidJson(e);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return "expected a JSON object";
  }
  const object = value as Record<string, unknown>;
  // Parsed again, digits kept, only when a value may have lost some.
  return mayBeRounded(object, text)
    ? JSON.parse(text, exactIntegers as (k: string, v: unknown) => unknown)
    : object;
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
    const from = this.#pos;
    const bounds: number[] = [];
    while (bounds.length < 2 * max) {
      let nl = w.buf.indexOf(LF, this.#pos);
      if (nl >= w.length) nl = -1;
      if (nl < 0 && !w.eof) {
        await w.more(this.#pos, this.#record + bounds.length / 2);
        continue;
      }
      if (nl < 0 && this.#pos >= w.length) break;
      const end = nl < 0 ? w.length : nl + 1;
      w.check(this.#pos, end, this.#record + bounds.length / 2);
      if (!blank(w.buf, this.#pos, nl < 0 ? end : nl)) bounds.push(this.#pos, end);
      this.#pos = end;
    }
    if (bounds.length === 0) return null;
    // One decode for the whole batch; its lines are the byte lines, since LF is one byte.
    let text: string | null = null;
    try {
      text = utf8.decode(w.buf.subarray(from, this.#pos));
    } catch {
      // Some line is not UTF-8: decoded one by one below, to find which.
    }
    const texts = text === null ? null : text.split("\n");
    const lines: JsonLine[] = [];
    let t = 0;
    let at = from;
    for (let k = 0; k < bounds.length; k += 2) {
      const [start, end] = [bounds[k], bounds[k + 1]];
      let line: string | null;
      if (texts) {
        // Skip the blank lines between kept ones (each is one entry of the split).
        for (; at < start; t++) at = w.buf.indexOf(LF, at) + 1;
        line = texts[t++];
        at = end;
      } else {
        try {
          line = utf8.decode(w.buf.subarray(start, end));
        } catch {
          line = null;
        }
      }
      const value = line === null ? "invalid UTF-8" : parseJsonLine(line);
      lines.push({ record: this.#record++, start, end, value });
    }
    return { buf: w.buf, lines };
  }
}
