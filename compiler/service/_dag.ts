/**
 * The workflow graph an editor previews: each workflow's and handler's stages, what they
 * run, where they are written and which stages feed them, taken from the IR as `heddle
 * inspect --ir` shows it (before the optimiser fuses anything, so every stage is one the
 * user wrote), plus the same graph as Mermaid text. Null when the program does not compile
 * far enough to have a graph.
 */
import type { Analysis } from "./_analysis.ts";

export interface DagStage {
  id: string;
  kind: string;
  /** What it runs: the step name, `module.op`, `prql` or `*`. */
  label: string;
  /** 1-based line where it is written. */
  line: number;
  /** Ids of the stages that feed it. */
  inputs: string[];
  /** The handler that receives its failed rows. */
  handler: string | null;
}

export interface DagGraph {
  name: string;
  kind: "workflow" | "handler";
  handler: string | null;
  stages: DagStage[];
  /** The graph as a Mermaid flowchart. */
  mermaid: string;
}

export function dag(a: Analysis): DagGraph[] | null {
  const ir = a.checked.ir;
  if (!ir) return null;
  return ir.graphs.map((g) => {
    const stages: DagStage[] = g.stages.map((s) => ({
      id: s.id,
      kind: s.kind,
      label: s.step ?? (s.module ? `${s.module}.${s.op}` : s.kind === "prql" ? "prql" : "*"),
      line: a.lines.locate(s.span.start).line,
      inputs: s.inputs.map((i) => i.from),
      handler: s.handler,
    }));
    const node = (id: string) => id.replace(/[^A-Za-z0-9_]/g, "_");
    const lines = [
      "flowchart LR",
      ...stages.map((s) => `  ${node(s.id)}["${s.label.replaceAll('"', "'")} (line ${s.line})"]`),
      ...stages.flatMap((s) => s.inputs.map((i) => `  ${node(i)} --> ${node(s.id)}`)),
    ];
    return { name: g.name, kind: g.kind, handler: g.handler, stages, mermaid: lines.join("\n") };
  });
}
