/**
 * The body of the compile thread (`_compile_thread.ts`): a Web Worker that compiles one
 * deploy at a time and posts back the result. It exists so that a program slow to compile
 * holds this thread, which the control plane can terminate at its deadline, and never the
 * thread that answers every other call. It holds no state between deploys.
 */
/// <reference lib="deno.worker" />
import { compileForDeploy, type CompileOptions } from "./_compile.ts";
import { ControlError, type DeployRequest } from "../protocol/mod.ts";

export interface CompileJob {
  request: DeployRequest;
  options: CompileOptions;
}

self.onmessage = (event: MessageEvent<CompileJob>) => {
  // The deadline counts from here: loading the compiler into a fresh thread is not compiling.
  self.postMessage({ started: true });
  try {
    self.postMessage({
      ok: true,
      compiled: compileForDeploy(event.data.request, event.data.options),
    });
  } catch (e) {
    // A refusal (`ControlError`) keeps its code; anything else is a compiler bug, reported
    // with its stack so the daemon can say so.
    self.postMessage({
      ok: false,
      message: (e as Error)?.message ?? String(e),
      code: e instanceof ControlError ? e.code : null,
      stack: e instanceof ControlError ? null : (e as Error)?.stack ?? null,
    });
  }
};
