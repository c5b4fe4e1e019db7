/**
 * `heddle fmt FILE...`: rewrites programs in Heddle's one canonical style. A file with syntax
 * errors is never rewritten (formatting must not guess); its diagnostics are printed instead.
 */
import { Command } from "@commander-js/extra-typings";
import { format } from "../../compiler/syntax/mod.ts";
import { CliError, ExitCode, jsonLine, type Terminal } from "../_terminal.ts";
import { example, outputOption } from "../_options.ts";
import { readSources, reportDiagnostics } from "../_report.ts";

export function fmtCommand(term: Terminal, exit: { code: number }) {
  return new Command("fmt")
    .description("Format .he programs in place (- formats standard input to standard output).")
    .argument("<files...>", "programs to format, or - for standard input")
    .option("--check", "list files that are not formatted and exit 1; change nothing")
    .addOption(outputOption())
    .addHelpText("after", example("heddle fmt examples/*.he", "heddle fmt --check examples/"))
    .action(async (files, options) => {
      if (files.includes("-") && files.length > 1) {
        throw new CliError("`-` (standard input) cannot be combined with files", ExitCode.usage);
      }
      const unformatted: string[] = [];
      for (const { file, source } of await readSources(await expandDirs(files))) {
        const result = format(source);
        if (result.diagnostics.some((d) => d.severity === "error")) {
          exit.code = reportDiagnostics(term, [{ file, source, ...result }], options.output);
          continue;
        }
        if (files[0] === "-") {
          if (!options.check) term.out(result.value);
        } else if (result.value !== source && !options.check) {
          await Deno.writeTextFile(file, result.value);
          term.err(`formatted ${file}\n`);
        }
        if (result.value !== source) unformatted.push(file);
      }
      if (options.check) {
        if (options.output === "json") term.out(jsonLine({ unformatted }));
        else for (const file of unformatted) term.out(`${file}\n`);
        if (unformatted.length > 0) exit.code = ExitCode.failure;
      }
    });
}

/** Replaces each directory argument by the `.he` files below it. */
async function expandDirs(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const info = path === "-" ? null : await Deno.stat(path).catch(() => null);
    if (info?.isDirectory) files.push(...(await listPrograms(path)).sort());
    else files.push(path);
  }
  return files;
}

async function listPrograms(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir.replace(/\/$/, "")}/${entry.name}`;
    if (entry.isDirectory) found.push(...await listPrograms(path));
    else if (entry.name.endsWith(".he")) found.push(path);
  }
  return found;
}
