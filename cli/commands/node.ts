/**
 * `heddle local` and `heddle cluster`: long-running daemons. A node has one or both roles:
 * control plane (serves `proto/control.proto`'s ControlPlane, keeps state in SQLite) and
 * worker (serves the Worker service and registers with a control plane). Even when both
 * roles share a process, the control plane reaches the worker through gRPC, so a
 * single-node setup exercises exactly the path a cluster uses.
 */
import { Command } from "@commander-js/extra-typings";
import { ControlPlane } from "../../runtime/control/mod.ts";
import { Worker } from "../../runtime/worker/mod.ts";
import {
  connectControlPlane,
  connectWorker,
  type Listening,
  serveControlPlane,
  serveWorker,
} from "../../runtime/protocol/mod.ts";
import { CliError, ExitCode, jsonLine, type Terminal } from "../_terminal.ts";
import { example, outputOption, parseBytes } from "../_options.ts";

export const DEFAULT_CONTROL_ADDRESS = "127.0.0.1:7447";

interface NodeOptions {
  controlPlane: boolean;
  worker: boolean;
  listen: string;
  join?: string;
  workerListen: string;
  advertise?: string;
  state: string;
  memoryBudget?: number;
  output: "text" | "json";
}

function defaultStateDir(): string {
  return Deno.env.get("HEDDLE_STATE_DIR") ?? `${Deno.env.get("HOME") ?? "."}/.heddle`;
}

export function localCommand(term: Terminal, exit: { code: number }) {
  return new Command("local")
    .description(
      "Start a single-node daemon: a control plane and a worker. Stop it with Ctrl-C or SIGTERM.",
    )
    .option("--listen <address>", "where the control plane listens", DEFAULT_CONTROL_ADDRESS)
    .option("--state <dir>", "where the control plane keeps its database", defaultStateDir())
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
  return new Command("cluster")
    .description("Start this node's cluster roles: control plane, worker, or both.")
    .option("--control-plane", "run the control plane on this node")
    .option("--worker", "run a worker on this node")
    .option("--listen <address>", "where the control plane listens", DEFAULT_CONTROL_ADDRESS)
    .option("--join <address>", "the control plane a worker registers with")
    .option("--worker-listen <address>", "where the worker listens", "127.0.0.1:0")
    .option("--advertise <address>", "the address peers use to reach this worker")
    .option("--state <dir>", "where the control plane keeps its database", defaultStateDir())
    .option("--memory-budget <size>", "shared memory before spilling (e.g. 1GiB)", parseBytes)
    .addOption(outputOption())
    .addHelpText(
      "after",
      example(
        "heddle cluster --control-plane --listen 10.0.0.1:7447",
        "heddle cluster --worker --join 10.0.0.1:7447 --worker-listen 10.0.0.2:7448",
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
      });
    });
}

/** Runs the node until SIGINT or SIGTERM, then drains and closes; returns the exit code. */
async function runNode(term: Terminal, options: NodeOptions): Promise<number> {
  // Shutdown order matters: the worker drains its runs first (their events still reach the
  // control plane), then the servers stop, then the control plane's database closes.
  let worker: Worker | null = null;
  let control: ControlPlane | null = null;
  const servers: Listening[] = [];
  const announce = (role: string, address: string) => {
    if (options.output === "json") term.out(jsonLine({ role, address }));
    else term.err(`heddle: ${role} listening on ${address}\n`);
  };
  try {
    let controlAddress = options.join ?? "";
    if (options.controlPlane) {
      await Deno.mkdir(options.state, { recursive: true });
      control = new ControlPlane({
        database: `${options.state}/control.db`,
        connect: (info) => connectWorker(info.address),
        heddlePath: Deno.env.get("HEDDLE_PATH") ?? undefined,
      });
      const server = await serveControlPlane(control, options.listen);
      servers.push(server);
      controlAddress = server.address;
      announce("control plane", server.address);
    }
    if (options.worker) {
      worker = new Worker({
        id: `${Deno.hostname()}-${Deno.pid}`,
        heddlePath: Deno.env.get("HEDDLE_PATH") ?? undefined,
        registry: { memoryBudget: options.memoryBudget },
      });
      const server = await serveWorker(worker, options.workerListen);
      servers.push(server);
      announce("worker", server.address);
      const client = connectControlPlane(controlAddress);
      try {
        await client.registerWorker({
          id: worker.id,
          address: options.advertise ?? server.address,
          host: Deno.hostname(),
        });
      } catch (e) {
        throw new CliError(
          `cannot register with the control plane at ${controlAddress}: ${(e as Error).message}`,
        );
      } finally {
        client.close();
      }
    }
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      Deno.addSignalListener("SIGINT", stop);
      Deno.addSignalListener("SIGTERM", stop);
    });
    term.err("heddle: stopping: draining runs\n");
    return ExitCode.ok;
  } finally {
    await worker?.close();
    control?.disconnect(); // clients before servers: see ControlPlane.disconnect
    for (const server of servers) await server.close();
    control?.close();
  }
}
