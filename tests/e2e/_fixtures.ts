/**
 * What several end-to-end tests set up the same way: a CSV of numbers, a program that copies
 * it through one step into `out.csv`, a free loopback port, and the shared-memory segments a
 * `heddle` process left in /dev/shm. Real files and processes only.
 */

import assert from "node:assert/strict";
import { heddle, spawnHeddle, waitForLine } from "../_cli.ts";

/** The example plugins, found through HEDDLE_PATH as a user's installed plugins would be. */
export const EXAMPLE_PLUGINS = new URL("../../examples/plugins", import.meta.url).pathname;

/** Writes `<dir>/numbers.csv`: a header `n` and the numbers 0 to rows - 1. */
export async function writeNumbers(dir: string, rows: number): Promise<void> {
  const lines = ["n"];
  for (let i = 0; i < rows; i++) lines.push(String(i));
  await Deno.writeTextFile(`${dir}/numbers.csv`, lines.join("\n") + "\n");
}

/** Where a copy program reads and writes, and whether a handler catches its failed rows. */
export interface CopyOptions {
  /** The CSV of numbers it reads (default `numbers.csv`). */
  input?: string;
  /** The file it writes, CSV or JSON lines by its extension (default `out.csv`). */
  output?: string;
  /** A handler `rejected` catching the failed rows into `rejected.jsonl`. */
  handler?: boolean;
}

/**
 * Writes `<dir>/<file>`: workflow `name` reads numbers.csv, passes it through `step` (a
 * pipeline step, e.g. a PRQL block or a call of the `faulty` plugin) and writes `out.csv`
 * (or as `options` say).
 */
export async function writeCopyProgram(
  dir: string,
  file: string,
  name: string,
  step: string,
  options: CopyOptions = {},
): Promise<string> {
  const path = `${dir}/${file}`;
  const output = options.output ?? "out.csv";
  const format = output.endsWith(".jsonl") ? "jsonl" : "csv";
  await Deno.writeTextFile(
    path,
    [
      'import "fhub/file" file',
      ...(step.startsWith("faulty.") ? ['import "faulty/steps" faulty'] : []),
      ...(options.handler
        ? [
          "handler rejected {",
          "  *",
          '  | file.write { path: "rejected.jsonl", format: "jsonl" }',
          "}",
        ]
        : []),
      `workflow ${name}${options.handler ? " ? rejected" : ""} {`,
      `  file.read { path: "${options.input ?? "numbers.csv"}", format: "csv" } : { n: int64 }`,
      `  | ${step}`,
      `  | file.write { path: "${output}", format: "${format}" }`,
      "}",
      "",
    ].join("\n"),
  );
  return path;
}

/**
 * Deploys `file` on the control plane `server` reaches and runs `workflow` to its end
 * (`workflow start --wait`); fails the test unless both exit 0. Returns what the deploy
 * printed and the run as `--output json` has it.
 */
export async function deployAndRun(
  server: string[],
  file: string,
  workflow: string,
): Promise<{ deployed: string; run: { id: string; status: string } }> {
  const deployed = await heddle(["workflow", "deploy", ...server, file]);
  assert.equal(deployed.code, 0, deployed.stderr);
  const started = await heddle(
    ["workflow", "start", "--wait", "--output", "json", ...server, workflow],
  );
  assert.equal(started.code, 0, started.stderr);
  return { deployed: deployed.stdout, run: JSON.parse(started.stdout).runs[0] };
}

/** A step that never answers: runs stay busy with it until killed. */
export const HANGING_STEP = "faulty.run { hang: true } retry { attempts: 1, timeout: 1h }";

/** The shared-memory segments of process `pid` (`heddle-<pid>-...`) in /dev/shm. */
export function segmentsOf(pid: number): string[] {
  return [...Deno.readDirSync("/dev/shm")].map((e) => e.name).filter((n) =>
    n.startsWith(`heddle-${pid}-`)
  );
}

/** A loopback TCP port nobody listens on right now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Starts `heddle local` on `port` with its state in `state`, allowed to use files under
 * `dir`, and returns it once its worker listens.
 */
export async function startLocal(
  state: string,
  port: number,
  dir: string,
  env: Record<string, string>,
): Promise<Deno.ChildProcess> {
  const child = spawnHeddle(localArgs(state, port, dir), { env });
  await waitForLine(child.stderr, /worker listening on/);
  return child;
}

/** The arguments of `heddle local` on `port`, its state in `state`, allowed to use `dir`. */
export function localArgs(state: string, port: number, dir: string): string[] {
  return ["local", "--listen", `127.0.0.1:${port}`, "--state", state, "--allow-path", dir];
}
