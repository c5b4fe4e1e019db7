/**
 * Lineage: which source batch every in-flight batch came from, so that a source position is
 * committed only when every row derived from it was acknowledged by a sink, routed to a
 * handler that acknowledged it, or filtered out. Each source batch has a counter of
 * outstanding derived batches; positions are committed in the order the source produced
 * them. It must never commit a position while an earlier batch of the same source is open.
 *
 * A blocking stage's output depends on all of its input: rather than every output batch
 * carrying every input origin (batches x origins references, quadratic: 10M rows in batches
 * of 1,024 made ~95M, 1.3 GiB, when a file sink released them at once), its input origins are
 * merged into one origin that holds each of them once and releases them when it ends.
 */
import type { Position } from "../connectors/mod.ts";

/** A source batch: the source stage's id and the batch's sequence number in it. */
export interface Origin {
  source: string;
  seq: number;
}

interface Pending {
  seq: number;
  position: Position;
  outstanding: number;
}

/** The source name of merged origins: no stage id is empty. */
const MERGED = "";

interface Merged {
  outstanding: number;
  origins: Origin[];
}

export type CommitFn = (source: string, position: Position) => Promise<void>;

export class Lineage {
  #pending = new Map<string, Pending[]>();
  // By source, then seq: no key string is built per lookup (a blocking stage's output batches
  // each carry every input origin, so `adjust` runs batches x origins lookups).
  #bySeq = new Map<string, Map<number, Pending>>();
  #next = new Map<string, number>();
  #committed = new Map<string, Position>();
  #merged = new Map<number, Merged>();
  #nextMerged = 0;
  #chain: Promise<void> = Promise.resolve();
  #error: unknown = null;

  constructor(private commit: CommitFn) {}

  /** A new source batch, outstanding once (the batch itself). */
  open(source: string, position: Position): Origin {
    const seq = this.#next.get(source) ?? 0;
    this.#next.set(source, seq + 1);
    const pending = { seq, position, outstanding: 1 };
    if (!this.#pending.has(source)) this.#pending.set(source, []);
    this.#pending.get(source)!.push(pending);
    let bySeq = this.#bySeq.get(source);
    if (!bySeq) this.#bySeq.set(source, bySeq = new Map());
    bySeq.set(seq, pending);
    return { source, seq };
  }

  /**
   * One origin standing for all of `origins` (duplicates counted once), outstanding once:
   * each of them stays open until it ends. Used for what a blocking stage emits.
   */
  merge(origins: Origin[]): Origin {
    const unique: Origin[] = [];
    const seen = new Map<string, Set<number>>();
    for (const o of origins) {
      let seqs = seen.get(o.source);
      if (!seqs) seen.set(o.source, seqs = new Set());
      if (seqs.has(o.seq)) continue;
      seqs.add(o.seq);
      unique.push(o);
    }
    this.adjust(unique, 1);
    const seq = this.#nextMerged++;
    this.#merged.set(seq, { outstanding: 1, origins: unique });
    return { source: MERGED, seq };
  }

  /**
   * A batch carrying `origins` became `delta + 1` batches (delta = -1: it ended: acknowledged,
   * filtered out, or written). Raise counts before handing derived batches on.
   */
  adjust(origins: Origin[], delta: number): void {
    if (delta === 0) return;
    const touched = new Set<string>();
    const ended: Origin[] = [];
    for (const o of origins) {
      if (o.source === MERGED) {
        const m = this.#merged.get(o.seq);
        if (m && (m.outstanding += delta) <= 0) {
          this.#merged.delete(o.seq);
          for (const e of m.origins) ended.push(e); // no spread: there may be 100k of them
        }
        continue;
      }
      const p = this.#bySeq.get(o.source)?.get(o.seq);
      if (!p) continue;
      p.outstanding += delta;
      if (p.outstanding <= 0) touched.add(o.source);
    }
    for (const source of touched) this.#settle(source);
    if (ended.length > 0) this.adjust(ended, -1);
  }

  #settle(source: string): void {
    const queue = this.#pending.get(source)!;
    let last: Pending | null = null;
    while (queue.length > 0 && queue[0].outstanding <= 0) {
      last = queue.shift()!;
      this.#bySeq.get(source)!.delete(last.seq);
    }
    if (!last) return;
    const position = last.position;
    this.#chain = this.#chain.then(async () => {
      if (this.#error) return;
      try {
        await this.commit(source, position);
        this.#committed.set(source, position);
      } catch (error) {
        this.#error = error;
      }
    });
  }

  /** Source batches not yet fully acknowledged. */
  get openBatches(): number {
    let n = 0;
    for (const bySeq of this.#bySeq.values()) n += bySeq.size;
    return n;
  }

  /** Waits for commits in flight; throws the first commit failure. */
  async settled(): Promise<void> {
    await this.#chain;
    if (this.#error) throw this.#error;
  }

  committed(source: string): Position | null {
    return this.#committed.get(source) ?? null;
  }
}
