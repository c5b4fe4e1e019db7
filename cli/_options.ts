/**
 * Options shared by several commands, defined once so that every command spells and
 * validates them the same way.
 */
import { InvalidArgumentError, Option } from "@commander-js/extra-typings";

/** `--output text|json`: how a reporting command prints its results. */
export function outputOption() {
  return new Option("-o, --output <format>", "output format").choices(["text", "json"] as const)
    .default("text" as const);
}

/** Appends a worked example to a command's `--help`. */
export function example(...lines: string[]): string {
  return `\nExample:\n${lines.map((l) => `  $ ${l}`).join("\n")}\n`;
}

/** Parses a whole number greater than zero (for commander option parsers). */
export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a whole number above 0, found \`${value}\``);
  }
  return n;
}

const units: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a duration such as `500ms`, `30s` or `5m` into milliseconds (above 0). */
export function parseDuration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim());
  const ms = match ? Math.round(Number(match[1]) * durationUnits[match[2]]) : 0;
  if (!(ms >= 1 && ms <= 2 ** 31 - 1)) {
    throw new InvalidArgumentError(
      `expected a duration such as 500ms, 30s or 5m, found \`${value}\``,
    );
  }
  return ms;
}

/**
 * The largest size accepted (1 PiB): far above any machine's memory, and small enough that
 * byte counts stay exact integers. Larger values are typos, not budgets.
 */
export const MAX_BYTES = 2 ** 50;

/** Parses a size such as `256MiB`, `1GB` or `1048576`: a whole number of bytes, 1 to 1PiB. */
export function parseBytes(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match ? units[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new InvalidArgumentError(`expected a size such as 256MiB or 1GB, found \`${value}\``);
  }
  const bytes = Math.round(Number(match[1]) * unit);
  if (!(bytes >= 1 && bytes <= MAX_BYTES)) {
    throw new InvalidArgumentError(
      `expected a size from 1 byte to 1PiB (such as 256MiB), found \`${value}\``,
    );
  }
  return bytes;
}
