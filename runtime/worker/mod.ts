/**
 * The worker: runs the stages the control plane places on this host. It owns the host's
 * data locality registry and its plugin processes, and reports what happens as events. It
 * implements `WorkerApi`, so the control plane drives it identically in-process
 * (`heddle run`) and over gRPC (`heddle local`, `heddle cluster`).
 *
 * A daemon's worker is given the directories the operator allows (`allowPaths`): its runs'
 * file steps stay inside them, relative paths resolve against the first, and plugins come
 * only from the operator's module path, never from a directory a deployer named.
 */
import { dirname } from "node:path";
import type { Ir } from "../../compiler/mod.ts";
import { type RunEvent as ExecutorEvent, type RunHandle, startWorkflow } from "../executor/mod.ts";
import { DataPlane } from "../dataplane/mod.ts";
import { builtinConnectors } from "../connectors/mod.ts";
import { withFlightEdges } from "./_flight_edges.ts";
import { EventReport } from "./_event_report.ts";
import { PluginHost, type PluginInfo } from "../plugins/mod.ts";
import { Registry, type RegistryOptions } from "../registry/mod.ts";
import type {
  Credentials,
  ExecuteRequest,
  RunEvent,
  WorkerApi,
  WorkerHealth,
} from "../protocol/mod.ts";
import { readUnder } from "../fs/mod.ts";
import type { ModuleSearch } from "../../compiler/modules/mod.ts";
import { PackagedPlugins, packagesOf, type PackageSource } from "./_packages.ts";

export interface WorkerOptions {
  id: string;
  registry?: RegistryOptions;
  /** `HEDDLE_PATH` for finding plugin packages. */
  heddlePath?: string;
  /** Rows per source micro-batch. */
  batchRows?: number;
  /** Batches each queue between stages holds before its producer waits. */
  queueCapacity?: number;
  /**
   * Real paths of the directories runs may read and write; relative paths resolve against
   * the first. Undefined (`heddle run`): any path, relative to the program's directory, and
   * plugins next to the program are found as well.
   */
  allowPaths?: readonly string[];
  /** What this worker presents to other workers' Flight endpoints (the node's credentials). */
  flightCredentials?: Credentials;
  /**
   * Where plugin packages named by a deployed run come from when this worker does not
   * hold them (a cluster node: its cache and its control plane; `_packages.ts`).
   */
  packages?: PackageSource;
  /**
   * Report each part's per-batch events folded, at most once per this many milliseconds
   * (growing with the part's age) and at its end (`_event_report.ts`): a cluster worker,
   * whose control plane is across the network. Undefined: every event as it comes.
   */
  reportEveryMs?: number;
}

export class Worker implements WorkerApi {
  readonly id: string;
  readonly registry: Registry;
  /** The registry's objects offered to workers on other hosts (Arrow Flight, docs/cluster.md). */
  readonly dataPlane: DataPlane;
  #options: WorkerOptions;
  /** One plugin host per module search (a program directory, or a run's packages). */
  #plugins = new Map<string, PluginHost>();
  #runs = new Map<string, RunHandle>();

  constructor(options: WorkerOptions) {
    this.id = options.id;
    this.#options = options;
    this.registry = new Registry(options.registry);
    this.dataPlane = new DataPlane(this.registry);
  }

  async execute(
    request: ExecuteRequest,
    onEvent: (event: RunEvent) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const ir = JSON.parse(request.irJson) as Ir;
    const every = this.#options.reportEveryMs;
    const report = every === undefined ? null : new EventReport(onEvent, every);
    const emit = report ? (event: RunEvent) => report.push(event) : onEvent;
    const allow = this.#options.allowPaths;
    const baseDir = allow?.[0] ?? (request.baseDir || dirname(ir.file));
    const handle = startWorkflow(ir, {
      registry: this.registry,
      // Edges to and from other hosts are stages of the run's part (runtime/control).
      connectors: withFlightEdges(
        builtinConnectors(),
        this.dataPlane,
        this.#options.flightCredentials ?? { token: null, tls: null },
      ),
      plugins: this.#packagedPlugins(ir, request.runId, emit) ?? this.#pluginHost(baseDir),
      workflow: request.workflow,
      baseDir,
      allowPaths: allow,
      runId: request.runId,
      batchRows: this.#options.batchRows,
      queueCapacity: this.#options.queueCapacity,
      onEvent: (event) => emit(toWire(event)),
      signal,
    });
    this.#runs.set(request.runId, handle);
    try {
      await handle.done;
    } finally {
      report?.close();
      // A later placement of the same run may already have taken the id.
      if (this.#runs.get(request.runId) === handle) this.#runs.delete(request.runId);
    }
  }

  cancel(runId: string): Promise<boolean> {
    const handle = this.#runs.get(runId);
    handle?.stop();
    return Promise.resolve(handle !== undefined);
  }

  health(): Promise<WorkerHealth> {
    const stats = this.registry.stats();
    return Promise.resolve({
      status: "serving",
      activeRuns: this.#runs.size,
      registryMemoryBytes: stats.bytesInMemory,
      registrySpillBytes: stats.bytesSpilled,
      plugins: this.plugins().map((p) => ({ plugin: p.dir, restarts: p.restarts })),
    });
  }

  /** The plugin packages this worker's runs have used, with their processes' restarts. */
  plugins(): PluginInfo[] {
    return [...this.#plugins.values()].flatMap((host) => host.plugins());
  }

  /** Drains every run, stops plugin processes and frees the registry's memory. */
  async close(): Promise<void> {
    for (const run of this.#runs.values()) run.stop();
    await Promise.allSettled([...this.#runs.values()].map((r) => r.done));
    await Promise.allSettled([...this.#plugins.values()].map((p) => p.close()));
    this.dataPlane.close();
    this.registry.close();
  }

  /** The run's plugins when its IR names packages and this worker can fetch them. */
  #packagedPlugins(ir: Ir, runId: string, onEvent: (event: RunEvent) => void) {
    const refs = packagesOf(ir);
    const source = this.#options.packages;
    if (refs.length === 0 || !source) return null;
    return new PackagedPlugins(refs, {
      source,
      heddlePath: this.#options.heddlePath,
      host: (roots, dirs) =>
        this.#host(`packages:${dirs.join(":")}`, {
          programDir: roots[0],
          modulePath: roots.slice(1),
          read: readUnder(dirs),
        }),
      emit: (kind, detail) =>
        onEvent({
          runId,
          kind,
          stage: "",
          time: Date.now(),
          detail: { ...detail, worker: this.id },
        }),
    });
  }

  #host(key: string, search: ModuleSearch): PluginHost {
    let host = this.#plugins.get(key);
    if (!host) {
      host = new PluginHost({ registry: this.registry, search });
      this.#plugins.set(key, host);
    }
    return host;
  }

  #pluginHost(programDir: string): PluginHost {
    const heddlePath = this.#options.heddlePath;
    // With allowed directories this is a daemon: manifests only from the module path.
    const read = this.#options.allowPaths
      ? readUnder((heddlePath ?? "").split(":").filter((s) => s))
      : undefined;
    return this.#host(programDir, { programDir, heddlePath, read });
  }
}

/** The executor's typed event as the control channel carries it. */
function toWire(event: ExecutorEvent): RunEvent {
  const { runId, at, type, ...detail } = event;
  const stage = "stage" in event ? event.stage : "";
  return { runId, kind: type, stage, time: at, detail };
}

export { detectRuntimes } from "./_capabilities.ts";
/** How often a cluster worker reports a part's folded events at first (`_event_report.ts`). */
export const REPORT_EVERY_MS = 1000;
export type { PackageSource } from "./_packages.ts";
