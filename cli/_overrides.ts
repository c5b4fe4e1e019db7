/**
 * The options that override resource config per environment (`--set`, `--env-file`), shared
 * by `check`, `run`, `workflow deploy` and the debugger. Kept apart from `_deploy.ts` so that
 * `heddle check` can offer them without loading the runtime: the env file's parser is only
 * imported when a file is given.
 */
import { Option } from "@commander-js/extra-typings";
import { readSourceFile } from "./_terminal.ts";

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
  if (!options.envFile) return [...options.set];
  const { parseEnvFile } = await import("../runtime/control/mod.ts");
  return [...parseEnvFile(await readSourceFile(options.envFile)), ...options.set];
}
