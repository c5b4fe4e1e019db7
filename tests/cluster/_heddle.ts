/**
 * Driving real `heddle` processes in the multi-host tests: the command line, the addresses
 * a node announces, client calls with `--output json`, and waiting for a run's end.
 */
import assert from "node:assert/strict";
import type { NodeProcess } from "./_netns.ts";
import { quickstartEnv } from "../_quickstart.ts";

export const root = new URL("../../", import.meta.url).pathname;
/** `heddle` from this checkout. */
export const heddle = [Deno.execPath(), "run", "-A", `${root}cli/main.ts`];

/** The address the node announces for `role` (`--output json` lines on stdout). */
export async function announced(process: NodeProcess, role: string): Promise<string> {
  while (true) {
    const line = await process.lines.next();
    if (line.done) throw new Error(`the node exited before announcing its ${role}`);
    const { role: r, address } = JSON.parse(line.value);
    if (r === role) return address;
  }
}

/** `heddle ARGS` on the host (the client side), as JSON. */
export async function cli(
  args: string[],
  env: Record<string, string> = quickstartEnv,
): Promise<unknown> {
  const output = await new Deno.Command(heddle[0], {
    args: [...heddle.slice(1), ...args, "--output", "json"],
    env,
    cwd: root,
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `heddle ${args.join(" ")}: ${stderr}`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

/** The run's record once it ended (two minutes at most). */
export async function ended(runId: string, client: string[]) {
  for (let i = 0;; i++) {
    const status = await cli(["workflow", "status", runId, ...client]) as {
      status: string;
      worker: string;
      error: string;
      summaryJson: string;
    };
    if (!["running", "draining"].includes(status.status)) return status;
    assert.ok(i < 600, "the run never ended");
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A run's log lines (`workflow logs --output json`, one JSON object a line). */
export async function logLines(
  runId: string,
  client: string[],
  env: Record<string, string> = quickstartEnv,
): Promise<{ level: string; message: string }[]> {
  const output = await new Deno.Command(heddle[0], {
    args: [...heddle.slice(1), "workflow", "logs", runId, ...client, "--output", "json"],
    env,
    cwd: root,
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout).split("\n").filter((l) => l)
    .map((l) => JSON.parse(l));
}

/** `heddle cluster --control-plane` listening on `address`, state in `state`. */
export function controlPlaneCommand(address: string, state: string, ...more: string[]) {
  return [
    ...heddle,
    "cluster",
    "--control-plane",
    "--listen",
    `${address}:0`,
    "--state",
    state,
    ...more,
  ];
}

/**
 * `heddle cluster --worker` joining `control`, listening (control service and Flight) on
 * `address`, file steps in `allow`, state in `state`; `more` options follow.
 */
export function workerCommand(
  control: string,
  address: string,
  allow: string,
  state: string,
  ...more: string[]
): string[] {
  return [
    ...heddle,
    "cluster",
    "--worker",
    "--join",
    control,
    "--worker-listen",
    `${address}:0`,
    "--flight-listen",
    `${address}:0`,
    "--allow-path",
    allow,
    "--state",
    state,
    ...more,
  ];
}
