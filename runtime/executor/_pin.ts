/**
 * Pins: reference counts on memory that an in-process batch may still view. A stage that
 * reads a registry object works on a zero-copy table over the object's mapping, and the
 * tables it hands to in-process consumers may share those buffers (a projection does), so
 * the lease and the consumer count must outlive every batch derived from it, not just the
 * stage. Each derived batch holds one reference; the last `drop()` frees the object. A pin
 * must never free twice, and never free while a batch still holds it.
 */

export class Pin {
  #refs = 1;

  /** Starts with one reference, the creator's; `free` runs once, when the last one drops. */
  constructor(private free: () => void) {}

  /** One more batch views the memory. */
  retain(): this {
    this.#refs++;
    return this;
  }

  /** A batch is done with the memory; the last one frees it. */
  drop(): void {
    if (this.#refs <= 0) return;
    if (--this.#refs === 0) this.free();
  }
}

/** Adds one reference to each pin, for a new batch derived from `pins`. */
export function retainAll(pins: readonly Pin[]): Pin[] {
  return pins.map((p) => p.retain());
}

/** Drops one reference from each pin. */
export function dropAll(pins: readonly Pin[]): void {
  for (const p of pins) p.drop();
}
