/**
 * What `run`, `local` and `workflow deploy` share: the options that override resource
 * config per environment (from `_overrides.ts`, which `check` loads alone), turning a
 * deploy's wire diagnostics into a report, and starting a worker whose setup problems (an
 * unsafe spill directory) end as one line.
 */
import type { DeployResponse } from "../runtime/protocol/mod.ts";
import { RegistryError } from "../runtime/registry/mod.ts";
import { Worker, type WorkerOptions } from "../runtime/worker/mod.ts";
import { CliError, type Terminal } from "./_terminal.ts";

export { collectOverrides, envFileOption, setOption } from "./_overrides.ts";

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
