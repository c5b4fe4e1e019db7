/**
 * Prometheus metrics of a control plane (`docs/metrics.md`), in the text format, through
 * prom-client (a maintained client library, with its own registry: nothing of the default
 * one, so every metric is named `heddle_*`). Counters and histograms are fed from the run
 * events the control plane passes on, which never carry row payloads; worker liveness and
 * the gauges of each worker's registry and plugin processes come from asking every worker
 * for its health at scrape time, the same way whether it shares the control plane's
 * process or runs on another host.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ControlObserver } from "../control/mod.ts";
import {
  FIRST_ATTEMPTS,
  firstAttemptsOf,
  LATENCY_BOUNDS_MS,
  type Run,
  type RunEvent,
  type WorkerApi,
  type WorkerHealth,
  type WorkerInfo,
} from "../protocol/mod.ts";

export interface MetricsSources {
  /** What the metrics follow: the control plane's events and run changes. */
  control: { observe(observer: ControlObserver): () => void };
  /** The workers runs are placed on, asked for their health at each scrape. */
  workers?: () => { info: WorkerInfo; api: Pick<WorkerApi, "health"> }[];
}

/** A worker's health at a scrape; null when it did not answer in time. */
interface WorkerReport {
  worker: string;
  health: WorkerHealth | null;
}

/** How long a scrape waits for a worker's health before counting it down. */
const HEALTH_TIMEOUT_MS = 2000;
/**
 * Attempt durations, in seconds: 1 ms to a minute. The bounds a cluster worker's
 * `first-attempts` counts use, so that they land in the same buckets.
 */
const LATENCY_BUCKETS = LATENCY_BOUNDS_MS.map((ms) => ms / 1000);
const FINISHED: ReadonlySet<string> = new Set(["succeeded", "failed", "stopped"]);

type StageTotals = { rowsIn: number; rowsOut: number; batches: number; bytesOut: number };

export class Metrics {
  readonly registry = new Registry();
  #unobserve: () => void;
  /** The last cumulative counters of each stage of each live run, for turning them into increments. */
  #seen = new Map<string, Map<string, StageTotals>>();
  #restartsSeen = new Map<string, number>();
  #sources: MetricsSources;
  /** The workers' health for the scrape under way (see `text`). */
  #reports: Promise<WorkerReport[]> | null = null;

  readonly #rowsIn: Counter<"workflow" | "stage">;
  readonly #rowsOut: Counter<"workflow" | "stage">;
  readonly #batches: Counter<"workflow" | "stage">;
  readonly #bytesOut: Counter<"workflow" | "stage">;
  readonly #latency: Histogram<"workflow" | "stage">;
  readonly #attempts: Counter<"workflow" | "stage" | "outcome">;
  readonly #retries: Counter<"workflow" | "stage">;
  readonly #quarantined: Counter<"workflow" | "stage" | "handler">;
  readonly #runsStarted: Counter<"workflow">;
  readonly #runsFinished: Counter<"workflow" | "status">;
  readonly #lag: Gauge<"workflow" | "stage" | "topic" | "partition">;
  readonly #restarts: Counter<"worker" | "plugin">;

  constructor(sources: MetricsSources) {
    this.#sources = sources;
    const registers = [this.registry];
    const stage = ["workflow", "stage"] as const;
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
      new Counter<L>({ name, help, labelNames, registers });
    this.#rowsIn = counter(
      "heddle_rows_in_total",
      "Rows a stage received (a source: records it read, including ones it could not parse).",
      stage,
    );
    this.#rowsOut = counter(
      "heddle_rows_out_total",
      "Rows a stage passed on (a sink: rows it wrote).",
      stage,
    );
    this.#batches = counter("heddle_batches_total", "Micro-batches a stage processed.", stage);
    this.#bytesOut = counter(
      "heddle_bytes_out_total",
      "Bytes of the Arrow batches a stage passed on (their buffers' sizes).",
      stage,
    );
    this.#latency = new Histogram({
      name: "heddle_stage_latency_seconds",
      help: "How long a stage's successful attempts on a batch took.",
      labelNames: stage,
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#attempts = counter(
      "heddle_attempts_total",
      "Attempts of a stage on a batch, by outcome (started, succeeded, failed).",
      [...stage, "outcome"],
    );
    this.#retries = counter(
      "heddle_retries_total",
      "Failed attempts that were tried again.",
      stage,
    );
    this.#quarantined = counter(
      "heddle_quarantined_rows_total",
      "Rows routed to a handler (handler `none`: no handler caught them and the run failed).",
      [...stage, "handler"],
    );
    this.#runsStarted = counter("heddle_runs_started_total", "Runs started.", ["workflow"]);
    this.#runsFinished = counter(
      "heddle_runs_finished_total",
      "Runs that ended, by status (succeeded, failed, stopped).",
      ["workflow", "status"],
    );
    this.#lag = new Gauge({
      name: "heddle_kafka_consumer_lag",
      help: "Messages of a Kafka partition after the source's last committed offset.",
      labelNames: [...stage, "topic", "partition"],
      registers,
    });
    const reports = () => this.#reports ?? this.#ask(sources);
    this.#restarts = new Counter({
      name: "heddle_plugin_restarts_total",
      help: "Plugin processes started again after one crashed, hung or was killed.",
      labelNames: ["worker", "plugin"],
      registers,
      collect: async () => this.#collectRestarts(await reports()),
    });
    /** A gauge per worker, set from each answering worker's health at every scrape. */
    const workerGauge = (name: string, help: string, value: (h: WorkerHealth) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["worker"],
        registers,
        async collect() {
          this.reset();
          for (const { worker, health } of await reports()) {
            if (health) this.set({ worker }, value(health));
          }
        },
      });
    workerGauge(
      "heddle_registry_memory_bytes",
      "Bytes of shared memory a worker's registry holds.",
      (h) => Number(h.registryMemoryBytes),
    );
    workerGauge(
      "heddle_registry_spill_bytes",
      "Bytes of a worker's registry objects spilled to files.",
      (h) => Number(h.registrySpillBytes),
    );
    workerGauge(
      "heddle_worker_active_runs",
      "Runs a worker is executing, as its health check says.",
      (h) => h.activeRuns,
    );
    new Gauge({
      name: "heddle_worker_up",
      help: "1 when a worker answered its health check at this scrape, else 0.",
      labelNames: ["worker"],
      registers,
      async collect() {
        this.reset();
        for (const { worker, health } of await reports()) this.set({ worker }, health ? 1 : 0);
      },
    });
    this.#unobserve = sources.control.observe({
      event: (workflow, event) => this.#onEvent(workflow, event),
      runChanged: (run) => this.#onRunChanged(run),
    });
  }

  /** The metrics in Prometheus' text format; every worker is asked for its health once. */
  async text(): Promise<string> {
    const reports = this.#ask(this.#sources);
    this.#reports = reports;
    try {
      return await this.registry.metrics();
    } finally {
      if (this.#reports === reports) this.#reports = null;
    }
  }

  /** Every worker's health, each waited for at most `HEALTH_TIMEOUT_MS`. */
  #ask(sources: MetricsSources): Promise<WorkerReport[]> {
    return Promise.all((sources.workers?.() ?? []).map(async ({ info, api }) => ({
      worker: info.id,
      health: await withTimeout(api.health(), HEALTH_TIMEOUT_MS).catch(() => null),
    })));
  }

  /** Serves `text()` (for the UI's `/metrics`). */
  async respond(): Promise<Response> {
    return new Response(await this.text(), {
      headers: { "content-type": this.registry.contentType },
    });
  }

  close(): void {
    this.#unobserve();
  }

  #onRunChanged(run: Run): void {
    if (run.status === "running" && !this.#seen.has(run.id)) {
      this.#seen.set(run.id, new Map());
      this.#runsStarted.inc({ workflow: run.workflow });
    }
    if (FINISHED.has(run.status)) {
      this.#seen.delete(run.id);
      this.#runsFinished.inc({ workflow: run.workflow, status: run.status });
    }
  }

  #onEvent(workflow: string, event: RunEvent): void {
    const labels = { workflow, stage: event.stage };
    const d = event.detail;
    switch (event.kind) {
      case "stage-progress": {
        const stages = this.#seen.get(event.runId) ?? new Map<string, StageTotals>();
        this.#seen.set(event.runId, stages);
        const last = stages.get(event.stage) ?? { rowsIn: 0, rowsOut: 0, batches: 0, bytesOut: 0 };
        const now: StageTotals = {
          rowsIn: Number(d.rowsIn ?? 0),
          rowsOut: Number(d.rowsOut ?? 0),
          batches: Number(d.batches ?? 0),
          bytesOut: Number(d.bytesOut ?? 0),
        };
        this.#rowsIn.inc(labels, Math.max(0, now.rowsIn - last.rowsIn));
        this.#rowsOut.inc(labels, Math.max(0, now.rowsOut - last.rowsOut));
        this.#batches.inc(labels, Math.max(0, now.batches - last.batches));
        this.#bytesOut.inc(labels, Math.max(0, now.bytesOut - last.bytesOut));
        stages.set(event.stage, now);
        break;
      }
      case "attempt-started":
        this.#attempts.inc({ ...labels, outcome: "started" });
        break;
      case "attempt-succeeded":
        this.#attempts.inc({ ...labels, outcome: "succeeded" });
        this.#latency.observe(labels, Number(d.durationMs ?? 0) / 1000);
        break;
      case "attempt-failed":
        this.#attempts.inc({ ...labels, outcome: "failed" });
        if (d.retryInMs !== null && d.retryInMs !== undefined) this.#retries.inc(labels);
        break;
      case FIRST_ATTEMPTS: {
        const first = firstAttemptsOf(d);
        if (first.started > 0) this.#attempts.inc({ ...labels, outcome: "started" }, first.started);
        if (first.succeeded > 0) {
          this.#attempts.inc({ ...labels, outcome: "succeeded" }, first.succeeded);
        }
        // Each bucket's attempts observed at their mean duration, which lies in the same
        // bucket: the histogram's buckets, count and sum come out as if observed one by one.
        for (const [i, count, sumMs] of first.buckets) {
          const mean = Math.min(sumMs / count / 1000, LATENCY_BUCKETS[i] ?? Infinity);
          for (let n = 0; n < count; n++) this.#latency.observe(labels, mean);
        }
        break;
      }
      case "rows-quarantined":
        this.#quarantined.inc(
          { ...labels, handler: d.handler ? String(d.handler) : "none" },
          Number(d.rows ?? 0),
        );
        break;
      case "source-lag": {
        const partitions = (d.partitions ?? {}) as Record<string, number>;
        for (const [partition, lag] of Object.entries(partitions)) {
          this.#lag.set({ ...labels, topic: String(d.topic ?? ""), partition }, lag);
        }
        break;
      }
    }
  }

  /**
   * Adds each plugin's restarts since the last scrape; a worker that started again counts
   * from zero, so a count lower than the last is taken as new.
   */
  #collectRestarts(reports: WorkerReport[]): void {
    for (const { worker, health } of reports) {
      for (const { plugin, restarts } of health?.plugins ?? []) {
        const key = `${worker}\0${plugin}`;
        const seen = this.#restartsSeen.get(key) ?? 0;
        const delta = restarts >= seen ? restarts - seen : restarts;
        if (delta > 0) this.#restarts.inc({ worker, plugin }, delta);
        this.#restartsSeen.set(key, restarts);
      }
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
