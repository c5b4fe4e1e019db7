/**
 * What several end-to-end tests set up the same way: a CSV of numbers, a program that copies
 * it through one step into `out.csv`, a free loopback port, and the shared-memory segments a
 * `heddle` process left in /dev/shm. Real files and processes only.
 */

import { spawnHeddle, waitForLine } from "../_cli.ts";

/** The example plugins, found through HEDDLE_PATH as a user's installed plugins would be. */
export const EXAMPLE_PLUGINS = new URL("../../examples/plugins", import.meta.url).pathname;

/** Writes `<dir>/numbers.csv`: a header `n` and the numbers 0 to rows - 1. */
export async function writeNumbers(dir: string, rows: number): Promise<void> {
  const lines = ["n"];
  for (let i = 0; i < rows; i++) lines.push(String(i));
  await Deno.writeTextFile(`${dir}/numbers.csv`, lines.join("\n") + "\n");
}

/**
 * Writes `<dir>/<file>`: workflow `name` reads numbers.csv, passes it through `step` (a
 * pipeline step, e.g. a PRQL block or a call of the `faulty` plugin) and writes `out.csv`.
 */
export async function writeCopyProgram(
  dir: string,
  file: string,
  name: string,
  step: string,
): Promise<string> {
  const path = `${dir}/${file}`;
  await Deno.writeTextFile(
    path,
    [
      'import "fhub/file" file',
      ...(step.startsWith("faulty.") ? ['import "faulty/steps" faulty'] : []),
      `workflow ${name} {`,
      '  file.read { path: "numbers.csv", format: "csv" } : { n: int64 }',
      `  | ${step}`,
      '  | file.write { path: "out.csv", format: "csv" }',
      "}",
      "",
    ].join("\n"),
  );
  return path;
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
