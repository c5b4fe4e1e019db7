/**
 * The worker's plugin host: runs steps that live in plugin processes (any language that speaks
 * proto/plugin.proto) over objects in the data locality registry. Plugins are provisioned just
 * in time: the first invocation of a step starts its package's process from the manifest found
 * on the module path; the process is kept warm and reused, stopped when idle and on `close()`.
 *
 * Isolation is the point of this file: whatever one plugin does (crash, hang, answer with
 * garbage or with data that breaks its declared schema) fails only that invocation, with a
 * typed `PluginError`, and the process is replaced on its next use. The host never throws at
 * its caller for a plugin's fault, and never adopts output it has not validated.
 */

import {
  loadModule,
  type ModuleContract,
  type ModuleSearch,
  type OpContract,
  type RowContract,
  typeToString,
} from "../../compiler/modules/mod.ts";
import {
  type ObjectHandle,
  openHandle,
  type Registry,
  RegistryError,
  removeSegment,
  segmentName,
} from "../registry/mod.ts";
import {
  checkSchema,
  type DeclaredRow,
  ENV,
  type InvokeRequest,
  type WireRowError,
} from "./protocol/mod.ts";
import { pluginAssets } from "./_assets.ts";
import { provision } from "./_build.ts";
export { buildCacheRoot, provision } from "./_build.ts";
export {
  checkPackage,
  MAX_PACKAGE_BYTES,
  moduleRootOf,
  packageCacheRoot,
  PackageError,
  type PackageFile,
  packageHash,
  type PackageRef,
  type PluginPackage,
  readPackage,
  storedPackage,
  storePackage,
} from "./_packages.ts";

export { type PluginAssets, pluginAssets } from "./_assets.ts";
import { PluginError } from "./_errors.ts";
import { PluginProcess, type PluginState } from "./_process.ts";

export { PluginError, type PluginErrorCode } from "./_errors.ts";
export type { PluginState } from "./_process.ts";
export { type ScaffoldOptions, scaffoldPlugin, type ScaffoldResult } from "./_scaffold.ts";

/**
 * A row the step could not process: its index in the input object (for a chain, the input of
 * the whole chain), why, and which step of the chain rejected it (0 for a single step).
 */
export interface RowError {
  row: number;
  message: string;
  stepIndex: number;
}

/** One step of a chain: its wire name (`<import path>.<step>`) and its resolved config. */
export interface ChainCall {
  step: string;
  config: Record<string, unknown>;
}

export type InvokeResult =
  | { ok: true; output: ObjectHandle; rowErrors: RowError[] }
  | { ok: false; error: PluginError };

export interface PluginHostOptions {
  /** Where outputs are adopted; its owner pid and prefix name the output segments. */
  registry: Registry;
  /** Where manifests are found (the compiler's module search). */
  search: ModuleSearch;
  /** A process with nothing to do for this long is stopped (default 60 s). */
  idleTimeoutMs?: number;
  /** Default limit for one invocation (default 60 s); past it the process is killed. */
  invokeTimeoutMs?: number;
  /** Limit for a new process to answer `Health` (default 30 s). */
  startTimeoutMs?: number;
  /** Extra environment for plugin processes (they also inherit the worker's). */
  env?: Record<string, string>;
}

export interface InvokeOptions {
  /** Downstream consumers of the output object (default 1). */
  consumers?: number;
  /** Overrides `invokeTimeoutMs` for this invocation. */
  timeoutMs?: number;
  /**
   * Aborting it abandons the invocation (the caller's own deadline passed, or its run
   * failed). Once the invocation was sent, the process is killed as a hung one would be, so
   * that the next invocation starts a fresh process instead of queueing behind it; a process
   * still starting is left to start, so that a start slower than a step's timeout still
   * serves the next attempt.
   */
  signal?: AbortSignal;
}

/** What the host knows of one plugin package's process. */
export interface PluginInfo {
  dir: string;
  state: PluginState;
  pid: number | null;
  /** Invocations sent to this package (one per chain, however many steps it has). */
  invocations: number;
  /** Processes started again after one crashed, hung or was killed. */
  restarts: number;
}

interface Slot {
  dir: string;
  entry: string[];
  /** For compiled plugins until their binary is provisioned: the manifest's build command. */
  build: string[] | undefined;
  /** Extra environment of this plugin's processes. */
  env: Record<string, string>;
  tag: string;
  invocations: number;
  restarts: number;
  process: PluginProcess | null;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
}

let nextSerial = 1;

function declaredRow(row: RowContract | null): DeclaredRow {
  if (row === null || row.kind === "open" || row.kind === "sql") return { kind: "open" };
  const fields = row.fields.map((f) => ({
    name: f.name,
    type: typeToString(f.type),
    nullable: f.nullable,
  }));
  return row.kind === "input-plus"
    ? { kind: "input-plus", fields }
    : { kind: "fields", fields, open: row.open };
}

/**
 * The contract of a chain's output from its steps' output contracts: an `input-plus` step
 * appends to whatever the step before it produced.
 */
function composeRows(before: DeclaredRow, after: DeclaredRow): DeclaredRow {
  if (after.kind !== "input-plus") return after;
  if (before.kind === "open") return before;
  const fields = [...before.fields, ...after.fields];
  return before.kind === "input-plus"
    ? { kind: "input-plus", fields }
    : { kind: "fields", fields, open: before.open };
}

function fail(code: PluginError["code"], message: string, step: string, extra = {}): InvokeResult {
  return { ok: false, error: new PluginError(code, message, { step, ...extra }) };
}

export class PluginHost {
  readonly #options: Required<Omit<PluginHostOptions, "env">> & { env: Record<string, string> };
  readonly #slots = new Map<string, Slot>();
  readonly #socketDir: string;
  #closed = false;

  constructor(options: PluginHostOptions) {
    this.#options = {
      idleTimeoutMs: 60_000,
      invokeTimeoutMs: 60_000,
      startTimeoutMs: 30_000,
      env: {},
      ...options,
    };
    // Unix socket paths are limited to ~108 bytes, so sockets live in a short private dir,
    // named after the registry's owner so that a sweep removes it if this process dies.
    this.#socketDir = options.registry.makeTempDir("plugins");
  }

  /**
   * Runs `step` (`<import path>.<step>`, e.g. `fraud-score/detect.process`) over `input`: a
   * chain of one (see `invokeChain`). Never throws.
   */
  invoke(
    step: string,
    config: Record<string, unknown>,
    input: ObjectHandle,
    options: InvokeOptions = {},
  ): Promise<InvokeResult> {
    return this.invokeChain([{ step, config }], input, options);
  }

  /**
   * Runs a chain of steps of one plugin package over `input` in one invocation (operator
   * fusion): the plugin passes each batch through every step in-process and writes only the
   * last step's output, which is checked against the chain's declared contracts and adopted
   * by the registry with `consumers` consumers. Row errors index `input`, whichever step
   * rejected the row. Never throws.
   */
  async invokeChain(
    chain: readonly ChainCall[],
    input: ObjectHandle,
    options: InvokeOptions = {},
  ): Promise<InvokeResult> {
    const first = chain[0]?.step ?? "";
    if (this.#closed) return fail("closed", "the plugin host is closed", first);
    if (chain.length === 0) return fail("unknown-step", "an empty chain has no step to run", "");
    const found: { step: string; op: OpContract; dir: string; module: ModuleContract }[] = [];
    for (const { step } of chain) {
      const dot = step.lastIndexOf(".");
      const modulePath = step.slice(0, dot);
      const lookup = dot > 0 ? loadModule(modulePath, this.#options.search) : null;
      if (lookup === null || !lookup.ok || lookup.module.dir === null) {
        const why = lookup === null
          ? "a step is named `<import path>.<step>`"
          : lookup.ok
          ? `\`${modulePath}\` is a built-in module, not a plugin`
          : lookup.message;
        return fail("unknown-step", `cannot find plugin step \`${step}\`: ${why}`, step);
      }
      const op = lookup.module.ops.get(step.slice(dot + 1));
      if (op === undefined) {
        const known = [...lookup.module.ops.keys()].map((k) => `\`${k}\``).join(", ");
        return fail(
          "unknown-step",
          `module \`${modulePath}\` has no step \`${step.slice(dot + 1)}\` (it has ${known})`,
          step,
        );
      }
      if (found.length > 0 && lookup.module.dir !== found[0].dir) {
        return fail(
          "unknown-step",
          `a chain runs in one plugin process, but \`${step}\` is not in the package of ` +
            `\`${first}\``,
          step,
        );
      }
      found.push({ step, op, dir: lookup.module.dir, module: lookup.module });
    }
    const { module } = found[0];
    const slot = this.#slot(module.dir!, module.entry, module.runtime, module.build);
    slot.invocations++;
    if (slot.build) {
      const built = await provision({
        dir: slot.dir,
        name: module.path.split("/")[0],
        build: slot.build,
        entry: slot.entry,
      });
      if (!built.ok) return fail("start-failed", built.message, first);
      slot.entry = built.entry;
      slot.build = undefined;
    }
    const request: InvokeRequest = {
      step: first,
      configJson: JSON.stringify(chain[0].config),
      input,
      outputSegment: segmentName(this.#options.registry.ownerPid, nextSerial++, {
        tag: slot.tag,
        prefix: this.#options.registry.prefix,
      }),
      invocationId: crypto.randomUUID(),
      then: chain.slice(1).map(({ step, config }) => ({
        step,
        configJson: JSON.stringify(config),
      })),
    };
    const abandoned = () =>
      fail("timeout", `the invocation of \`${first}\` was abandoned before it began`, first);
    if (options.signal?.aborted) return abandoned();
    const process = this.#running(slot);
    clearTimeout(slot.idleTimer);
    let sent = false;
    const abandon = () => sent && process.kill();
    options.signal?.addEventListener("abort", abandon, { once: true });
    try {
      await process.ready;
      if (options.signal?.aborted) return abandoned();
      sent = true;
      const response = await process.invoke(
        request,
        options.timeoutMs ?? this.#options.invokeTimeoutMs,
      );
      if (response.result === "error") {
        removeSegment(request.outputSegment);
        const { code, message, column } = response.error;
        const index = response.error.stepIndex ?? 0;
        const step = chain[index]?.step ?? first;
        return fail("step-failed", `step \`${step}\` failed (${code}): ${message}`, step, {
          stepCode: code,
          column: column || undefined,
          stepIndex: chain[index] ? index : 0,
        });
      }
      const result = this.#accept(
        request,
        chain.length,
        response.ok,
        found.map((f) => declaredRow(f.op.output)).reduce(composeRows),
        options.consumers ?? 1,
      );
      if (!result.ok) process.kill();
      return result;
    } catch (error) {
      removeSegment(request.outputSegment);
      if (error instanceof PluginError) {
        return {
          ok: false,
          error: error.step
            ? error
            : new PluginError(error.code, error.message, { step: first, cause: error.cause }),
        };
      }
      throw error;
    } finally {
      options.signal?.removeEventListener("abort", abandon);
      this.#scheduleIdleStop(slot);
    }
  }

  /** The plugin packages the host has seen, with the state of their processes. */
  plugins(): PluginInfo[] {
    return [...this.#slots.values()].map((slot) => ({
      dir: slot.dir,
      state: slot.process?.state ?? "stopped",
      pid: slot.process && slot.process.state !== "stopped" ? slot.process.pid : null,
      invocations: slot.invocations,
      restarts: slot.restarts,
    }));
  }

  /** Stops every plugin process and removes the host's sockets. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#slots.values()].map((slot) => {
      clearTimeout(slot.idleTimer);
      return slot.process?.stop();
    }));
    Deno.removeSync(this.#socketDir, { recursive: true });
  }

  #slot(dir: string, entry: string[], runtime: string, build?: string[]): Slot {
    let slot = this.#slots.get(dir);
    if (slot === undefined) {
      const assets = pluginAssets();
      const env: Record<string, string> = {
        ...this.#options.env,
        [ENV.protoPath]: assets.protoPath,
      };
      if (runtime === "python") {
        // The worker lends Python plugins the SDK it ships with, so that a plugin speaks this
        // worker's protocol even where heddle_sdk was never pip-installed; an installed
        // heddle_sdk only wins if the worker's environment puts it first.
        const inherited = env.PYTHONPATH ?? Deno.env.get("PYTHONPATH");
        env.PYTHONPATH = [assets.pythonPath, inherited].filter((p) => p).join(":");
      }
      const base = dir.split("/").filter((s) => s).pop() ?? "plugin";
      const tag = `plugin_${base.replace(/[^A-Za-z0-9_]/g, "_")}`;
      slot = {
        dir,
        entry,
        build,
        env,
        tag,
        invocations: 0,
        restarts: 0,
        process: null,
        idleTimer: undefined,
      };
      this.#slots.set(dir, slot);
    }
    return slot;
  }

  /** The slot's live process, starting a new one if there is none or the last one failed. */
  #running(slot: Slot): PluginProcess {
    const current = slot.process;
    if (
      current &&
      (current.state === "ready" || current.state === "busy" || current.state === "starting")
    ) {
      return current;
    }
    if (current?.state === "failed") slot.restarts++;
    slot.process = new PluginProcess({
      dir: slot.dir,
      entry: slot.entry,
      socketPath: `${this.#socketDir}/${slot.tag}-${nextSerial++}.sock`,
      env: slot.env,
      startTimeoutMs: this.#options.startTimeoutMs,
    }, `\`${slot.dir}\``);
    slot.process.ready.catch(() => {});
    return slot.process;
  }

  #scheduleIdleStop(slot: Slot): void {
    const process = slot.process;
    if (process === null || process.inFlight > 0 || this.#closed) return;
    clearTimeout(slot.idleTimer);
    const timer = setTimeout(() => {
      if (process.inFlight === 0) process.stop();
    }, this.#options.idleTimeoutMs);
    Deno.unrefTimer(timer);
    slot.idleTimer = timer;
  }

  /** Validates a plugin's answer completely before the registry adopts its output. */
  #accept(
    request: InvokeRequest,
    steps: number,
    ok: { output: ObjectHandle | null; rowErrors: WireRowError[]; stepsRun?: number },
    contract: DeclaredRow,
    consumers: number,
  ): InvokeResult {
    const { step, input, outputSegment } = request;
    const malformed = (message: string, cause?: unknown): InvokeResult => {
      removeSegment(outputSegment);
      return fail(
        "malformed-output",
        `plugin answer for \`${step}\` is malformed: ${message}`,
        step,
        { cause },
      );
    };
    if (steps > 1 && ok.stepsRun !== steps) {
      return malformed(
        `it ran ${
          ok.stepsRun ?? 0
        } of the ${steps} steps of the chain (its SDK may predate chains)`,
      );
    }
    const output = ok.output;
    if (output === null || output.segment !== outputSegment) {
      return malformed(
        `its output is in \`${output?.segment}\`, not in the assigned \`${outputSegment}\``,
      );
    }
    const failed = new Set<number>();
    for (const { row, stepIndex } of ok.rowErrors) {
      if (!Number.isSafeInteger(row) || row < 0 || row >= input.rows) {
        return malformed(
          `it reports an error for row ${row}, but the input has ${input.rows} rows`,
        );
      }
      if ((stepIndex ?? 0) >= steps) {
        return malformed(`it reports an error of step ${stepIndex} in a chain of ${steps}`);
      }
      failed.add(row);
    }
    let lease;
    try {
      lease = openHandle(output);
    } catch (error) {
      return malformed(error instanceof RegistryError ? error.message : String(error), error);
    }
    try {
      const inputSchema = contract.kind === "input-plus" ? this.#schemaOf(input) : null;
      const violation = checkSchema(lease.table.schema, contract, inputSchema);
      if (violation) {
        removeSegment(outputSegment);
        return fail(
          "bad-output",
          `output of \`${step}\` breaks its declared schema: ${violation.message}`,
          step,
          {
            column: violation.column,
          },
        );
      }
      if (contract.kind === "input-plus" && output.rows + failed.size !== input.rows) {
        return malformed(
          `${input.rows} input rows, ${failed.size} failed, but ${output.rows} output rows`,
        );
      }
    } finally {
      lease.release();
    }
    try {
      const adopted = this.#options.registry.adopt(output, consumers);
      return {
        ok: true,
        output: adopted,
        rowErrors: ok.rowErrors.map(({ row, message, stepIndex }) => ({
          row,
          message,
          stepIndex: stepIndex ?? 0,
        })),
      };
    } catch (error) {
      return malformed(error instanceof Error ? error.message : String(error), error);
    }
  }

  #schemaOf(handle: ObjectHandle) {
    const lease = openHandle(handle);
    try {
      return lease.table.schema;
    } finally {
      lease.release();
    }
  }
}
