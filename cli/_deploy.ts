/**
 * What `run`, `local` and `workflow deploy` share: the options that override resource
 * config per environment, turning a deploy's wire diagnostics into a report, and starting
 * a worker whose setup problems (an unsafe spill directory) end as one line.
 */
import { Option } from "@commander-js/extra-typings";
import { parseEnvFile } from "../runtime/control/mod.ts";
import type { DeployResponse } from "../runtime/protocol/mod.ts";
import { RegistryError } from "../runtime/registry/mod.ts";
import { Worker, type WorkerOptions } from "../runtime/worker/mod.ts";
import { CliError, readSourceFile, type Terminal } from "./_terminal.ts";

/** `--set resource.key=value`, repeatable: a resource config override. */
export function setOption() {
  return new Option(
    "--set <resource.key=value>",
    "override a resource's config, e.g. --set pg_db.host=127.0.0.1 (repeatable)",
  ).argParser((value: string, previous: string[]) => [...previous, value]).default([] as string[]);
}

/** `--env-file FILE`: overrides read from a file of `resource.key=value` lines. */
export function envFileOption() {
  return new Option("--env-file <file>", "read overrides from a file of resource.key=value lines");
}

/** The overrides in effect: the env file's lines first, so `--set` wins. */
export async function collectOverrides(options: { set: string[]; envFile?: string }) {
  const fromFile = options.envFile ? parseEnvFile(await readSourceFile(options.envFile)) : [];
  return [...fromFile, ...options.set];
}

/** Prints the diagnostics a control plane returned for a deploy (one line each). */
export function printWireDiagnostics(term: Terminal, response: DeployResponse): void {
  for (const d of response.diagnostics) {
    term.err(`${d.file}:${d.line}:${d.column}: ${d.severity}[${d.code}]: ${d.message}\n`);
  }
}

/** A new worker; a registry that cannot start (unsafe spill directory) is a `CliError`. */
export function createWorker(options: WorkerOptions): Worker {
  try {
    return new Worker(options);
  } catch (e) {
    if (e instanceof RegistryError) throw new CliError(e.message);
    throw e;
  }
}
