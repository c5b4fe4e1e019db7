/**
 * `heddle workflow`: talks to a running control plane (`heddle local`, `heddle cluster`)
 * over gRPC: deploy programs, list workflows, start, watch and stop runs. It never runs
 * anything itself.
 */
import { Command, Option } from "@commander-js/extra-typings";
import { basename } from "node:path";
import { snapshotPath } from "../../compiler/mod.ts";
import type {
  Attempt,
  ControlApi,
  CredentialOptions,
  DeployFile,
  Run,
  RunDetails,
  RunPage,
  ScheduleInfo,
  SetScheduleRequest,
} from "../../runtime/protocol/mod.ts";
import {
  parseCron,
  parseEvery,
  ScheduleSyntaxError,
  troubledAttempts,
} from "../../runtime/control/mod.ts";
import { CliError, ExitCode, jsonLine, readSourceFile, type Terminal } from "../_terminal.ts";
import { example, outputOption, parsePositiveInt } from "../_options.ts";
import { collectOverrides, envFileOption, printWireDiagnostics, setOption } from "../_deploy.ts";
import { DEFAULT_CONTROL_ADDRESS } from "./node.ts";
import { clientCredentialsOf, withCredentialOptions } from "../_credentials.ts";
import { placementText } from "../_placement.ts";
import type { Placement } from "../../runtime/control/mod.ts";
import { callApi, printLogs, withHistory } from "../_history.ts";
import { connectLeader, serverAddresses } from "../_leader.ts";

const RUN_STATUSES = ["pending", "running", "draining", "succeeded", "failed", "stopped"] as const;

/** Whether the command names a control plane (`--server` or `$HEDDLE_SERVER`). */
function serverNamed(cmd: Command<unknown[], Record<string, unknown>>): boolean {
  return cmd.getOptionValueSource("server") === "cli" || !!Deno.env.get("HEDDLE_SERVER");
}

type Output = "text" | "json";

interface ServerOptions extends CredentialOptions {
  server: string;
}

/** Connects to the control plane, runs `fn`, and turns connection failures into one line. */
export function withServer<T>(
  options: ServerOptions,
  fn: (api: ControlApi) => Promise<T>,
): Promise<T> {
  return callApi(
    connectLeader(serverAddresses(options.server), clientCredentialsOf(options)),
    options.server,
    fn,
  );
}

function runText(run: Run): string {
  const ended = run.endedAt ? ` ended ${run.endedAt}` : "";
  const error = run.error ? `: ${run.error}` : "";
  return `${run.id} ${run.workflow} ${run.status} started ${run.startedAt}${ended}${error}\n`;
}

function printRuns(term: Terminal, runs: Run[], output: Output): void {
  if (output === "json") term.out(jsonLine({ runs }));
  else for (const run of runs) term.out(runText(run));
}

export function workflowCommand(term: Terminal, exit: { code: number }) {
  const serverDefault = Deno.env.get("HEDDLE_SERVER") ?? DEFAULT_CONTROL_ADDRESS;
  const command = new Command("workflow")
    .description("Deploy, list, start, inspect and stop workflows on a running control plane.")
    .addHelpText(
      "after",
      example(
        "heddle workflow deploy examples/quickstart.he",
        "heddle workflow start Quickstart --wait",
        "heddle workflow runs",
      ),
    );
  const sub = (name: string, description: string) =>
    withCredentialOptions(
      command.command(name).description(description)
        .option(
          "--server <addresses>",
          "the control plane's address; several, comma-separated: the one that leads " +
            "($HEDDLE_SERVER)",
          serverDefault,
        ),
    ).addOption(outputOption());

  sub("deploy", "compile a program and store its workflows on the control plane")
    .argument("<file>", "the program")
    .addOption(setOption())
    .addOption(envFileOption())
    .action(async (file, options) => {
      const source = await readSourceFile(file);
      // The control plane gets the program and the files it needs, never a path to open.
      const files = await snapshotFile(file);
      const overrides = await collectOverrides(options);
      const response = await withServer(
        options,
        (api) => api.deploy({ file, source, overrides, files }),
      );
      if (options.output === "json") term.out(jsonLine(response));
      else {
        printWireDiagnostics(term, response);
        if (response.ok) term.out(response.workflows.map((w) => `deployed ${w}\n`).join(""));
      }
      if (!response.ok) exit.code = ExitCode.failure;
    });

  sub("list", "list deployed workflows").action(async (options) => {
    const workflows = await withServer(options, (api) => api.listWorkflows());
    if (options.output === "json") term.out(jsonLine({ workflows }));
    else {
      for (const w of workflows) {
        term.out(`${w.name} v${w.version} ${w.file} deployed ${w.deployedAt}\n`);
      }
    }
  });

  sub("start", "start a run of a deployed workflow")
    .argument("<workflow>", "the workflow's name")
    .option("--wait", "wait until the run ends; exit 1 if it failed")
    .action(async (workflow, options) => {
      const run = await withServer(options, async (api) => {
        let run = await api.startRun(workflow);
        while (options.wait && ["pending", "running", "draining"].includes(run.status)) {
          await new Promise((r) => setTimeout(r, 200));
          run = await api.getRun(run.id);
        }
        return run;
      });
      printRuns(term, [run], options.output);
      if (run.status === "failed") exit.code = ExitCode.failure;
    });

  sub("status", "show a run (from --server, else from the history in --state)")
    .argument("<run>", "the run's id")
    .action(async (id, options, cmd) => {
      const [run, details] = await withHistory(
        options,
        serverNamed(cmd),
        (api) => Promise.all([api.getRun(id), api.getRunDetails(id)]),
      );
      const { runId: _, ...kept } = details;
      if (options.output === "json") term.out(jsonLine({ ...run, ...kept }));
      else {
        term.out(
          runText(run) + summaryText(run) + attemptsText(details) + quarantinedText(details),
        );
      }
    });

  sub("runs", "list runs, newest first (from --server, else from the history in --state)")
    .argument("[workflow]", "only this workflow's runs")
    .option("--limit <n>", "runs per page (at most 1000)", parsePositiveInt, 100)
    .option("--page <token>", "the page to show, as the previous page named it")
    .option("--all", "every page, one after the other")
    .addOption(
      new Option("--status <status>", "only runs in this state").choices(RUN_STATUSES),
    )
    .action(async (workflow, options, cmd) => {
      const pages = await withHistory(options, serverNamed(cmd), async (api) => {
        const found: RunPage[] = [];
        let pageToken = options.page;
        do {
          const page = await api.listRuns({
            workflow,
            pageSize: options.limit,
            pageToken,
            status: options.status,
          });
          found.push(page);
          pageToken = page.nextPageToken;
        } while (options.all && pageToken);
        return found;
      });
      const runs = pages.flatMap((p) => p.runs);
      const next = pages[pages.length - 1].nextPageToken;
      if (options.output === "json") term.out(jsonLine({ runs, nextPageToken: next }));
      else {
        printRuns(term, runs, "text");
        if (next) term.err(`more runs: add --page ${next} (or --all)\n`);
      }
    });

  sub("logs", "print a run's log lines (from --server, else from the history in --state)")
    .argument("<run>", "the run's id")
    .option("-f, --follow", "keep printing new lines until the run ends")
    .option("--stage <id>", "only this stage's lines (its id, e.g. s1)")
    .action(async (id, options, cmd) => {
      await withHistory(
        options,
        serverNamed(cmd),
        (api) =>
          printLogs(term, api, {
            runId: id,
            stage: options.stage,
            follow: options.follow ?? false,
            output: options.output,
          }),
      );
    });

  sub("schedule", "schedule a workflow's runs (NAME --cron|--every), or `list` or `delete NAME`")
    .argument("<name>", "the workflow to schedule, or `list`, or `delete`")
    .argument("[workflow]", "after `delete`: the workflow whose schedule to delete")
    .option("--cron <expression>", 'when to run: five cron fields, in UTC (e.g. "*/5 * * * *")')
    .option("--every <duration>", "how often to run: e.g. 30s, 10m, 1h30m")
    .option("--allow-overlap", "start a run even while the previous one is still running")
    .addHelpText(
      "after",
      example(
        'heddle workflow schedule Quickstart --cron "0 * * * *"',
        "heddle workflow schedule Quickstart --every 10m",
        "heddle workflow schedule list",
        "heddle workflow schedule delete Quickstart",
      ),
    )
    .action(async (name, workflow, options) => {
      const request = scheduleRequest(name, workflow, options);
      const schedules = await withServer(
        options,
        async (api) =>
          request.kind === "list" ? await api.listSchedules() : [
            request.kind === "delete"
              ? await api.deleteSchedule(request.workflow)
              : await api.setSchedule(request.set),
          ],
      );
      if (options.output === "json") {
        term.out(jsonLine(request.kind === "list" ? { schedules } : schedules[0]));
      } else if (request.kind === "delete") {
        term.out(`deleted the schedule of ${request.workflow}\n`);
      } else term.out(schedules.map(scheduleText).join(""));
    });

  sub("stop", "drain and stop a run").argument("<run>", "the run's id").action(
    async (id, options) => {
      printRuns(term, [await withServer(options, (api) => api.stopRun(id))], options.output);
    },
  );
  return command;
}

/** The program's schema snapshot (`x.he` -> `x.schema.json`) when it has one. */
async function snapshotFile(file: string): Promise<DeployFile[]> {
  const path = snapshotPath(file);
  try {
    return [{ name: basename(path), content: await Deno.readTextFile(path) }];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw new CliError(`cannot read \`${path}\`: ${(e as Error).message}`, ExitCode.usage);
  }
}

type ScheduleCommand =
  | { kind: "list" }
  | { kind: "delete"; workflow: string }
  | { kind: "set"; set: SetScheduleRequest };

/**
 * What `schedule` was asked, checked before any call: a bad cron expression or interval is
 * a usage error naming the field, exit 2.
 */
function scheduleRequest(
  name: string,
  workflow: string | undefined,
  options: { cron?: string; every?: string; allowOverlap?: boolean },
): ScheduleCommand {
  const timing = options.cron !== undefined || options.every !== undefined;
  const usage = (message: string) => new CliError(message, ExitCode.usage);
  if (name === "list" || name === "delete") {
    if (timing) throw usage(`\`schedule ${name}\` takes no --cron or --every`);
    if (name === "list") {
      if (workflow !== undefined) throw usage("`schedule list` takes no workflow");
      return { kind: "list" };
    }
    if (workflow === undefined) throw usage("`schedule delete` needs the workflow's name");
    return { kind: "delete", workflow };
  }
  if (workflow !== undefined) throw usage(`unexpected argument \`${workflow}\``);
  if (options.cron !== undefined && options.every !== undefined) {
    throw usage("give --cron or --every, not both");
  }
  if (!timing) throw usage(`say when to run \`${name}\`: --cron "EXPRESSION" or --every DURATION`);
  try {
    if (options.cron !== undefined) parseCron(options.cron);
    else parseEvery(options.every!);
  } catch (e) {
    if (e instanceof ScheduleSyntaxError) {
      throw usage(`${options.cron !== undefined ? "--cron" : "--every"}: ${e.message}`);
    }
    throw e;
  }
  return {
    kind: "set",
    set: {
      workflow: name,
      cron: options.cron,
      every: options.every,
      allowOverlap: options.allowOverlap ?? false,
    },
  };
}

function scheduleText(s: ScheduleInfo): string {
  const when = s.cron ? `cron "${s.cron}"` : `every ${s.every}`;
  const overlap = s.allowOverlap ? ", overlapping runs allowed" : "";
  const last = s.lastAt ? `; last ${s.lastAt}: ${s.lastOutcome}` : "";
  return `${s.workflow} ${when}${overlap}; next ${s.nextAt}${last}\n`;
}

function summaryText(run: Run): string {
  const summary = JSON.parse(run.summaryJson || "{}") as {
    stages?: Record<string, { label: string; rowsIn: number; rowsOut: number }>;
    tries?: Record<string, { attempts: number; retries: number }>;
    placement?: Placement;
  };
  return Object.entries(summary.stages ?? {}).map(([id, s]) => {
    const tries = summary.tries?.[id];
    const attempts = tries ? `, ${tries.attempts} attempts, ${tries.retries} retries` : "";
    return `  ${id} ${s.label}: ${s.rowsIn} rows in, ${s.rowsOut} rows out${attempts}\n`;
  }).join("") + (summary.placement ? placementText(summary.placement) : "");
}

/** The run's attempt count, and each attempt of the batches that failed at least once. */
function attemptsText(details: RunDetails): string {
  const shown = troubledAttempts(details.attempts);
  const head = `  attempts: ${details.attemptsTotal}` +
    (shown.length > 0 ? `; batches that failed at least once:\n` : ", none failed\n");
  return head + shown.map((a) => `    ${attemptLine(a)}\n`).join("");
}

/** Quarantined rows `status` prints in text (`--output json` has every kept one). */
const QUARANTINED_SHOWN = 20;

/** The run's quarantined rows as the control plane knows them: where and why, not values. */
function quarantinedText(details: RunDetails): string {
  if (details.quarantinedTotal === 0) return "";
  const shown = details.quarantined.slice(0, QUARANTINED_SHOWN);
  const more = details.quarantinedTotal - shown.length;
  return `  quarantined rows: ${details.quarantinedTotal}\n` +
    shown.map((q) => {
      const which = q.batch < 0 ? `record ${q.row + 1}` : `batch ${q.batch} row ${q.row}`;
      const to = q.handler ? `to ${q.handler}` : "no handler";
      return `    ${q.stage} ${which} ${to} (${q.errorClass} ${q.errorKind}): ${q.message}\n`;
    }).join("") +
    (more > 0 ? `    ${more} more (--output json lists the first 1,000)\n` : "");
}

function attemptLine(a: Attempt): string {
  const where = `${a.stage} batch ${a.batch} attempt ${a.attempt} (${a.rows} rows) ${a.time}: ` +
    a.outcome;
  if (a.outcome !== "failed") return where;
  const next = a.retryInMs >= 0 ? `retried in ${a.retryInMs} ms` : "not retried";
  return `${where} (${a.errorClass} ${a.errorKind}): ${a.message}; ${next}`;
}
