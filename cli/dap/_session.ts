/**
 * One debug session: it compiles the program a launch configuration names, runs its
 * workflow in this process with the executor's interceptor, and pauses a stage when a batch
 * reaches a breakpoint on its line. Threads are the run's stages; a stopped thread has one
 * frame (the stage, at its line in the `.he` file) whose scopes show the paused batch. A
 * paused stage simply does not return from the interceptor, so the bounded queues hold
 * everything upstream of it. The session must never leave a batch held once the client
 * stops or disconnects: stopping drains the run, as `heddle run` does on SIGINT.
 */
import type { Table } from "apache-arrow";
import { check, type Ir } from "../../compiler/mod.ts";
import type { IrStage } from "../../compiler/ir/mod.ts";
import { type LineIndex, lineIndex, renderShort } from "../../compiler/diagnostics/mod.ts";
import { applyOverrides } from "../../runtime/control/mod.ts";
import {
  type InterceptedStage,
  type RunHandle,
  type RunSummary,
  startWorkflow,
} from "../../runtime/executor/mod.ts";
import { PluginHost } from "../../runtime/plugins/mod.ts";
import { Registry } from "../../runtime/registry/mod.ts";
import { collectOverrides } from "../_deploy.ts";
import { parseBytes } from "../_options.ts";
import { chooseWorkflow } from "../commands/run.ts";
import {
  anyRowMatches,
  errorVariables,
  hasErrorFields,
  resultText,
  runPrql,
  tableVariables,
  type Variable,
  VariableStore,
} from "./_batch.ts";

/** What a launch configuration may say: `heddle run`'s options, by their long names. */
export interface LaunchArguments {
  /** The `.he` file to run. */
  program: string;
  workflow?: string;
  /** `resource.key=value` overrides, like `--set`. */
  set?: string[];
  envFile?: string;
  batchRows?: number;
  /** Like `--memory-budget`: bytes, or text such as `256MiB`. */
  memoryBudget?: number | string;
  /** Run without stopping at breakpoints (VS Code's "Run Without Debugging"). */
  noDebug?: boolean;
}

/** A DAP event to send: its name and body. */
export type Emit = (event: string, body?: Record<string, unknown>) => void;

/** A user mistake in a request: answered as a failed response with this message. */
export class RequestError extends Error {}

interface Breakpoint {
  id: number;
  line: number;
  stage: string | null;
  condition: string | null;
  message: string | null;
}

interface Paused {
  threadId: number;
  stage: InterceptedStage;
  table: Table;
  resume: () => void;
}

/** The lifecycle of a session. */
type State =
  /** Initialized; no program yet. */
  | "idle"
  /** Launched: compiled, waiting for breakpoints and `configurationDone`. */
  | "configuring"
  /** The workflow runs (some stages may be paused). */
  | "running"
  /** Asked to stop: the run drains, nothing pauses any more. */
  | "stopping"
  /** The run ended and the client was told. */
  | "ended";

export class Session {
  #state: State = "idle";
  #linesStartAt1 = true;
  #program = "";
  #lines: LineIndex = lineIndex("");
  #ir: Ir | null = null;
  #workflow = "";
  #launch: LaunchArguments | null = null;
  #stages: IrStage[] = [];
  #breakpoints: Breakpoint[] = [];
  #nextBreakpoint = 1;
  #paused = new Map<number, Paused>();
  /** Stages where the next batch stops after a step (the stepped stage's consumers). */
  #stepTo = new Set<string>();
  #pauseNext = false;
  #variables = new VariableStore();
  /** Each stage's progress so far, from the run's events. */
  #progress = new Map<string, { batches: number; rowsIn: number; rowsOut: number }>();
  #registry: Registry | null = null;
  #plugins: PluginHost | null = null;
  #run: RunHandle | null = null;
  /** Resolves with the exit code once the run ended and its resources are released. */
  readonly ended: Promise<number>;
  #end!: (code: number) => void;

  constructor(private emit: Emit) {
    this.ended = new Promise((resolve) => (this.#end = resolve));
  }

  initialize(args: { linesStartAt1?: boolean }): Record<string, unknown> {
    this.#linesStartAt1 = args.linesStartAt1 !== false;
    return {
      supportsConfigurationDoneRequest: true,
      supportsConditionalBreakpoints: true,
      supportsHitConditionalBreakpoints: false,
      supportsEvaluateForHovers: false,
      supportsTerminateRequest: true,
      supportsSingleThreadExecutionRequests: true,
    };
  }

  async launch(args: LaunchArguments): Promise<void> {
    if (this.#state !== "idle") throw new RequestError("the session has already launched");
    if (typeof args.program !== "string" || args.program === "") {
      throw new RequestError("the launch configuration needs `program`: the .he file to run");
    }
    const file = await Deno.realPath(args.program).catch(() => args.program);
    let source: string;
    try {
      source = await Deno.readTextFile(file);
    } catch (e) {
      throw new RequestError(`cannot read ${args.program}: ${(e as Error).message}`);
    }
    const checked = check(source, file, { heddlePath: Deno.env.get("HEDDLE_PATH") });
    const ir = checked.value.optimised;
    const problems = [...checked.diagnostics];
    if (ir) {
      const overrides = await collectOverrides({ set: args.set ?? [], envFile: args.envFile })
        .catch((e) => {
          throw new RequestError((e as Error).message);
        });
      problems.push(...applyOverrides(ir, overrides));
    }
    if (!ir || problems.some((d) => d.severity === "error")) {
      const errors = problems.filter((d) => d.severity === "error");
      throw new RequestError(`the program has errors:\n${renderShort(errors, source, file)}`);
    }
    try {
      this.#workflow = chooseWorkflow(
        ir.graphs.filter((g) => g.kind === "workflow").map((g) => g.name),
        args.workflow,
      );
    } catch (e) {
      throw new RequestError((e as Error).message);
    }
    this.#program = file;
    this.#lines = lineIndex(source);
    this.#ir = ir;
    this.#launch = args;
    const handlers = new Set(
      ir.graphs.flatMap((g) => [g.handler, ...g.stages.map((s) => s.handler)]),
    );
    this.#stages = ir.graphs
      .filter((g) => g.name === this.#workflow || (g.kind === "handler" && handlers.has(g.name)))
      .flatMap((g) => g.stages);
    this.#state = "configuring";
  }

  /** Replaces the breakpoints of the program; lines with no stage are not verified. */
  setBreakpoints(
    path: string | undefined,
    requested: Array<{ line: number; condition?: string }>,
  ): Array<Record<string, unknown>> {
    const ours = path !== undefined && this.#program !== "" &&
      (path === this.#program || Deno.realPathSync(path) === this.#program);
    if (!ours) {
      return requested.map((b) => ({
        verified: false,
        line: b.line,
        message: "breakpoints can only be set in the program being debugged",
      }));
    }
    this.#breakpoints = requested.map((b) => {
      const line = this.#linesStartAt1 ? b.line : b.line + 1;
      const stage = this.#stageAtLine(line);
      return {
        id: this.#nextBreakpoint++,
        line,
        stage: stage?.id ?? null,
        condition: b.condition?.trim() || null,
        message: stage ? null : "no pipeline stage is written on this line",
      };
    });
    return this.#breakpoints.map((b) => ({
      id: b.id,
      verified: b.stage !== null,
      line: this.#linesStartAt1 ? b.line : b.line - 1,
      ...(b.message ? { message: b.message } : {}),
    }));
  }

  /** The innermost stage whose text covers a line (1-based). */
  #stageAtLine(line: number): IrStage | null {
    let best: IrStage | null = null;
    for (const s of this.#stages) {
      const first = this.#lines.locate(s.span.start).line;
      const last = this.#lines.locate(Math.max(s.span.start, s.span.end - 1)).line;
      if (first <= line && line <= last) {
        if (!best || s.span.end - s.span.start < best.span.end - best.span.start) best = s;
      }
    }
    return best;
  }

  /** Starts the run: breakpoints are set by now. */
  configurationDone(): void {
    if (this.#state !== "configuring") return;
    const args = this.#launch!;
    this.#state = "running";
    let memoryBudget: number | undefined;
    try {
      memoryBudget = typeof args.memoryBudget === "string"
        ? parseBytes(args.memoryBudget)
        : args.memoryBudget;
    } catch (e) {
      this.#output("stderr", `heddle: ${(e as Error).message}\n`);
      this.#finish(2);
      return;
    }
    const registry = this.#registry = new Registry({ memoryBudget });
    const baseDir = this.#program.slice(0, this.#program.lastIndexOf("/")) || "/";
    this.#plugins = new PluginHost({
      registry,
      search: { programDir: baseDir, heddlePath: Deno.env.get("HEDDLE_PATH") },
    });
    for (const [i, s] of this.#stages.entries()) {
      this.emit("thread", { reason: "started", threadId: i + 1, name: this.#threadName(s) });
    }
    this.#run = startWorkflow(this.#ir!, {
      registry,
      plugins: this.#plugins,
      workflow: this.#workflow,
      baseDir,
      batchRows: args.batchRows,
      intercept: args.noDebug ? undefined : (stage, table) => this.#intercept(stage, table),
      onEvent: (event) => {
        if (event.type === "stage-progress") {
          const { batches, rowsIn, rowsOut } = event;
          this.#progress.set(event.stage, { batches, rowsIn, rowsOut });
        } else if (event.type === "rows-quarantined") {
          const to = event.handler ? `to handler \`${event.handler}\`` : "with no handler";
          this.#output(
            "console",
            `${event.rows} row(s) of ${event.stage} ${to}: ${event.error.message}\n`,
          );
        }
      },
    });
    this.#run.done.then((summary) => this.#ended(summary));
  }

  #threadName(s: IrStage): string {
    const line = this.#lines.locate(s.span.start).line;
    const what = s.step ?? (s.module ? `${s.module}.${s.op}` : s.kind === "prql" ? "prql" : "*");
    return `${s.id} ${what} (line ${line})`;
  }

  #threadOf(stageId: string): number {
    return this.#stages.findIndex((s) => s.id === stageId) + 1;
  }

  /** The executor's interceptor: decides whether this batch stops its stage. */
  async #intercept(stage: InterceptedStage, table: Table): Promise<void> {
    if (this.#state !== "running") return;
    let reason: string | null = null;
    let description: string | undefined;
    const hit: number[] = [];
    if (this.#stepTo.has(stage.id)) reason = "step";
    else if (this.#pauseNext) reason = "pause";
    else {
      for (const b of this.#breakpoints) {
        if (b.stage !== stage.id) continue;
        if (b.condition) {
          const test = anyRowMatches(b.condition, table);
          if (!test.ok) {
            // A broken condition stops, as debuggers do, so the user sees why.
            description = `breakpoint condition \`${b.condition}\` failed: ${test.message}`;
          } else if (!test.matches) continue;
        }
        hit.push(b.id);
      }
      if (hit.length > 0) reason = "breakpoint";
    }
    if (!reason) return;
    this.#stepTo.clear();
    this.#pauseNext = false;
    const threadId = this.#threadOf(stage.id);
    await new Promise<void>((resume) => {
      this.#paused.set(threadId, { threadId, stage, table, resume });
      this.emit("stopped", {
        reason,
        threadId,
        allThreadsStopped: false,
        ...(hit.length ? { hitBreakpointIds: hit } : {}),
        ...(description ? { description, text: description } : {}),
      });
    });
  }

  threads(): Array<{ id: number; name: string }> {
    if (this.#state !== "running" && this.#state !== "stopping") return [];
    return this.#stages.map((s, i) => ({ id: i + 1, name: this.#threadName(s) }));
  }

  stackTrace(threadId: number): { stackFrames: unknown[]; totalFrames: number } {
    const p = this.#paused.get(threadId);
    if (!p) return { stackFrames: [], totalFrames: 0 };
    const at = this.#lines.locate(p.stage.span.start);
    const shift = this.#linesStartAt1 ? 0 : 1;
    return {
      stackFrames: [{
        id: threadId,
        name: `${p.stage.label} (${p.stage.id}): ${p.table.numRows} rows`,
        source: {
          name: this.#program.slice(this.#program.lastIndexOf("/") + 1),
          path: this.#program,
        },
        line: at.line - shift,
        column: at.column - shift,
      }],
      totalFrames: 1,
    };
  }

  scopes(frameId: number): Array<Record<string, unknown>> {
    const p = this.#paused.get(frameId);
    if (!p) return [];
    const scopes = [{
      name: "Batch",
      presentationHint: "locals",
      variablesReference: this.#variables.add(() => this.#batchVariables(p)),
      expensive: false,
    }];
    scopes.push({
      name: "Run",
      presentationHint: "registers",
      variablesReference: this.#variables.add(() => this.#runVariables()),
      expensive: false,
    });
    if (hasErrorFields(p.table)) {
      scopes.push({
        name: "Quarantined rows",
        presentationHint: "locals",
        variablesReference: this.#variables.add(() => errorVariables(this.#variables, p.table)),
        expensive: false,
      });
    }
    return scopes;
  }

  #batchVariables(p: Paused): Variable[] {
    return [
      { name: "stage", value: `${p.stage.label} (${p.stage.id})`, variablesReference: 0 },
      { name: "graph", value: p.stage.graph, variablesReference: 0 },
      ...tableVariables(this.#variables, p.table),
    ];
  }

  /** Every stage's batches and rows so far: where the paused run stands. */
  #runVariables(): Variable[] {
    return this.#stages.map((s) => {
      const p = this.#progress.get(s.id) ?? { batches: 0, rowsIn: 0, rowsOut: 0 };
      return {
        name: this.#threadName(s),
        value: `${p.batches} batches, ${p.rowsIn} rows in, ${p.rowsOut} rows out`,
        variablesReference: 0,
      };
    });
  }

  variables(ref: number): Variable[] {
    return this.#variables.get(ref);
  }

  /** Runs a PRQL pipeline over the paused batch of a frame (or the one paused last). */
  evaluate(expression: string, frameId: number | undefined): Record<string, unknown> {
    const p = frameId !== undefined ? this.#paused.get(frameId) : [...this.#paused.values()].at(-1);
    if (!p) throw new RequestError("no batch is paused: evaluate runs PRQL over a paused batch");
    const result = runPrql(expression, p.table);
    if (!result.ok) throw new RequestError(result.message);
    const table = result.table;
    return {
      result: resultText(table),
      variablesReference: this.#variables.add(() => tableVariables(this.#variables, table)),
    };
  }

  /** Resumes one thread, or every paused one. */
  continue(threadId: number | undefined, singleThread: boolean): boolean {
    const all = !singleThread || threadId === undefined;
    this.#resume(all ? undefined : threadId);
    return all;
  }

  /** Resumes and stops again when the batch's output reaches the next stage. */
  next(threadId: number, singleThread: boolean): void {
    const p = this.#paused.get(threadId);
    if (p) { for (const c of p.stage.consumers) this.#stepTo.add(c); }
    this.#resume(singleThread ? threadId : undefined);
  }

  /** Stops at the next batch that reaches any stage. */
  pause(): void {
    this.#pauseNext = true;
  }

  #resume(threadId: number | undefined): void {
    const which = threadId === undefined ? [...this.#paused.keys()] : [threadId];
    for (const id of which) {
      const p = this.#paused.get(id);
      if (!p) continue;
      this.#paused.delete(id);
      this.emit("continued", { threadId: id, allThreadsContinued: threadId === undefined });
      p.resume();
    }
    if (this.#paused.size === 0) this.#variables.clear();
  }

  /** Drains the run: sources stop, in-flight batches complete, nothing pauses any more. */
  stop(): void {
    if (this.#state === "idle" || this.#state === "configuring") {
      this.#finish(0);
      return;
    }
    if (this.#state !== "running") return;
    this.#state = "stopping";
    this.#run?.stop();
    this.#resume(undefined);
  }

  async #ended(summary: RunSummary): Promise<void> {
    for (const [id, s] of Object.entries(summary.stages)) {
      this.#output("console", `  ${id} ${s.label}: ${s.rowsIn} rows in, ${s.rowsOut} rows out\n`);
    }
    const error = summary.error ? `: ${summary.error.message}` : "";
    this.#output(summary.error ? "stderr" : "console", `run ${summary.status}${error}\n`);
    await this.#plugins?.close().catch(() => {});
    this.#registry?.close();
    for (const [i] of this.#stages.entries()) {
      this.emit("thread", { reason: "exited", threadId: i + 1 });
    }
    this.#finish(summary.status === "failed" ? 1 : 0);
  }

  #finish(code: number): void {
    if (this.#state === "ended") return;
    this.#state = "ended";
    this.emit("exited", { exitCode: code });
    this.emit("terminated", {});
    this.#end(code);
  }

  #output(category: "console" | "stderr", output: string): void {
    this.emit("output", { category, output });
  }
}
