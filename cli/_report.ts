/**
 * Printing diagnostics of one or more files the way every command does it: frames with
 * carets for people (stderr), or one JSON document for tools (stdout).
 */
import type { Diagnostic } from "../compiler/diagnostics/_types.ts";
import { renderHuman, toJson } from "../compiler/diagnostics/mod.ts";
import {
  ExitCode,
  jsonLine,
  type OutputFormat,
  readSourceFile,
  type Terminal,
} from "./_terminal.ts";

export interface FileReport {
  file: string;
  source: string;
  diagnostics: Diagnostic[];
}

/** Reads every named file (`-` is standard input), failing on the first unreadable one. */
export async function readSources(files: string[]): Promise<{ file: string; source: string }[]> {
  const sources = [];
  for (const file of files) {
    sources.push({ file: file === "-" ? "<stdin>" : file, source: await readSourceFile(file) });
  }
  return sources;
}

function count(reports: FileReport[], severity: Diagnostic["severity"]): number {
  return reports.reduce(
    (n, r) => n + r.diagnostics.filter((d) => d.severity === severity).length,
    0,
  );
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** Prints the diagnostics and returns the exit code they call for. */
export function reportDiagnostics(
  term: Terminal,
  reports: FileReport[],
  format: OutputFormat,
): number {
  const errors = count(reports, "error");
  if (format === "json") {
    const diagnostics = reports.flatMap((r) => toJson(r.diagnostics, r.source, r.file));
    term.out(jsonLine({ diagnostics }));
  } else {
    for (const r of reports) {
      if (r.diagnostics.length > 0) {
        const rendered = renderHuman(r.diagnostics, r.source, r.file, { color: term.color });
        term.err(rendered.endsWith("\n") ? rendered : rendered + "\n");
      }
    }
    const warnings = count(reports, "warning");
    const summary = `checked ${plural(reports.length, "file")}: ${plural(errors, "error")}, ${
      plural(warnings, "warning")
    }\n`;
    term.err(summary);
  }
  return errors > 0 ? ExitCode.failure : ExitCode.ok;
}
