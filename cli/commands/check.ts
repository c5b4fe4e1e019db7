/**
 * `heddle check FILE...`: runs every compiler phase on each file and reports what it finds,
 * without running anything. Exit 1 when any file has an error, 0 otherwise.
 *
 * `--introspect` first refreshes `<program>.schema.json` by asking each query step's
 * database for its column and parameter types (with `--set`/`--env-file` overrides applied
 * to the resources), then checks against the fresh snapshot. Without it nothing connects,
 * and the runtime (connectors, the control plane's overrides) is not even loaded: a plain
 * check starts as fast as the compiler alone.
 * A failed introspection never rewrites the snapshot: a half-refreshed file would silently
 * drop the types of the queries that failed.
 */
import { Command } from "@commander-js/extra-typings";
import {
  type Catalog,
  check,
  type Diagnostic,
  introspect,
  type Resolved,
  type SchemaSnapshot,
  snapshotPath,
  type Span,
  SQL_CODES,
} from "../../compiler/mod.ts";
import { CliError, ExitCode, type Terminal } from "../_terminal.ts";
import { example, outputOption } from "../_options.ts";
import { type FileReport, readSources, reportDiagnostics } from "../_report.ts";
import { compileOptions, compileSource } from "../_compile.ts";
import { collectOverrides, envFileOption, setOption } from "../_overrides.ts";

/** The code of a query its database could not describe (unreachable, unknown table, ...). */
const INTROSPECTION_FAILED = SQL_CODES.introspectionFailed.code;

export function checkCommand(term: Terminal, exit: { code: number }) {
  return new Command("check")
    .description("Check .he programs for errors without running them.")
    .argument("<files...>", "programs to check (- reads standard input)")
    .option(
      "--introspect",
      "first ask each query step's database for its types and rewrite <program>.schema.json",
    )
    .addOption(setOption())
    .addOption(envFileOption())
    .addOption(outputOption())
    .addHelpText(
      "after",
      example(
        "heddle check examples/fraud_detection.he\n" +
          "  $ heddle check --introspect --set pg_db.host=127.0.0.1 examples/fraud_detection.he",
      ),
    )
    .action(async (files, options) => {
      if (options.introspect && files.includes("-")) {
        throw new CliError(
          "--introspect writes <program>.schema.json: name a file, not -",
          ExitCode.usage,
        );
      }
      const overrides = await collectOverrides(options);
      const reports: FileReport[] = [];
      for (const { file, source } of await readSources(files)) {
        const refreshed = options.introspect ? await refreshSnapshot(source, file, overrides) : [];
        const diagnostics = refreshed.some((d) => d.severity === "error")
          ? refreshed
          : await checkWithOverrides(source, file, overrides);
        reports.push({ file, source, diagnostics });
      }
      exit.code = reportDiagnostics(term, reports, options.output);
    });
}

/** Checks a program and, so that a typo in them is caught here too, its overrides. */
async function checkWithOverrides(
  source: string,
  file: string,
  overrides: string[],
): Promise<Diagnostic[]> {
  const { value, diagnostics } = compileSource(source, file);
  if (overrides.length === 0 || !value.optimised) return diagnostics;
  const { applyOverrides } = await import("../../runtime/control/mod.ts");
  return [...diagnostics, ...applyOverrides(value.optimised, overrides)];
}

/**
 * Introspects every query step of `file` and writes its snapshot. Returns the problems that
 * stopped it (program errors, bad overrides, queries the database refused); none on success.
 */
async function refreshSnapshot(
  source: string,
  file: string,
  overrides: string[],
): Promise<Diagnostic[]> {
  // The old snapshot is ignored: it is what is being replaced, and may be stale or broken.
  const { value, diagnostics } = check(source, file, { ...compileOptions(), snapshot: null });
  const errors = diagnostics.filter((d) => d.severity === "error");
  if (errors.length > 0 || !value.resolved || !value.optimised) return errors;
  const resolved = value.resolved;
  const { applyOverrides } = await import("../../runtime/control/mod.ts");
  const { databaseCatalog } = await import("../../runtime/connectors/mod.ts");
  const problems = applyOverrides(value.optimised, overrides);
  if (problems.some((d) => d.severity === "error")) return withFile(problems, file);
  const configs = new Map(value.optimised.resources.map((r) => [r.id, r.config]));

  const failures: Diagnostic[] = [];
  const catalog: Catalog = async (request) => {
    try {
      return await databaseCatalog({ ...request, config: configs.get(request.resource)! });
    } catch (error) {
      failures.push({
        code: INTROSPECTION_FAILED,
        severity: "error",
        message: `cannot introspect the query on \`${request.resource}\`: ${
          (error instanceof Error ? error.message : String(error)).trim()
        }`,
        span: querySpan(resolved, request.resource, request.query),
        labels: [],
        hints: [
          "check the resource's config; `--set resource.key=value` overrides it for this run",
        ],
        file,
      });
      return { columns: [], params: [] };
    }
  };
  const snapshot = await introspect(resolved, { catalog });
  if (failures.length > 0) return failures;
  await Deno.writeTextFile(snapshotPath(file), formatSnapshot(snapshot));
  return [];
}

function withFile(diagnostics: Diagnostic[], file: string): Diagnostic[] {
  return diagnostics.map((d) => ({ ...d, file: d.file ?? file }));
}

/** The span of the query string of the step that sends `query` to `resource`. */
function querySpan(resolved: Resolved, resource: string, query: string): Span {
  for (const step of resolved.steps.values()) {
    const call = step.call;
    if (call?.op.output?.kind !== "sql" || call.injections.get("connection") !== resource) {
      continue;
    }
    const key = call.op.output.key;
    const lit = call.node.config?.fields.find((f) => f.key.name === key)?.value;
    if (lit?.kind === "String" && lit.value === query) return lit.span;
  }
  return { start: 0, end: 0 };
}

/**
 * The snapshot as committed text: keys sorted, two-space indents, and each column on one
 * line, so that a refresh shows up in review as a diff of exactly the types that changed.
 */
export function formatSnapshot(snapshot: SchemaSnapshot): string {
  return render(snapshot, "") + "\n";
}

function render(value: unknown, indent: string): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  const inner = indent + "  ";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => inner + render(v, inner)).join(",\n")}\n${indent}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  if (entries.length === 0) return "{}";
  if (entries.every(([, v]) => v === null || typeof v !== "object")) {
    return `{ ${
      entries.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(", ")
    } }`;
  }
  return `{\n${
    entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${render(v, inner)}`).join(",\n")
  }\n${indent}}`;
}
