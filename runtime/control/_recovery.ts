/**
 * What a restarted control plane does with the runs its previous process left running.
 * They are not marked done, nor failed: the history adopts them (`History`'s `adopt`), and
 * each is placed again once the workers it ran on are back, or known to be gone. When the
 * control plane died, every worker's stream of the run broke and each worker stopped its
 * part (a bounded source stopped before its end publishes no file), so the run starts over
 * on the live workers from its sources' committed positions, exactly as a run placed again
 * after a lost worker (`_placement_run.ts`). Waiting for the workers first keeps the run on
 * the hosts it had when they come back within the worker timeout (they heartbeat every 2 s).
 */
import type { RunRecord } from "./_history.ts";

/** How often the adopted runs' workers are looked at. */
const POLL_MS = 250;

export interface RecoveryOptions {
  /** Whether worker `id` registered with this process since it started. */
  heard(id: string): boolean;
  /** Whether worker `id` is still among the live workers (not declared dead). */
  known(id: string): boolean;
  /** Places the run again on the workers alive now (or fails it with the reason). */
  resume(run: RunRecord): void;
}

/**
 * Resumes each adopted run once every worker of its last placement registered again or was
 * declared dead (the roster does that after the worker timeout); returns a canceller.
 */
export function resumeAdopted(runs: readonly RunRecord[], options: RecoveryOptions): () => void {
  const waiting = new Set(runs);
  const tick = () => {
    for (const run of [...waiting]) {
      const workers = run.worker.split(",").filter((id) => id !== "");
      if (workers.every((id) => options.heard(id) || !options.known(id))) {
        waiting.delete(run);
        options.resume(run);
      }
    }
    if (waiting.size === 0) clearInterval(timer);
  };
  const timer = setInterval(tick, POLL_MS);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}
