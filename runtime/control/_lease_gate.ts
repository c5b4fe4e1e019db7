/**
 * What a control plane on a PostgreSQL state database serves while it stands by: its
 * gRPC service is up from the start (so that clients and workers get an answer, not a
 * refused connection), and every call is refused with the leader's address until this
 * process takes the lease; then the same service answers from its control plane.
 */
import { type ControlApi, ControlError } from "../protocol/mod.ts";
import type { Leader } from "./_lease.ts";

export class StandbyGate {
  #target: ControlApi | null = null;
  #leader: Leader | null = null;

  /** The API to serve: the control plane once this process leads, refusals before. */
  readonly api: ControlApi = new Proxy({} as ControlApi, {
    get: (_, name: string) => (...args: unknown[]) => {
      const target = this.#target as unknown as Record<string, (...a: unknown[]) => unknown>;
      if (target) return target[name](...args);
      return Promise.reject(new ControlError(this.refusal(), "not-leader"));
    },
  });

  /** Why a standby refuses a call: who leads, so that the caller can go there. */
  refusal(): string {
    const leader = this.#leader;
    return leader && leader.remainingMs > 0
      ? `this control plane is a standby: the leader is at ${leader.address}`
      : "this control plane is a standby: no control plane leads now (one takes over within " +
        "the leader lease)";
  }

  standby(leader: Leader | null): void {
    this.#leader = leader;
  }

  lead(control: ControlApi): void {
    this.#target = control;
  }
}
