/**
 * The control plane's scheduler: starts a workflow's runs by cron expression or interval.
 * Its rules, which docs/history.md states:
 * - A firing missed while the control plane was down or paused runs once when it comes
 *   back, however many were missed; the next firing is then computed from that moment.
 * - A firing while a run of the workflow started by this control plane is still live is
 *   skipped (recorded as such) unless the schedule allows overlap.
 * - Firings wait while no worker is attached, rather than fail.
 * The clock is injected, so tests can move time; nothing here knows how runs execute.
 */
import {
  ControlError,
  type Run,
  type ScheduleInfo,
  type SetScheduleRequest,
} from "../protocol/mod.ts";
import {
  formatEvery,
  nextCron,
  parseCron,
  parseEvery,
  ScheduleSyntaxError,
} from "./_schedule_cron.ts";
import type { ScheduleRecord, ScheduleStore } from "./_schedule_store.ts";

/** What the scheduler needs from its control plane. */
export interface SchedulerHost {
  workflowExists(workflow: string): boolean;
  hasWorker(): boolean;
  /** Ids of this control plane's live runs of `workflow`. */
  liveRuns(workflow: string): string[];
  /** Starts a run of `workflow` on behalf of its schedule. */
  start(workflow: string): Promise<Run>;
}

/** The longest the scheduler sleeps between looks (a changed clock is noticed this soon). */
const MAX_SLEEP_MS = 30_000;
/** How soon it looks again while no worker is attached. */
const NO_WORKER_RETRY_MS = 1000;

export class Scheduler {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ticking: Promise<void> | null = null;
  #started = false;

  constructor(
    private readonly store: ScheduleStore,
    private readonly host: SchedulerHost,
    private readonly now: () => number = Date.now,
  ) {}

  set(request: SetScheduleRequest): ScheduleInfo {
    if (!this.host.workflowExists(request.workflow)) {
      throw new ControlError(`no workflow \`${request.workflow}\` is deployed`, "not-found");
    }
    if (!request.cron === !request.every) {
      throw new ControlError(
        "a schedule needs exactly one of a cron expression and an interval",
        "invalid",
      );
    }
    const now = this.now();
    let record: Omit<ScheduleRecord, "lastAt" | "lastOutcome">;
    try {
      record = request.cron
        ? { ...this.#base(request, now), cron: parseCron(request.cron).source, everyMs: 0 }
        : { ...this.#base(request, now), cron: "", everyMs: parseEvery(request.every!) };
    } catch (e) {
      if (e instanceof ScheduleSyntaxError) throw new ControlError(e.message, "invalid");
      throw e;
    }
    record.nextAt = nextFiring(record, now);
    const saved = this.store.save(record);
    this.#arm(0);
    return toInfo(saved);
  }

  list(): ScheduleInfo[] {
    return this.store.list().map(toInfo);
  }

  delete(workflow: string): ScheduleInfo {
    const found = this.store.get(workflow);
    if (!found || !this.store.delete(workflow)) {
      throw new ControlError(`workflow \`${workflow}\` has no schedule`, "not-found");
    }
    return toInfo(found);
  }

  /** Starts firing: at once for what is already due (missed while down), then on time. */
  start(): void {
    this.#started = true;
    this.#arm(0);
  }

  stop(): void {
    this.#started = false;
    clearTimeout(this.#timer);
  }

  /** Fires every schedule that is due now, once each; resolves when they have started. */
  tick(): Promise<void> {
    this.#ticking ??= this.#fireDue().finally(() => this.#ticking = null);
    return this.#ticking;
  }

  async #fireDue(): Promise<void> {
    if (!this.host.hasWorker()) return;
    const now = this.now();
    for (const s of this.store.list()) {
      if (s.nextAt > now) continue;
      // Missed firings collapse into this one: the next is computed from now.
      if (!this.store.claim(s.workflow, s.nextAt, nextFiring(s, now), now)) continue;
      this.store.recordOutcome(s.workflow, await this.#fire(s));
    }
  }

  async #fire(s: ScheduleRecord): Promise<string> {
    const live = s.allowOverlap ? [] : this.host.liveRuns(s.workflow);
    if (live.length > 0) return `skipped: run ${live[0]} was still running`;
    try {
      return `started ${(await this.host.start(s.workflow)).id}`;
    } catch (e) {
      return `failed: ${(e as Error).message}`;
    }
  }

  /** Looks again in `delay` ms, or when the soonest schedule is due. */
  #arm(delay: number | null): void {
    if (!this.#started) return;
    clearTimeout(this.#timer);
    const soonest = Math.min(...this.store.list().map((s) => s.nextAt));
    const wait = delay ?? Math.min(MAX_SLEEP_MS, Math.max(0, soonest - this.now()));
    const timer = setTimeout(async () => {
      await this.tick();
      this.#arm(this.host.hasWorker() ? null : NO_WORKER_RETRY_MS);
    }, wait);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #base(request: SetScheduleRequest, now: number) {
    return {
      workflow: request.workflow,
      allowOverlap: request.allowOverlap ?? false,
      createdAt: now,
      nextAt: 0,
    };
  }
}

/** The first firing of `s` after `now`. */
function nextFiring(s: Pick<ScheduleRecord, "cron" | "everyMs">, now: number): number {
  // A stored expression was valid when stored, so it still names a date.
  return s.cron ? nextCron(parseCron(s.cron), now)! : now + s.everyMs;
}

function toInfo(s: ScheduleRecord): ScheduleInfo {
  return {
    workflow: s.workflow,
    cron: s.cron,
    every: s.everyMs ? formatEvery(s.everyMs) : "",
    allowOverlap: s.allowOverlap,
    nextAt: new Date(s.nextAt).toISOString(),
    lastAt: s.lastAt ? new Date(s.lastAt).toISOString() : "",
    lastOutcome: s.lastOutcome,
  };
}
