/**
 * The bounded queue between two stages: the one mechanism of backpressure. A producer that
 * pushes into a full queue waits until the consumer takes an item, so a slow sink slows its
 * source down instead of letting batches pile up in shared memory. It must never drop or
 * reorder items, and never block a consumer once every producer is done.
 */

export class BoundedQueue<T> {
  #items: T[] = [];
  #producers: number;
  #closed = false;
  #spaceWaiters: (() => void)[] = [];
  #itemWaiters: ((item: T | undefined) => void)[] = [];

  /** `producers` is how many upstream tasks must call `producerDone()` before it ends. */
  constructor(readonly capacity: number, producers: number) {
    this.#producers = producers;
    if (producers === 0) this.#closed = true;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get size(): number {
    return this.#items.length;
  }

  /** Waits for room, then enqueues; returns false when the queue was already closed. */
  async push(item: T): Promise<boolean> {
    while (this.#items.length >= this.capacity && !this.#closed) {
      await new Promise<void>((resolve) => this.#spaceWaiters.push(resolve));
    }
    if (this.#closed) return false;
    const waiter = this.#itemWaiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
    return true;
  }

  /** The next item, or undefined once the queue is closed and empty. */
  next(): Promise<T | undefined> {
    if (this.#items.length > 0) {
      const item = this.#items.shift()!;
      this.#spaceWaiters.shift()?.();
      return Promise.resolve(item);
    }
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#itemWaiters.push(resolve));
  }

  /** One producer finished; the last one closes the queue. */
  producerDone(): void {
    if (--this.#producers <= 0) this.close();
  }

  /** Ends the queue: waiting consumers get undefined once the items already queued are taken. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#itemWaiters.splice(0)) w(undefined);
    for (const w of this.#spaceWaiters.splice(0)) w();
  }
}
