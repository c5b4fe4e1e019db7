/**
 * A window of concurrent work over a queue: up to `limit` items are worked on at once, taken
 * in queue order. It exists for sinks that acknowledge asynchronously (a Kafka producer: the
 * next batches go out while earlier ones wait for the broker), where one write at a time
 * leaves the stage idle for a round trip per batch. Lineage, not this window, decides what
 * commits, so completions may come in any order. It must never return while work it started
 * is still running, even when one item fails: the run's cleanup relies on that.
 */

export async function inWindow<T>(
  limit: number,
  next: () => Promise<T | undefined>,
  work: (item: T) => Promise<void>,
): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | null = null;
  try {
    for (let item = await next(); item !== undefined; item = await next()) {
      const task: Promise<void> = work(item).catch((error) => {
        failure ??= { error };
      }).finally(() => running.delete(task));
      running.add(task);
      while (running.size >= Math.max(1, limit)) await Promise.race(running);
      if (failure) break;
    }
  } finally {
    await Promise.all(running);
  }
  if (failure) throw (failure as { error: unknown }).error;
}
