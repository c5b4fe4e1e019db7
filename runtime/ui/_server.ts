/**
 * The web UI's HTTP server: the page shell and its bundled assets, a small JSON API over
 * the control plane, server-sent events for live pages, Stop and Start-again as POSTs, and
 * `/metrics`. It reads what the control plane exposes (runs, their events, the stored IR)
 * and never anything a run writes; every request passes `checkRequest` first.
 */
import { type ControlObserver, type ControlPlane, troubledAttempts } from "../control/mod.ts";
import { ControlError, type Run, type RunEvent, type RunStatus } from "../protocol/mod.ts";
import { APP_CSS, APP_JS } from "./_assets.generated.ts";
import { checkRequest } from "./_auth.ts";
import { type RunPlacement, type StageInfo, stageInfo, workflowGraph } from "./_graph.ts";
import { Journal, stageView } from "./_journal.ts";
import type {
  DeployErrorView,
  FrontPage,
  LogLine,
  RunRow,
  RunView,
  StageView,
  WorkflowPage,
  WorkflowView,
} from "./_views.ts";

/** What the UI needs of the control plane it serves. */
export type UiControl = Pick<
  ControlPlane,
  | "listWorkflows"
  | "listRuns"
  | "getRun"
  | "startRun"
  | "stopRun"
  | "observe"
  | "workflowIr"
  | "listLogs"
  | "getRunDetails"
  | "listSchedules"
>;

/** Something else served on the UI's address (`/metrics`). */
export type ExtraRoute = (request: Request) => Promise<Response> | Response;

/** Runs the front page and a workflow page list; deploy errors kept. */
const RECENT_RUNS = 50;
const MAX_DEPLOY_ERRORS = 20;
/** Log lines a run page shows (the latest). */
const MAX_LOG_LINES = 2000;
/** Attempts a run page lists (the first ones of batches that failed). */
const MAX_ATTEMPTS = 500;
/** Quarantined rows a run page lists (the first ones; the history keeps as many). */
const MAX_QUARANTINED = 1000;
/** Live pages get at most one update this often. */
const PUSH_INTERVAL_MS = 250;
const KEEPALIVE_MS = 15_000;

const SHELL = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Heddle</title><link rel="stylesheet" href="/assets/app.css"></head>
<body><div id="app"></div><script type="module" src="/assets/app.js"></script></body></html>
`;

interface Subscriber {
  /** A run id, or null for "anything about runs or workflows changed". */
  run: string | null;
  send(data: string): void;
  /** Ends the stream (the server is closing). */
  close(): void;
}

function json(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
}

function errorResponse(e: unknown): Response {
  if (e instanceof ControlError) {
    const status = e.code === "not-found" ? 404 : e.code === "invalid" ? 400 : 503;
    return json({ error: e.message }, status);
  }
  throw e;
}

export class UiApp {
  #control: UiControl;
  #journal = new Journal();
  #deployErrors: DeployErrorView[] = [];
  #subscribers = new Set<Subscriber>();
  #dirtyRuns = new Set<string>();
  #dirtyLists = false;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #unobserve: () => void;
  #routes: Map<string, ExtraRoute>;
  #token: string;
  /** Stages of stored IRs, by IR text: a page of runs reads the same IR many times. */
  #stageInfo = new Map<string, Map<string, StageInfo>>();

  constructor(control: UiControl, token: string, routes: Map<string, ExtraRoute> = new Map()) {
    this.#control = control;
    this.#token = token;
    this.#routes = routes;
    const observer: ControlObserver = {
      event: (_workflow, event) => this.#onEvent(event),
      runChanged: (run) => this.#onRunChanged(run),
      deployed: (file, response) => {
        if (!response.ok) {
          this.#deployErrors.unshift({
            file,
            at: new Date().toISOString(),
            diagnostics: response.diagnostics,
          });
          this.#deployErrors.length = Math.min(this.#deployErrors.length, MAX_DEPLOY_ERRORS);
        }
        this.#touch(null);
      },
    };
    this.#unobserve = control.observe(observer);
  }

  close(): void {
    this.#unobserve();
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#subscribers.forEach((s) => s.close());
    this.#subscribers.clear();
  }

  #onEvent(event: RunEvent): void {
    this.#journal.add(event);
    this.#touch(event.runId);
  }

  #onRunChanged(run: Run): void {
    this.#touch(run.id);
  }

  /** Marks a run (and the lists) as changed; subscribers hear of it within the interval. */
  #touch(runId: string | null): void {
    if (runId) this.#dirtyRuns.add(runId);
    this.#dirtyLists = true;
    if (this.#timer === null) {
      const timer = setTimeout(() => this.#push(), PUSH_INTERVAL_MS);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  async #push(): Promise<void> {
    this.#timer = null;
    const runs = [...this.#dirtyRuns];
    const lists = this.#dirtyLists;
    this.#dirtyRuns.clear();
    this.#dirtyLists = false;
    for (const id of runs) {
      const watchers = [...this.#subscribers].filter((s) => s.run === id);
      if (watchers.length === 0) continue;
      const view = await this.runView(id).catch(() => null);
      if (view) watchers.forEach((s) => s.send(JSON.stringify(view)));
    }
    if (lists) {
      for (const s of this.#subscribers) if (s.run === null) s.send("changed");
    }
  }

  async handle(request: Request): Promise<Response> {
    const refused = checkRequest(request, this.#token);
    if (refused) return refused;
    const url = new URL(request.url);
    const path = url.pathname;
    const extra = this.#routes.get(path);
    if (extra) return await extra(request);
    try {
      if (request.method === "POST") return await this.#post(path);
      if (request.method !== "GET" && request.method !== "HEAD") {
        return new Response("method not allowed\n", { status: 405 });
      }
      return await this.#get(path, url.searchParams);
    } catch (e) {
      return errorResponse(e);
    }
  }

  async #post(path: string): Promise<Response> {
    const stop = path.match(/^\/api\/runs\/([^/]+)\/stop$/);
    if (stop) return json(await this.#control.stopRun(decodeURIComponent(stop[1])));
    const start = path.match(/^\/api\/workflows\/([^/]+)\/start$/);
    if (start) return json(await this.#control.startRun(decodeURIComponent(start[1])));
    return json({ error: "not found" }, 404);
  }

  async #get(path: string, query: URLSearchParams): Promise<Response> {
    if (path === "/assets/app.js") return asset(APP_JS, "text/javascript");
    if (path === "/assets/app.css") return asset(APP_CSS, "text/css");
    if (path === "/favicon.ico") return new Response(null, { status: 204 });
    if (path === "/api/front") return json(await this.frontPage());
    if (path === "/api/runs") {
      return json(await this.runRows(query.get("workflow") ?? "", query.get("status") ?? ""));
    }
    if (path === "/api/stream") return this.#stream(query.get("run"));
    const run = path.match(/^\/api\/runs\/([^/]+)$/);
    if (run) return json(await this.runView(decodeURIComponent(run[1])));
    const workflow = path.match(/^\/api\/workflows\/([^/]+)$/);
    if (workflow) return json(await this.workflowPage(decodeURIComponent(workflow[1])));
    if (path === "/" || /^\/(runs|workflows)(\/[^/]+)?$/.test(path)) {
      return new Response(SHELL, {
        headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
      });
    }
    return new Response("not found\n", { status: 404 });
  }

  #stream(run: string | null): Response {
    let subscriber: Subscriber | null = null;
    let keepalive: ReturnType<typeof setInterval> | undefined;
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const write = (text: string) => {
          try {
            controller.enqueue(encoder.encode(text));
          } catch {
            // The page went away; `cancel` removes the subscriber.
          }
        };
        subscriber = {
          run,
          send: (data) => write(`data: ${data}\n\n`),
          close: () => {
            clearInterval(keepalive);
            try {
              controller.close();
            } catch {
              // Already closed by the page going away.
            }
          },
        };
        this.#subscribers.add(subscriber);
        write(": connected\n\n");
        const timer = setInterval(() => write(": keepalive\n\n"), KEEPALIVE_MS);
        Deno.unrefTimer(timer);
        keepalive = timer;
      },
      cancel: () => {
        clearInterval(keepalive);
        if (subscriber) this.#subscribers.delete(subscriber);
      },
    });
    return new Response(body, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-store" },
    });
  }

  async workflows(): Promise<WorkflowView[]> {
    const workflows = await this.#control.listWorkflows();
    const schedules = new Map((await this.#control.listSchedules()).map((s) => [s.workflow, s]));
    return await Promise.all(workflows.map(async (w) => {
      const last = (await this.#control.listRuns({ workflow: w.name, pageSize: 1 })).runs[0];
      const s = schedules.get(w.name);
      return {
        ...w,
        lastRun: last ? { id: last.id, status: last.status, startedAt: last.startedAt } : null,
        schedule: s
          ? {
            when: s.cron ? `cron ${s.cron}` : `every ${s.every}`,
            nextAt: s.nextAt,
            lastAt: s.lastAt,
            lastOutcome: s.lastOutcome,
          }
          : null,
      };
    }));
  }

  async frontPage(): Promise<FrontPage> {
    return {
      workflows: await this.workflows(),
      deployErrors: this.#deployErrors,
      runs: await this.runRows("", ""),
    };
  }

  /** Recent runs, newest first, of `workflow` (all when empty) in `status` (any when empty). */
  async runRows(workflow: string, status: string): Promise<RunRow[]> {
    const page = await this.#control.listRuns({
      workflow,
      status: status as RunStatus | "",
      pageSize: RECENT_RUNS,
    });
    return page.runs.map((run) => this.#row(run, this.#stagesOf(run)));
  }

  async workflowPage(name: string): Promise<WorkflowPage> {
    const workflow = (await this.workflows()).find((w) => w.name === name);
    const irJson = this.#control.workflowIr(name);
    if (!workflow || irJson === null) {
      throw new ControlError(`no workflow \`${name}\` is deployed`, "not-found");
    }
    const runs = await this.runRows(name, "");
    const latest = (await this.#control.listRuns({ workflow: name, pageSize: 1 })).runs[0];
    const placement = latest?.summaryJson
      ? (JSON.parse(latest.summaryJson).placement as RunPlacement | undefined) ?? null
      : null;
    return { workflow, graph: workflowGraph(irJson, name, placement), runs };
  }

  async runView(id: string): Promise<RunView> {
    const run = await this.#control.getRun(id);
    const stages = this.#stagesOf(run);
    const details = await this.#control.getRunDetails(id);
    const troubled = troubledAttempts(details.attempts);
    const labelOf = (stage: string) => stages.find((s) => s.id === stage)?.label ?? "";
    const row = this.#row(run, stages);
    const quarantined = details.quarantined.slice(0, MAX_QUARANTINED);
    return {
      run: row,
      stages,
      attempts: troubled.slice(0, MAX_ATTEMPTS).map((a) => ({ ...a, label: labelOf(a.stage) })),
      attemptsTotal: details.attemptsTotal,
      attemptsNotShown: Math.max(0, troubled.length - MAX_ATTEMPTS),
      quarantined: quarantined.map((q) => ({ ...q, label: labelOf(q.stage) })),
      quarantinedNotShown: Math.max(0, row.quarantined - quarantined.length),
      logs: await this.#logs(id),
    };
  }

  /** The run's stored log (docs/history.md): its last `MAX_LOG_LINES` lines. */
  async #logs(runId: string): Promise<LogLine[]> {
    const lines: LogLine[] = [];
    let after = 0;
    while (true) {
      const page = await this.#control.listLogs({ runId, after, limit: 1000 });
      for (const l of page.lines) {
        lines.push({ time: Date.parse(l.time), level: l.level, stage: l.stage, text: l.message });
      }
      if (page.lines.length === 0 || page.complete) break;
      after = page.next;
    }
    return lines.slice(-MAX_LOG_LINES);
  }

  /**
   * The stages of a run: live from the journal when it followed the run, else from the
   * summary the control plane stored when the run ended (counters only).
   */
  #stagesOf(run: Run): StageView[] {
    const info = this.#stagesIn(run.workflow);
    const kindOf = (id: string) => info.get(id)?.kind ?? "";
    // The workflow's stages first, then its handlers', each in IR order.
    const rank = (s: StageView) => {
      const i = info.get(s.id);
      return i ? (i.graph === "handler" ? 1e6 : 0) + i.order : Infinity;
    };
    const order = (a: StageView, b: StageView) => rank(a) - rank(b);
    const labelled = (s: StageView) => ({ ...s, label: s.label || info.get(s.id)?.label || "" });
    const entry = this.#journal.run(run.id);
    if (entry && entry.stages.size > 0) {
      return [...entry.stages.values()].map((s) => labelled(stageView(s, kindOf(s.id))))
        .sort(order);
    }
    const summary = run.summaryJson ? JSON.parse(run.summaryJson) : {};
    const stored = (summary.stages ?? {}) as Record<string, Record<string, number | string>>;
    const tries = (summary.tries ?? {}) as Record<string, { attempts: number; retries: number }>;
    return Object.entries(stored).map(([id, s]) =>
      labelled({
        id,
        label: String(s.label ?? ""),
        kind: kindOf(id),
        batches: Number(s.batches ?? 0),
        rowsIn: Number(s.rowsIn ?? 0),
        rowsOut: Number(s.rowsOut ?? 0),
        rowsPerSecond: 0,
        attempts: tries[id]?.attempts ?? 0,
        retries: tries[id]?.retries ?? 0,
        latencyMeanMs: 0,
        latencyMaxMs: 0,
        quarantined: Number(s.rowsQuarantined ?? 0),
      })
    ).sort(order);
  }

  /** The stages of the workflow as deployed now (a run of an older version may differ). */
  #stagesIn(workflow: string): Map<string, StageInfo> {
    const irJson = this.#control.workflowIr(workflow);
    if (irJson === null) return new Map();
    let info = this.#stageInfo.get(irJson);
    if (!info) {
      if (this.#stageInfo.size > 50) this.#stageInfo.clear();
      info = stageInfo(irJson);
      this.#stageInfo.set(irJson, info);
    }
    return info;
  }

  #row(run: Run, stages: StageView[]): RunRow {
    const end = run.endedAt ? Date.parse(run.endedAt) : Date.now();
    const summary = run.summaryJson ? JSON.parse(run.summaryJson) : {};
    const quarantined = this.#journal.run(run.id)?.quarantined ?? Number(summary.quarantined ?? 0);
    const info = this.#stagesIn(run.workflow);
    const inMain = (s: StageView) => info.get(s.id)?.graph === "workflow";
    return {
      id: run.id,
      workflow: run.workflow,
      status: run.status,
      startedAt: run.startedAt,
      endedAt: run.endedAt,
      durationMs: Math.max(0, end - Date.parse(run.startedAt)),
      rowsIn: stages.filter((s) => s.kind === "source").reduce((n, s) => n + s.rowsIn, 0),
      rowsOut: stages.filter((s) => s.kind === "sink" && inMain(s))
        .reduce((n, s) => n + s.rowsOut, 0),
      quarantined,
      worker: run.worker,
      error: run.error,
      origin: run.origin,
    };
  }
}

function asset(text: string, type: string): Response {
  return new Response(text, {
    headers: { "content-type": `${type}; charset=utf-8`, "cache-control": "no-cache" },
  });
}
