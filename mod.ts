/**
 * Heddle's public API for programs that embed it: compile `.he` programs and read their
 * diagnostics, run workflows on this machine, and write TypeScript step plugins. The
 * `heddle` command line is built on exactly these entry points.
 *
 * @example Checking a program
 * ```ts
 * import { check, renderHuman } from "@heddle/heddle";
 * const source = await Deno.readTextFile("examples/fraud_detection.he");
 * const { diagnostics } = check(source, "examples/fraud_detection.he");
 * console.error(renderHuman(diagnostics, source, "examples/fraud_detection.he", { color: false }));
 * ```
 */

// The compiler: every phase and the composition of all of them.
export {
  check,
  type Checked,
  type CheckOptions,
  type Diagnostic,
  format,
  introspect,
  type Ir,
  irToDot,
  irToJson,
  irToMermaid,
  irToText,
  parse,
  type Result,
  type SchemaSnapshot,
  type Span,
} from "./compiler/mod.ts";
export { renderHuman, renderShort, toJson } from "./compiler/diagnostics/mod.ts";

// The runtime: run a compiled workflow, or host a control plane and workers.
export {
  type RunEvent,
  type RunOptions,
  type RunSummary,
  runWorkflow,
  startWorkflow,
} from "./runtime/executor/mod.ts";
export { type ObjectHandle, Registry, type RegistryOptions } from "./runtime/registry/mod.ts";
export { PluginHost, type PluginHostOptions } from "./runtime/plugins/mod.ts";
export { ControlPlane } from "./runtime/control/mod.ts";
export { Worker } from "./runtime/worker/mod.ts";

// The TypeScript plugin SDK.
export {
  definePlugin,
  defineStep,
  inputPlus,
  manifestOf,
  openRow,
  type Plugin,
  type RowError,
  serve,
  type Step,
  type StepOutput,
} from "./sdk/typescript/mod.ts";
