/**
 * How the CLI calls the compiler: the one place that turns command-line context (the
 * environment's `HEDDLE_PATH`, the file's location) into compiler options, so that
 * `check`, `inspect` and `run` compile a program identically.
 */
import { check, type Checked, type CheckOptions, type Result } from "../compiler/mod.ts";

export function compileOptions(): CheckOptions {
  return { heddlePath: Deno.env.get("HEDDLE_PATH") ?? undefined };
}

export function compileSource(source: string, file: string): Result<Checked> {
  return check(source, file, compileOptions());
}
