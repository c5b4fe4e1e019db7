/**
 * `heddle run FILE`: compiles a program and runs one of its workflows on this machine, with
 * a control plane and a worker in this process joined by the same interfaces gRPC carries
 * in `heddle local`. SIGINT or SIGTERM drains the run: outputs delivered as they are written
 * (topics) keep what was fully processed and commit it, outputs published at the end (files)
 * are not published; the run ends `stopped` (exit 3) and says what was written where. A
 * second signal stops at once (exit 130).
 */
import { Command } from "@commander-js/extra-typings";
import { ControlPlane } from "../../runtime/control/mod.ts";
import type { OutputReport } from "../../runtime/executor/mod.ts";
import { CliError, ExitCode, jsonLine, readSourceFile, type Terminal } from "../_terminal.ts";
import { example, outputOption } from "../_options.ts";
import { reportDiagnostics } from "../_report.ts";
import { compileSource } from "../_compile.ts";
import {
  collectOverrides,
  createWorker,
  envFileOption,
  printWireDiagnostics,
  setOption,
} from "../_deploy.ts";
import { Progress } from "../_progress.ts";
import { parseBytes, parsePositiveInt } from "../_options.ts";
import type { UiServer } from "../../runtime/ui/mod.ts";
import { defaultStateDir, newToken } from "../../runtime/protocol/mod.ts";
import { historyPath, keepLogLinesOption, keepRunsOption } from "../_history.ts";
import { ensurePrivateDir, UnsafePathError } from "../../runtime/fs/mod.ts";

export function runCommand(term: Terminal, exit: { code: number }) {
  return new Command("run")
    .description("Compile and run a workflow program on this machine.")
    .argument("<file>", "the program to run")
    .addOption(setOption())
    .addOption(envFileOption())
    .option("-w, --workflow <name>", "the workflow to run (needed when the file has several)")
    .option("--batch-rows <n>", "rows per source micro-batch", parsePositiveInt, 1024)
    .option(
      "--memory-budget <size>",
      "shared memory the registry may hold before spilling to disk (e.g. 256MiB)",
      parseBytes,
    )
    .option(
      "--ui",
      "serve the web UI for this run and print its address; after the run ends it stays up " +
        "until Ctrl-C",
    )
    .option(
      "--ui-listen <address>",
      "with --ui: where the UI listens (loopback only)",
      "127.0.0.1:0",
    )
    .option(
      "--state <dir>",
      "the state directory whose database records the run ($HEDDLE_STATE_DIR, else ~/.heddle)",
      defaultStateDir(),
    )
    .option("--no-history", "record nothing of this run")
    .addOption(keepRunsOption())
    .addOption(keepLogLinesOption())
    .addOption(outputOption())
    .addHelpText(
      "after",
      example(
        "heddle run examples/quickstart.he",
        "heddle run --state /var/lib/heddle examples/quickstart.he",
        "heddle run --set pg_db.host=127.0.0.1 examples/fraud_detection.he",
      ),
    )
    .action(async (file, options) => {
      const source = await readSourceFile(file);
      const checked = compileSource(source, file);
      if (checked.diagnostics.some((d) => d.severity === "error")) {
        exit.code = reportDiagnostics(term, [{ file, source, ...checked }], options.output);
        return;
      }
      const heddlePath = Deno.env.get("HEDDLE_PATH") ?? undefined;
      const control = new ControlPlane({
        database: ":memory:",
        history: options.history ? privateHistory(options.state) : ":memory:",
        origin: "heddle run",
        limits: { keepRuns: options.keepRuns, keepLogLines: options.keepLogLines },
        heddlePath,
        readCallerFiles: true,
      });
      const worker = createWorker({
        id: "local",
        heddlePath,
        batchRows: options.batchRows,
        // Released segments are reused for later puts (docs/registry.md, "Write path").
        registry: { memoryBudget: options.memoryBudget, pool: true },
      });
      control.attachWorker({ id: worker.id, address: "in-process", host: Deno.hostname() }, worker);
      let ui: UiServer | null = null;
      try {
        if (options.ui) {
          // Loaded only with --ui: the UI server and the metrics (prom-client) cost start-up.
          const { startUi } = await import("../_ui.ts");
          ui = startUi(term, {
            control,
            address: options.uiListen,
            // A one-off token: this process's UI lives as long as the process.
            credentials: { token: newToken(), tls: null },
            insecure: false,
            output: options.output,
          });
        }
        const deployed = await control.deploy({
          file: await Deno.realPath(file).catch(() => file),
          source,
          overrides: await collectOverrides(options),
        });
        if (!deployed.ok) {
          printWireDiagnostics(term, deployed);
          exit.code = ExitCode.failure;
          return;
        }
        const workflow = chooseWorkflow(deployed.workflows, options.workflow);
        exit.code = await runToEnd(term, control, workflow, options.output);
        if (ui) {
          term.err(`heddle: the UI stays up at ${ui.url} until Ctrl-C\n`);
          await untilSignal();
        }
      } finally {
        await ui?.close();
        // The run's outcome is decided; a failure to clean up is reported, not a crash.
        await worker.close().catch((e) =>
          term.err(`heddle: warning: while shutting down: ${e instanceof Error ? e.message : e}\n`)
        );
        control.close();
      }
    });
}

/** Resolves on the next SIGINT or SIGTERM. */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const kinds: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const done = () => {
      kinds.forEach((s) => Deno.removeSignalListener(s, done));
      resolve();
    };
    kinds.forEach((s) => Deno.addSignalListener(s, done));
  });
}

/**
 * The history database in `state`, the directory made private first (0700, refused when
 * another user owns it), as a daemon's state directory is.
 */
function privateHistory(state: string): string {
  try {
    ensurePrivateDir(state);
  } catch (e) {
    const reason = e instanceof UnsafePathError ? e.message : (e as Error).message;
    throw new CliError(
      `cannot keep the run history in ${state}: ${reason} ` +
        "(choose another directory with --state, or run without history: --no-history)",
      ExitCode.failure,
    );
  }
  return historyPath(state);
}

/** The workflow to run: the one asked for, else the program's only one. */
export function chooseWorkflow(workflows: string[], wanted: string | undefined): string {
  if (wanted !== undefined) {
    if (workflows.includes(wanted)) return wanted;
    throw new CliError(
      `the program has no workflow \`${wanted}\` (it has: ${workflows.join(", ") || "none"})`,
      ExitCode.usage,
    );
  }
  if (workflows.length === 1) return workflows[0];
  if (workflows.length === 0) {
    throw new CliError("the program declares no workflow", ExitCode.failure);
  }
  throw new CliError(
    `the program has several workflows; choose one with --workflow (${workflows.join(", ")})`,
    ExitCode.usage,
  );
}

/** Starts the run, shows its progress, drains on the first signal; returns the exit code. */
async function runToEnd(
  term: Terminal,
  control: ControlPlane,
  workflow: string,
  output: "text" | "json",
): Promise<number> {
  const run = await control.startRun(workflow);
  // Only the id: the line must not repeat paths or names that messages elsewhere mask.
  if (output === "text") term.err(`run ${run.id} started\n`);
  const progress = new Progress(term, output);
  let outputs: OutputReport[] = [];
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals === 1) {
      term.err("stopping: draining in-flight batches (press Ctrl-C again to abort)\n");
      control.stopRun(run.id);
    } else {
      term.err("aborted\n");
      Deno.exit(130);
    }
  };
  const kinds: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  kinds.forEach((s) => Deno.addSignalListener(s, onSignal));
  try {
    const ended = await control.watch(run.id, (event) => {
      if (event.kind === "run-finished") {
        outputs = (event.detail.summary as { outputs?: OutputReport[] }).outputs ?? [];
      }
      progress.event(event);
    });
    progress.finish();
    const summary = JSON.parse(ended.summaryJson) as {
      stages: Record<string, { label: string; rowsIn: number; rowsOut: number }>;
      quarantined: number;
    };
    if (output === "json") {
      term.out(
        jsonLine({
          kind: "summary",
          run: ended.id,
          status: ended.status,
          error: ended.error || null,
          ...summary,
          outputs,
        }),
      );
    } else {
      for (const [id, s] of Object.entries(summary.stages)) {
        term.err(`  ${id} ${s.label}: ${s.rowsIn} rows in, ${s.rowsOut} rows out\n`);
      }
      const quarantined = summary.quarantined > 0
        ? `, ${summary.quarantined} rows to handlers`
        : "";
      if (ended.status !== "succeeded") term.err(outputsText(outputs, ended.status));
      term.err(`run ${ended.status}${quarantined}${ended.error ? `: ${ended.error}` : ""}\n`);
    }
    return ended.status === "failed"
      ? ExitCode.failure
      : ended.status === "stopped"
      ? ExitCode.stopped
      : ExitCode.ok;
  } finally {
    kinds.forEach((s) => Deno.removeSignalListener(s, onSignal));
  }
}

/** What a run that did not complete left behind, one line a sink (for stderr). */
function outputsText(outputs: OutputReport[], status: string): string {
  const lines = outputs.map((o) => {
    const where = `  ${o.stage} ${o.label}: `;
    if (o.state === "discarded") {
      return `${where}nothing published to ${o.target} (the run ${status}; ${o.rows} rows ` +
        "discarded, whatever was there before is unchanged)";
    }
    return `${where}${o.rows} rows written to ${o.target}`;
  });
  return lines.length > 0 ? `outputs:\n${lines.join("\n")}\n` : "";
}
