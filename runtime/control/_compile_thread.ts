/**
 * Compiling deploys off the control plane's thread, with a deadline (issue 15: a program
 * that was slow to compile held the daemon, which answered no other call until it was done,
 * and a compile over 30 s ended in exit 70). One Web Worker (`_compile_worker.ts`) compiles
 * deploys one after the other; the daemon's thread only waits for its answer, so status,
 * runs and events keep flowing. A compile past the deadline terminates the worker, which
 * is the only way to stop synchronous code, and the deploy is refused with a clear error; the
 * next deploy starts a fresh worker.
 */
import { ControlError, type DeployRequest } from "../protocol/mod.ts";
import type { Compiled, CompileOptions } from "./_compile.ts";
import type { CompileJob } from "./_compile_worker.ts";

type Answer =
  | { started: true }
  | { ok: true; compiled: Compiled }
  | { ok: false; message: string; code: ControlError["code"] | null; stack: string | null };

/** How long one deploy may compile by default (`--compile-timeout`). */
export const DEFAULT_COMPILE_TIMEOUT_MS = 60_000;

export class CompileThread {
  #worker: Worker | null = null;
  /** The compile in progress, if any: deploys wait for each other. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(private timeoutMs: number) {}

  compile(request: DeployRequest, options: CompileOptions): Promise<Compiled> {
    const job = this.#queue.then(() => this.#run({ request, options }));
    this.#queue = job.catch(() => {});
    return job;
  }

  #run(job: CompileJob): Promise<Compiled> {
    const worker = this.#worker ??= new Worker(
      new URL("./_compile_worker.ts", import.meta.url).href,
      { type: "module" },
    );
    return new Promise<Compiled>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const expire = () => {
        this.#stop();
        reject(
          new ControlError(
            `compiling the program took longer than ${this.timeoutMs / 1000} s, the limit ` +
              "of this control plane (--compile-timeout)",
            "invalid",
          ),
        );
      };
      const settle = () => {
        clearTimeout(timer);
        worker.onmessage = null;
        worker.onerror = null;
      };
      worker.onmessage = (event: MessageEvent<Answer>) => {
        const answer = event.data;
        if ("started" in answer) {
          timer = setTimeout(expire, this.timeoutMs);
          return;
        }
        settle();
        if (answer.ok) return resolve(answer.compiled);
        if (answer.code) return reject(new ControlError(answer.message, answer.code));
        const bug = new Error(answer.message);
        bug.stack = answer.stack ?? bug.stack;
        reject(bug);
      };
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        settle();
        this.#stop();
        reject(new Error(`the compile thread failed: ${event.message}`));
      };
      worker.postMessage(job);
    });
  }

  #stop(): void {
    this.#worker?.terminate();
    this.#worker = null;
  }

  close(): void {
    this.#stop();
  }
}
