/**
 * `heddle check FILE...`: runs every compiler phase on each file and reports what it finds,
 * without running anything. Exit 1 when any file has an error, 0 otherwise.
 */
import { Command } from "@commander-js/extra-typings";
import type { Terminal } from "../_terminal.ts";
import { example, outputOption } from "../_options.ts";
import { type FileReport, readSources, reportDiagnostics } from "../_report.ts";
import { compileSource } from "../_compile.ts";

export function checkCommand(term: Terminal, exit: { code: number }) {
  return new Command("check")
    .description("Check .he programs for errors without running them.")
    .argument("<files...>", "programs to check (- reads standard input)")
    .addOption(outputOption())
    .addHelpText("after", example("heddle check examples/fraud_detection.he"))
    .action(async (files, options) => {
      const reports: FileReport[] = [];
      for (const { file, source } of await readSources(files)) {
        reports.push({ file, source, diagnostics: compileSource(source, file).diagnostics });
      }
      exit.code = reportDiagnostics(term, reports, options.output);
    });
}
