/**
 * `heddle local` and `heddle cluster`: long-running daemons. A node has one or both roles:
 * control plane (serves `proto/control.proto`'s ControlPlane, keeps state in SQLite) and
 * worker (serves the Worker service and registers with a control plane). Even when both
 * roles share a process, the control plane reaches the worker through gRPC, so a
 * single-node setup exercises exactly the path a cluster uses.
 */
import { Command, Option, type OptionValues } from "@commander-js/extra-typings";
import { ensurePrivateDir } from "../../runtime/fs/mod.ts";
import {
  ControlPlane,
  type ControlPlaneOptions,
  DEFAULT_COMPILE_TIMEOUT_MS,
  DEFAULT_LEASE_MS,
  DEFAULT_LIMITS,
  DEFAULT_WORKER_TIMEOUT_MS,
  StandbyGate,
} from "../../runtime/control/mod.ts";
import { serveFlight } from "../../runtime/dataplane/mod.ts";
import type { Worker } from "../../runtime/worker/mod.ts";
import {
  checkListen,
  connectWorker,
  type Credentials,
  type Listening,
  ListenRefused,
  serveControlPlane,
  serveWorker,
} from "../../runtime/protocol/mod.ts";
import { CliError, ExitCode, jsonLine, type Terminal } from "../_terminal.ts";
import { example, outputOption, parseBytes, parseDuration, parsePositiveInt } from "../_options.ts";
import { nodeCredentialsOf, withCredentialOptions } from "../_credentials.ts";
import { createWorker } from "../_deploy.ts";
import { detectRuntimes, REPORT_EVERY_MS } from "../../runtime/worker/mod.ts";
import { packageCacheRoot } from "../../runtime/plugins/mod.ts";
import { startUi, uiListenOption } from "../_ui.ts";
import { keepLogLinesOption, keepRunsOption } from "../_history.ts";
import { type Leadership, openLeadership, stateError, stateStoreOf } from "../_state.ts";
import { joinControlPlane, type Joined } from "../_join.ts";

function commaList(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

export const DEFAULT_CONTROL_ADDRESS = "127.0.0.1:7447";
const DEFAULT_WORKER_TIMEOUT_S = DEFAULT_WORKER_TIMEOUT_MS / 1000;

interface NodeOptions {
  controlPlane: boolean;
  worker: boolean;
  listen: string;
  join?: string;
  workerListen: string;
  /** Where a cluster worker serves Arrow Flight (`heddle local` serves none). */
  flightListen?: string;
  advertise?: string;
  /** Seconds a worker may miss heartbeats before the control plane declares it dead. */
  workerTimeout?: number;
  /** Plugin runtimes the worker advertises (default: those found on this host). */
  runtimes?: string[];
  labels?: string[];
  state: string;
  tokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  insecure?: boolean;
  allowPath: string[];
  maxSourceSize: number;
  maxWorkflows: number;
  keepRuns: number;
  keepLogLines: number;
  compileTimeout: number;
  /** Seconds a PostgreSQL state database's leader lease lasts without renewal. */
  leaderLease: number;
  memoryBudget?: number;
  /** `--ui-listen`: undefined is the default address, `off` no UI. */
  uiListen?: string;
  output: "text" | "json";
  /** Fold each part's per-batch events (`heddle cluster` only: `WorkerOptions.reportEveryMs`). */
  reportEveryMs?: number;
}

/** `--allow-path DIR`, repeatable: where deployed programs' file steps may read and write. */
function allowPathOption() {
  return new Option(
    "--allow-path <dir>",
    "a directory file steps may read and write; relative paths resolve against the first " +
      "(repeatable; default: the state directory's workspace)",
  ).argParser((value: string, previous: string[]) => [...previous, value]).default(
    [] as string[],
  );
}

/** The allowed directories as real paths; the default workspace is created (0700). */
function allowedDirectories(options: NodeOptions): string[] {
  const given = options.allowPath.length > 0;
  const dirs = given ? options.allowPath : [`${options.state}/workspace`];
  return dirs.map((dir) => {
    try {
      if (!given) ensurePrivateDir(dir);
      if (!Deno.statSync(dir).isDirectory) throw new Error("not a directory");
      return Deno.realPathSync(dir);
    } catch (e) {
      const reason = e instanceof Deno.errors.NotFound ? "no such directory" : (e as Error).message;
      throw new CliError(`--allow-path ${dir}: ${reason}`, ExitCode.usage);
    }
  });
}

/** A daemon's `--insecure`, `--allow-path` and per-request limits. */
function withNodeOptions<
  Args extends unknown[],
  Opts extends OptionValues,
  Globals extends OptionValues,
>(command: Command<Args, Opts, Globals>) {
  return command
    .option("--insecure", "listen beyond loopback without TLS (the token travels in clear text)")
    .addOption(allowPathOption())
    .option(
      "--max-source-size <size>",
      "largest program (with its files) one deploy may send",
      parseBytes,
      DEFAULT_LIMITS.maxSourceBytes,
    )
    .option(
      "--max-workflows <n>",
      "most workflows one deploy may declare",
      parsePositiveInt,
      DEFAULT_LIMITS.maxWorkflows,
    )
    .addOption(keepRunsOption())
    .addOption(keepLogLinesOption())
    .addOption(uiListenOption())
    .option(
      "--leader-lease <seconds>",
      "with --state postgres://…: how long the leading control plane's lease lasts unrenewed " +
        "(a standby takes over this long after the leader died)",
      parsePositiveInt,
      DEFAULT_LEASE_MS / 1000,
    )
    .option(
      "--compile-timeout <duration>",
      "longest one deploy may compile (compiling runs on its own thread)",
      parseDuration,
      DEFAULT_COMPILE_TIMEOUT_MS,
    );
}

export function localCommand(term: Terminal, exit: { code: number }) {
  return withNodeOptions(withCredentialOptions(
    new Command("local")
      .description(
        "Start a single-node daemon: a control plane and a worker. Stop it with Ctrl-C or " +
          "SIGTERM.",
      )
      .option("--listen <address>", "where the control plane listens", DEFAULT_CONTROL_ADDRESS),
  ))
    .option("--memory-budget <size>", "shared memory before spilling (e.g. 1GiB)", parseBytes)
    .addOption(outputOption())
    .addHelpText("after", example("heddle local", "heddle workflow deploy examples/quickstart.he"))
    .action(async (options) => {
      exit.code = await runNode(term, {
        ...options,
        controlPlane: true,
        worker: true,
        workerListen: "127.0.0.1:0",
      });
    });
}

export function clusterCommand(term: Terminal, exit: { code: number }) {
  return withNodeOptions(withCredentialOptions(
    new Command("cluster")
      .description("Start this node's cluster roles: control plane, worker, or both.")
      .option("--control-plane", "run the control plane on this node")
      .option("--worker", "run a worker on this node")
      .option("--listen <address>", "where the control plane listens", DEFAULT_CONTROL_ADDRESS)
      .option(
        "--join <addresses>",
        "the control plane a worker registers with (several, comma-separated: it follows " +
          "the one that leads)",
      )
      .option("--worker-listen <address>", "where the worker listens", "127.0.0.1:0")
      .option(
        "--flight-listen <address>",
        "where the worker serves Arrow Flight to other workers (same credentials)",
        "127.0.0.1:0",
      )
      .option("--advertise <address>", "the address peers use to reach this worker")
      .option(
        "--worker-timeout <seconds>",
        "with --control-plane: a worker silent this long is dead and its runs are placed again",
        parsePositiveInt,
        DEFAULT_WORKER_TIMEOUT_S,
      )
      .option(
        "--runtimes <list>",
        "plugin runtimes this worker offers, comma-separated (default: the ones found here)",
        commaList,
      )
      .option(
        "--labels <list>",
        "labels this worker offers for placement, comma-separated (e.g. python,gpu)",
        commaList,
      ),
  ))
    .option("--memory-budget <size>", "shared memory before spilling (e.g. 1GiB)", parseBytes)
    .addOption(outputOption())
    .addHelpText(
      "after",
      example(
        "heddle cluster --control-plane --listen 10.0.0.1:7447 --tls-cert a.pem --tls-key " +
          "a.key --tls-ca ca.pem",
        "heddle cluster --worker --join 10.0.0.1:7447 --worker-listen 10.0.0.2:7448 " +
          "--token-file token --tls-cert b.pem --tls-key b.key --tls-ca ca.pem",
      ),
    )
    .action(async (options) => {
      if (!options.controlPlane && !options.worker) {
        throw new CliError("choose a role: --control-plane, --worker, or both", ExitCode.usage);
      }
      if (options.worker && !options.controlPlane && !options.join) {
        throw new CliError("a worker needs --join <control plane address>", ExitCode.usage);
      }
      exit.code = await runNode(term, {
        ...options,
        controlPlane: options.controlPlane ?? false,
        worker: options.worker ?? false,
        reportEveryMs: REPORT_EVERY_MS,
      });
    });
}

/** Runs the node until SIGINT or SIGTERM, then drains and closes; returns the exit code. */
async function runNode(term: Terminal, given: NodeOptions): Promise<number> {
  // Shutdown order matters: the worker drains its runs first (their events still reach the
  // control plane), then the servers stop, then the control plane's database closes.
  const store = stateStoreOf(given.state);
  const options = { ...given, state: store.dir };
  let worker: Worker | null = null;
  let control: ControlPlane | null = null;
  let leadership: Leadership | null = null;
  let joined: Joined | null = null;
  const servers: Listening[] = [];
  const announce = (role: string, address: string) => {
    if (options.output === "json") term.out(jsonLine({ role, address }));
    else term.err(`heddle: ${role} listening on ${address}\n`);
  };
  // The control plane's node makes the token on first start; a worker must be given it.
  const credentials = nodeCredentialsOf(options, options.controlPlane);
  if (options.controlPlane) checkAddress(term, options.listen, credentials, options);
  if (options.worker) checkAddress(term, options.workerListen, credentials, options);
  if (options.worker && options.flightListen) {
    checkAddress(term, options.flightListen, credentials, options);
  }
  // Listening for signals from the start: a stop during startup still drains and closes.
  const stopRequested = new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, resolve);
  });
  try {
    let controlAddress = options.join ?? "";
    if (options.controlPlane) {
      // With --token-file nothing else has made the state directory yet.
      ensurePrivateDir(options.state);
      if (store.postgres) {
        leadership = await openLeadership(
          term,
          store.database,
          options.leaderLease * 1000,
          stopRequested,
        );
      }
      // Served before this process leads (a standby refuses calls with the leader's
      // address); a SQLite control plane leads at once, before the next call is read.
      const gate = leadership?.gate ?? new StandbyGate();
      const server = await serveControlPlane(gate.api, options.listen, credentials);
      servers.push(server);
      controlAddress = server.address;
      announce("control plane", server.address);
      if (leadership && !await leadership.lead(server.address)) return ExitCode.ok;
      control = newControlPlane(store.database, {
        connect: (info) => connectWorker(info.address, credentials),
        workerTimeoutMs: (options.workerTimeout ?? DEFAULT_WORKER_TIMEOUT_S) * 1000,
        heddlePath: Deno.env.get("HEDDLE_PATH") ?? undefined,
        packages: `${options.state}/packages`,
        limits: {
          maxSourceBytes: options.maxSourceSize,
          maxWorkflows: options.maxWorkflows,
          keepRuns: options.keepRuns,
          keepLogLines: options.keepLogLines,
        },
        compileTimeoutMs: options.compileTimeout,
        // Runs a killed control plane (`heddle cluster` or `heddle local`) left running are
        // resumed from their sources' committed positions once their workers are back.
        resumeRuns: true,
      });
      gate.lead(control);
      control.observe({
        workerGone: (id, how, reason) =>
          term.err(
            `heddle: worker ${id} ${how === "left" ? "left" : `declared dead: ${reason}`}\n`,
          ),
      });
      const ui = startUi(term, {
        control,
        address: options.uiListen,
        credentials,
        insecure: options.insecure ?? false,
        output: options.output,
      });
      if (ui) servers.unshift(ui); // closed first: its live pages end before the rest
    }
    if (options.worker) {
      worker = createWorker({
        id: `${Deno.hostname()}-${Deno.pid}`,
        heddlePath: Deno.env.get("HEDDLE_PATH") ?? undefined,
        allowPaths: allowedDirectories(options),
        // Pooled segments: objects received over Flight reuse pages (docs/cluster.md).
        registry: { memoryBudget: options.memoryBudget, pool: true },
        flightCredentials: credentials,
        // Plugin packages of deployed runs: cached here, fetched from the control plane.
        // (runs come only once the worker joined: `joined` is set by then).
        packages: { cache: packageCacheRoot(), fetch: (ref) => joined!.leader().fetchPackage(ref) },
        reportEveryMs: options.reportEveryMs,
      });
      const server = await serveWorker(worker, options.workerListen, credentials);
      servers.push(server);
      announce("worker", server.address);
      let flightAddress = "";
      if (options.flightListen) {
        // The data plane next to the control service, behind the same token and TLS.
        const flight = await serveFlight(worker.dataPlane, options.flightListen, credentials);
        servers.push(flight);
        flightAddress = flight.address;
        announce("flight", flight.address);
      }
      const info = {
        id: worker.id,
        address: options.advertise ?? server.address,
        host: Deno.hostname(),
        runtimes: options.runtimes ?? await detectRuntimes(),
        labels: options.labels ?? [],
        flightAddress,
      };
      joined = await joinControlPlane(commaList(controlAddress), info, credentials);
    }
    // Schedules fire once the node's own worker (if any) has registered: a firing missed
    // while the daemon was down runs now rather than failing for want of a worker.
    control?.startSchedules();
    await stopRequested;
    term.err("heddle: stopping: draining runs\n");
    return ExitCode.ok;
  } finally {
    // Runs drain while the worker still heartbeats; then it leaves, and the control plane
    // closes its client to this worker before the worker's servers close.
    await worker?.close();
    await joined?.leave();
    if (control) joined?.close(); // clients before servers: see ControlPlane.disconnect
    control?.disconnect();
    for (const server of servers) await server.close();
    control?.close();
    await leadership?.close();
  }
}

/** A control plane on the state database (errors of a PostgreSQL one: one line, exit 1). */
function newControlPlane(
  database: string,
  options: Omit<ControlPlaneOptions, "database">,
): ControlPlane {
  try {
    return new ControlPlane({ ...options, database });
  } catch (e) {
    return stateError(e);
  }
}

/** Refuses plaintext beyond loopback unless `--insecure`, which prints a warning. */
function checkAddress(
  term: Terminal,
  address: string,
  credentials: Credentials,
  options: NodeOptions,
): void {
  try {
    const warning = checkListen(address, credentials, options.insecure ?? false);
    if (warning) term.err(`heddle: ${warning}\n`);
  } catch (e) {
    if (e instanceof ListenRefused) throw new CliError(e.message, ExitCode.usage);
    throw e;
  }
}
