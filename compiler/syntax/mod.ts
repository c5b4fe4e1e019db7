/**
 * The syntax phase's public entry: `parse` turns source text into a `Program` and the
 * syntax diagnostics, `format` prints a program in Heddle's one canonical style. Neither
 * ever throws on any input; later phases, the CLI and the LSP build on these two functions
 * and the AST types re-exported here. Nothing in this folder knows about names, types or
 * the runtime.
 */
import type { Program } from "./ast.ts";
import type { Result } from "../diagnostics/_types.ts";
import { parseProgram } from "./_parser.ts";
import { formatProgram } from "./_format.ts";

export type * from "./ast.ts";
export { type CodeInfo, SYNTAX_CODE_TABLE, SYNTAX_CODES } from "./_codes.ts";
export { MAX_NESTING } from "./_parser.ts";

/**
 * Parses a `.he` program. Always returns a tree (with `Error*` nodes where text could not
 * be parsed); `diagnostics` is empty exactly when the file is syntactically valid. `file`
 * is recorded on every diagnostic.
 */
export function parse(source: string, file?: string): Result<Program> {
  const { program, diagnostics } = parseProgram(source);
  if (file !== undefined) { for (const d of diagnostics) d.file = file; }
  return { value: program, diagnostics };
}

/**
 * Formats a program in the canonical style. A file with syntax errors is returned unchanged
 * together with its diagnostics, so a formatter run can never lose text.
 */
export function format(source: string): Result<string> {
  const { program, diagnostics } = parseProgram(source);
  if (diagnostics.some((d) => d.severity === "error")) return { value: source, diagnostics };
  return { value: formatProgram(program, source), diagnostics };
}
