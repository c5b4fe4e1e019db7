/**
 * How commands keep and read the run history: the retention options (`--keep-runs`,
 * `--keep-log-lines`) that `heddle run` and the daemons share, where a reading command
 * finds the history (a control plane named with `--server`, else the state directory's
 * database read directly), and how log lines are printed and followed. Reading the
 * database directly is what lets `heddle workflow runs|status|logs` show the runs of
 * `heddle run`, which has no daemon to ask.
 */
import { Option } from "@commander-js/extra-typings";
import {
  DEFAULT_LIMITS,
  type HistoryApi,
  isPostgresUrl,
  openHistory,
  StateStoreError,
} from "../runtime/control/mod.ts";
import { ControlError, type CredentialOptions, type LogLine } from "../runtime/protocol/mod.ts";
import { CliError, ExitCode, jsonLine, type Terminal } from "./_terminal.ts";
import { parsePositiveInt } from "./_options.ts";
import { clientCredentialsOf } from "./_credentials.ts";
import { connectLeader, serverAddresses } from "./_leader.ts";

/** `--keep-runs N`: finished runs the history keeps. */
export function keepRunsOption() {
  return new Option(
    "--keep-runs <n>",
    "finished runs kept in the history (older ones and their logs are deleted)",
  ).argParser(parsePositiveInt).default(DEFAULT_LIMITS.keepRuns);
}

/** `--keep-log-lines N`: log lines kept per run. */
export function keepLogLinesOption() {
  return new Option(
    "--keep-log-lines <n>",
    "log lines kept per run (later ones are counted, not kept)",
  ).argParser(parsePositiveInt).default(DEFAULT_LIMITS.keepLogLines);
}

/** The history database inside a state directory, or the PostgreSQL one `--state` names. */
export function historyPath(state: string): string {
  return isPostgresUrl(state) ? state : `${state}/control.db`;
}

export interface HistoryOptions extends CredentialOptions {
  server: string;
}

/**
 * Calls `fn` with the history: the control plane at `--server` when one was named (on the
 * command line, in `$HEDDLE_SERVER`, or implied by `--token-file` or TLS files), else the
 * database in `--state`. Failures become one line and exit 1.
 */
export async function withHistory<T>(
  options: HistoryOptions,
  serverNamed: boolean,
  fn: (api: HistoryApi) => Promise<T>,
): Promise<T> {
  const remote = serverNamed || options.tokenFile !== undefined || options.tlsCa !== undefined;
  let api: HistoryApi & { close(): void };
  try {
    api = remote
      ? connectLeader(serverAddresses(options.server), clientCredentialsOf(options))
      : openHistory(historyPath(options.state));
  } catch (e) {
    if (e instanceof ControlError) {
      throw new CliError(
        `${e.message}: no run was recorded in ${options.state} (give --state, or --server ` +
          "to ask a control plane)",
      );
    }
    if (e instanceof StateStoreError) throw new CliError(e.message);
    throw e;
  }
  return await callApi(api, options.server, fn);
}

/**
 * Runs `fn` with `api` (a control plane's client or a history), then closes it; the control
 * plane's refusals and an unreachable server become one line and exit 1.
 */
export async function callApi<A extends { close(): void }, T>(
  api: A,
  server: string,
  fn: (api: A) => Promise<T>,
): Promise<T> {
  try {
    return await fn(api);
  } catch (e) {
    if (e instanceof ControlError) {
      // Several addresses: the message names each already (`_leader.ts`).
      const one = serverAddresses(server).length === 1;
      const where = e.code === "unavailable" && one
        ? ` (is \`heddle local\` running at ${server}?)`
        : "";
      throw new CliError(`${e.message}${where}`, ExitCode.failure);
    }
    throw e;
  } finally {
    api.close();
  }
}

/** How often `--follow` asks for new lines. */
const FOLLOW_EVERY_MS = 250;

/**
 * Prints a run's log lines from the first; with `follow`, keeps printing new ones until the
 * run has ended and its last line is out.
 */
export async function printLogs(
  term: Terminal,
  api: HistoryApi,
  request: { runId: string; stage?: string; follow: boolean; output: "text" | "json" },
): Promise<void> {
  let after = 0;
  while (true) {
    const page = await api.listLogs({ runId: request.runId, stage: request.stage, after });
    for (const line of page.lines) {
      term.out(request.output === "json" ? jsonLine(line) : logText(line));
    }
    after = page.next;
    if (page.complete) return;
    if (page.lines.length > 0) continue;
    if (!request.follow) return;
    await new Promise((r) => setTimeout(r, FOLLOW_EVERY_MS));
  }
}

function logText(line: LogLine): string {
  const stage = line.stage ? ` ${line.stage}` : "";
  return `${line.time} ${line.level.padEnd(5)}${stage}: ${line.message}\n`;
}
