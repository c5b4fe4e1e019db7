/**
 * Cron expressions and intervals: what parses, what each bad field says, and the next
 * firing, checked by hand for the cases cron users trip on and against croner (a maintained
 * implementation) for a thousand random expressions.
 */
import assert from "node:assert/strict";
import { Cron } from "croner";
import {
  formatEvery,
  nextCron,
  parseCron,
  parseEvery,
} from "../../runtime/control/_schedule_cron.ts";
import { prng as seeded } from "../_prng.ts";

/** A whole number from 0 to n - 1. */
type Int = (n: number) => number;

const at = (iso: string) => Date.parse(iso);
const next = (expression: string, after: string) => {
  const found = nextCron(parseCron(expression), at(after));
  return found === null ? null : new Date(found).toISOString();
};

/** Expression, after, the next firing expected. */
const NEXT: [string, string, string][] = [
  ["*/5 * * * *", "2026-12-07T14:03:27Z", "2026-12-07T14:05:00.000Z"],
  ["*/5 * * * *", "2026-12-07T14:05:00Z", "2026-12-07T14:10:00.000Z"],
  ["* * * * *", "2026-12-31T23:59:30Z", "2027-01-01T00:00:00.000Z"],
  ["30 2 * * *", "2026-12-07T14:00:00Z", "2026-12-08T02:30:00.000Z"],
  ["0 0 1 * *", "2026-01-31T12:00:00Z", "2026-02-01T00:00:00.000Z"],
  ["0 9 * * mon-fri", "2026-12-05T10:00:00Z", "2026-12-07T09:00:00.000Z"],
  ["0 0 * * 7", "2026-12-07T00:00:00Z", "2026-12-13T00:00:00.000Z"], // 7 is Sunday
  ["0 0 29 feb *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00.000Z"],
  ["15,45 */6 * jan,jul *", "2026-07-31T18:50:00Z", "2027-01-01T00:15:00.000Z"],
  ["10-20/5 * * * *", "2026-12-07T14:16:00Z", "2026-12-07T14:20:00.000Z"],
  ["5/20 * * * *", "2026-12-07T14:26:00Z", "2026-12-07T14:45:00.000Z"],
  ["@hourly", "2026-12-07T14:00:00Z", "2026-12-07T15:00:00.000Z"],
  ["@weekly", "2026-12-07T14:00:00Z", "2026-12-13T00:00:00.000Z"],
  // Both day fields restricted: either matches (the 13th, or any Friday).
  ["0 0 13 * 5", "2026-12-07T00:00:00Z", "2026-12-11T00:00:00.000Z"],
  ["0 0 13 * 5", "2026-12-11T00:00:00Z", "2026-12-13T00:00:00.000Z"],
  // One of them `*`: the other decides.
  ["0 0 13 * *", "2026-12-07T00:00:00Z", "2026-12-13T00:00:00.000Z"],
];

Deno.test("nextCron() finds the next whole minute each expression names, in UTC", () => {
  for (const [expression, after, expected] of NEXT) {
    assert.equal(next(expression, after), expected, `${expression} after ${after}`);
  }
});

/** Expression, and what refusing it says. */
const REFUSED: [string, RegExp][] = [
  ["61 * * * *", /the minute field `61`: `61` is out of range: expected 0-59$/],
  ["* 24 * * *", /the hour field `24`: `24` is out of range: expected 0-23$/],
  ["* * 0 * *", /the day-of-month field `0`: `0` is out of range: expected 1-31$/],
  ["* * * 13 *", /the month field `13`: .* expected 1-12 or jan-dec$/],
  ["* * * * 8", /the day-of-week field `8`: .* expected 0-7 or sun-sat$/],
  ["1,2,x * * * *", /the minute field `1,2,x`: `x` is not a number/],
  ["*/0 * * * *", /the minute field `\*\/0`: the step `\/0` must be 1 or more$/],
  ["5-2 * * * *", /the minute field `5-2`: the range `5-2` goes backwards$/],
  ["* * *", /has 3 field\(s\); it needs 5: minute, hour, day-of-month, month, day-of-week/],
  ["0 */5 * * * *", /has 6 field\(s\)/],
  ["", /has 0 field\(s\)/],
  ["0 0 30 feb *", /names no date that exists/],
  ["@often", /unknown cron macro `@often`/],
  ["1--2 * * * *", /the minute field `1--2`: `1--2` is not a value/],
];

Deno.test("parseCron() names the field, the value and the range it should be in", () => {
  for (const [expression, message] of REFUSED) {
    assert.throws(() => parseCron(expression), message, expression);
  }
});

/** Durations as `--every` takes them, in milliseconds. */
const DURATIONS: [string, number][] = [
  ["30s", 30_000],
  ["10m", 600_000],
  ["1h30m", 5_400_000],
  ["2d", 172_800_000],
];

Deno.test("parseEvery() reads durations and refuses what is not one", () => {
  for (const [text, ms] of DURATIONS) assert.equal(parseEvery(text), ms, text);
  assert.equal(formatEvery(5_400_000), "1h30m");
  assert.equal(formatEvery(parseEvery("90s")), "1m30s");
  for (const bad of ["10", "10x", "m", "1h 30m", "-5m", "1.5h", ""]) {
    assert.throws(() => parseEvery(bad), /is not a duration: expected a number and a unit/, bad);
  }
  assert.throws(() => parseEvery("0s"), /must be 1s or more/);
  assert.throws(() => parseEvery("400d"), /over a year/);
});

/** A random field: `*`, a value, a range, a step or a list of them (never `*\/n` for days). */
function randomField(int: Int, min: number, max: number, day: boolean): string {
  const value = () => min + int(max - min + 1);
  const item = (): string => {
    switch (int(day ? 4 : 5)) {
      case 0:
        return String(value());
      case 1: {
        const a = value();
        return `${a}-${a + int(max - a + 1)}`;
      }
      case 2: {
        const a = value();
        return `${a}-${a + int(max - a + 1)}/${1 + int(5)}`;
      }
      case 3:
        return [item(), item()].join(",");
      default:
        return `*/${1 + int(12)}`;
    }
  };
  return int(3) === 0 ? "*" : item();
}

Deno.test("nextCron() agrees with croner on 1,000 random expressions", () => {
  const random = seeded(20261207);
  const int: Int = (n) => Math.floor(random() * n);
  let compared = 0;
  for (let i = 0; i < 1000; i++) {
    const expression = [
      randomField(int, 0, 59, false),
      randomField(int, 0, 23, false),
      randomField(int, 1, 31, true),
      randomField(int, 1, 12, false),
      randomField(int, 0, 6, true),
    ].join(" ");
    let spec;
    try {
      spec = parseCron(expression);
    } catch {
      continue; // a day that never falls in its months, e.g. 31 in feb-apr only
    }
    const after = Date.UTC(2026, 0, 1) + int(4 * 365 * 24 * 60) * 60_000 + int(60_000);
    const expected = new Cron(expression, { timezone: "UTC", paused: true })
      .nextRun(new Date(after));
    assert.equal(
      nextCron(spec, after),
      expected?.getTime() ?? null,
      `${expression} after ${after}`,
    );
    compared++;
  }
  assert.ok(compared > 900, `${compared} compared`);
});
