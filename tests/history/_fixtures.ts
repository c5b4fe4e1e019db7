/**
 * What the history and schedule tests share: a program whose step is slow and sends some
 * rows to a handler (so a run lasts long enough to be watched and has log lines while it
 * runs), and readers for the `--output json` of `heddle workflow runs|logs`.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import {
  EXAMPLE_PLUGINS,
  freePort,
  startLocal,
  writeCopyProgram,
  writeNumbers,
} from "../e2e/_fixtures.ts";

export { EXAMPLE_PLUGINS };

/** What runs the example `faulty` plugin needs. */
export const env = { HEDDLE_PATH: EXAMPLE_PLUGINS };

/**
 * A `heddle local` with its state in `<dir>/state`, allowed to use `dir`, on a free port;
 * `server` are the options that reach it.
 */
export class Daemon {
  readonly state: string;
  readonly server: string[];
  #port = freePort();
  #child: Deno.ChildProcess | null = null;

  constructor(readonly dir: string) {
    this.state = `${dir}/state`;
    this.server = ["--server", `127.0.0.1:${this.#port}`, "--state", this.state];
  }

  get pid(): number {
    return this.#child!.pid;
  }

  async start(): Promise<this> {
    this.#child = await startLocal(this.state, this.#port, this.dir, env);
    return this;
  }

  /** Sends `signal` and waits for the daemon to end. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus | null> {
    const child = this.#child;
    if (!child) return null;
    this.#child = null;
    child.kill(signal);
    const status = await child.status;
    await child.stdout.cancel();
    return status;
  }
}

/**
 * Writes `<dir>/slow.he`: workflow `Slow` reads `rows` numbers, and a `faulty.run` step that
 * waits `sleepMs` per batch (and, with `gate`, until that file exists) and fails the first
 * row of each batch, which go to handler `rejected` (`rejected.jsonl`); the rest go to
 * `out.csv`.
 */
export async function writeSlowProgram(dir: string, rows: number, sleepMs: number, gate?: string) {
  await writeNumbers(dir, rows);
  const held = gate ? `, wait_for: "${gate}"` : "";
  return await writeCopyProgram(
    dir,
    "slow.he",
    "Slow",
    `faulty.run { sleep_ms: ${sleepMs}, fail_rows: [0]${held} }`,
    { handler: true },
  );
}

export interface RunJson {
  id: string;
  workflow: string;
  status: string;
  startedAt: string;
  origin: string;
  summaryJson: string;
  error: string;
}

export interface LogJson {
  seq: number;
  runId: string;
  stage: string;
  level: string;
  time: string;
  message: string;
}

/** `heddle workflow runs --output json` with `args`; fails the test on a non-zero exit. */
export async function listRuns(args: string[]): Promise<RunJson[]> {
  const r = await heddle(["workflow", "runs", "--output", "json", ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).runs;
}

/** `heddle workflow logs --output json` with `args`: one JSON object a line. */
export async function readLogs(args: string[]): Promise<LogJson[]> {
  const r = await heddle(["workflow", "logs", "--output", "json", ...args]);
  assert.equal(r.code, 0, r.stderr);
  return parseLines(r.stdout);
}

export function parseLines(text: string): LogJson[] {
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}
