/**
 * Cron expressions and `--every` durations, parsed once into a validated form and asked for
 * the next time they match. Written here rather than taken from npm because the maintained
 * parsers accept what a five-field schedule must refuse (cron-parser takes three fields,
 * croner takes six or seven with seconds and years) and their errors do not say which field
 * is wrong in cron's own terms (croner reports day 0 as `day: -1` and month 13 as
 * `month: 12`). This module accepts exactly the five fields of crontab(5), in UTC, and names
 * the field, the value and the allowed range in every error. It never reads a clock: callers
 * pass the time, so tests can too.
 */

/** A five-field cron expression, validated: the values each field allows. */
export interface CronSpec {
  /** The expression as given, for display. */
  source: string;
  minutes: ReadonlySet<number>;
  hours: ReadonlySet<number>;
  days: ReadonlySet<number>;
  months: ReadonlySet<number>;
  /** 0 is Sunday (7 is accepted for it too). */
  weekdays: ReadonlySet<number>;
  /**
   * Whether day of month and day of week both start with something other than `*`: then a
   * day matching either counts; otherwise a day must match both (crontab(5), Vixie cron).
   */
  eitherDay: boolean;
}

/** An expression or duration that cannot be used; the message names the field and why. */
export class ScheduleSyntaxError extends Error {}

interface Field {
  name: string;
  min: number;
  max: number;
  names?: string[];
}

const FIELDS: Field[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day-of-month", min: 1, max: 31 },
  {
    name: "month",
    min: 1,
    max: 12,
    names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
  },
  { name: "day-of-week", min: 0, max: 7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] },
];

const MACROS: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

/** Parses a cron expression (five fields, or a macro such as `@hourly`). */
export function parseCron(expression: string): CronSpec {
  const source = expression.trim();
  const expanded = MACROS[source.toLowerCase()] ?? source;
  if (expanded.startsWith("@")) {
    throw new ScheduleSyntaxError(
      `unknown cron macro \`${source}\` (one of: ${Object.keys(MACROS).join(", ")})`,
    );
  }
  const parts = expanded.split(/\s+/).filter((p) => p !== "");
  if (parts.length !== 5) {
    throw new ScheduleSyntaxError(
      `the cron expression \`${source}\` has ${parts.length} field(s); it needs 5: minute, ` +
        "hour, day-of-month, month, day-of-week (e.g. `*/5 * * * *`)",
    );
  }
  const [minutes, hours, days, months, weekdays] = parts.map((p, i) => parseField(p, FIELDS[i]));
  // Sunday is 0 or 7.
  if (weekdays.delete(7)) weekdays.add(0);
  const eitherDay = !parts[2].startsWith("*") && !parts[4].startsWith("*");
  const spec = { source, minutes, hours, days, months, weekdays, eitherDay };
  if (nextCron(spec, Date.UTC(2000, 0, 1)) === null) {
    throw new ScheduleSyntaxError(
      `the cron expression \`${source}\` names no date that exists (day-of-month ` +
        `\`${parts[2]}\` never falls in month \`${parts[3]}\`)`,
    );
  }
  return spec;
}

function parseField(text: string, field: Field): Set<number> {
  const values = new Set<number>();
  const fail = (problem: string) =>
    new ScheduleSyntaxError(`the ${field.name} field \`${text}\`: ${problem}`);
  for (const item of text.split(",")) {
    const match = /^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:\/(\d+))?$/i.exec(item);
    if (!match) {
      throw fail(`\`${item}\` is not a value, a range \`a-b\`, \`*\` or a step \`/n\``);
    }
    const step = match[2] === undefined ? 1 : Number(match[2]);
    if (step < 1) throw fail(`the step \`/${match[2]}\` must be 1 or more`);
    let from = field.min;
    let to = field.max;
    if (match[1] !== "*") {
      const [a, b] = match[1].split("-");
      from = valueOf(a, field, fail);
      // `a/n` runs from a to the field's end, as in Vixie cron.
      to = b !== undefined ? valueOf(b, field, fail) : match[2] !== undefined ? field.max : from;
      if (from > to) throw fail(`the range \`${match[1]}\` goes backwards`);
    }
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return values;
}

function valueOf(
  text: string,
  field: Field,
  fail: (problem: string) => ScheduleSyntaxError,
): number {
  const named = field.names?.indexOf(text.toLowerCase()) ?? -1;
  if (named >= 0) return named + (field.name === "month" ? 1 : 0);
  const names = field.names ? ` or ${field.names[0]}-${field.names.at(-1)}` : "";
  const range = `${field.min}-${field.max}${names}`;
  if (!/^\d+$/.test(text)) throw fail(`\`${text}\` is not a number (expected ${range})`);
  const n = Number(text);
  if (n < field.min || n > field.max) throw fail(`\`${text}\` is out of range: expected ${range}`);
  return n;
}

const MINUTE = 60_000;
/** How far `nextCron` looks: past 8 years, Feb 29 has come round twice. */
const HORIZON_MS = 8 * 366 * 24 * 60 * MINUTE;

/**
 * The first whole minute (UTC, epoch milliseconds) strictly after `after` that `spec`
 * matches, or null when none does within 8 years (an expression naming no real date).
 */
export function nextCron(spec: CronSpec, after: number): number | null {
  const t = new Date(Math.floor(after / MINUTE) * MINUTE + MINUTE);
  const end = after + HORIZON_MS;
  while (t.getTime() <= end) {
    if (!spec.months.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1);
      t.setUTCHours(0, 0, 0, 0);
    } else if (!dayMatches(spec, t)) {
      t.setUTCDate(t.getUTCDate() + 1);
      t.setUTCHours(0, 0, 0, 0);
    } else if (!spec.hours.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
    } else if (!spec.minutes.has(t.getUTCMinutes())) {
      t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
    } else {
      return t.getTime();
    }
  }
  return null;
}

function dayMatches(spec: CronSpec, t: Date): boolean {
  const day = spec.days.has(t.getUTCDate());
  const weekday = spec.weekdays.has(t.getUTCDay());
  return spec.eitherDay ? day || weekday : day && weekday;
}

const UNITS: Record<string, number> = { s: 1000, m: MINUTE, h: 60 * MINUTE, d: 24 * 60 * MINUTE };

/** Parses a duration such as `30s`, `10m`, `1h30m` or `2d` into milliseconds (1 s or more). */
export function parseEvery(text: string): number {
  const trimmed = text.trim();
  const parts = [...trimmed.matchAll(/(\d+)([smhd])/gi)];
  const whole = parts.map((m) => m[0]).join("");
  const ms = parts.reduce((sum, m) => sum + Number(m[1]) * UNITS[m[2].toLowerCase()], 0);
  if (parts.length === 0 || whole !== trimmed) {
    throw new ScheduleSyntaxError(
      `\`${text}\` is not a duration: expected a number and a unit (s, m, h, d), ` +
        "e.g. 30s, 10m or 1h30m",
    );
  }
  if (ms < 1000) throw new ScheduleSyntaxError(`the interval \`${text}\` must be 1s or more`);
  if (ms > 366 * UNITS.d) throw new ScheduleSyntaxError(`the interval \`${text}\` is over a year`);
  return ms;
}

/** `ms` written as `parseEvery` reads it, largest units first (`5400000` is `1h30m`). */
export function formatEvery(ms: number): string {
  let rest = Math.round(ms / 1000) * 1000;
  let text = "";
  for (const [unit, size] of Object.entries(UNITS).reverse()) {
    const n = Math.floor(rest / size);
    if (n > 0) text += `${n}${unit}`;
    rest -= n * size;
  }
  return text;
}
