/**
 * The workflow graph the UI draws, read from the optimised IR the control plane stored for
 * the workflow (`docs/ir.md`, JSON form): one node per stage of the workflow and of the
 * handlers it sends rows to, one edge per stage input with its schema. It reads the JSON
 * form only, field by field, so a secret sealed in a config never reaches the page (configs
 * are not read at all).
 */
import type { GraphEdge, GraphNode, GraphView } from "./_views.ts";

/** The parts of the IR's JSON form the graph needs. */
interface JsonField {
  name: string;
  type: string | null;
  family?: string;
  nullable: boolean;
}
interface JsonSchema {
  fields: JsonField[];
  open: boolean;
}
interface JsonStage {
  id: string;
  kind: string;
  module: string | null;
  op: string | null;
  step: string | null;
  inputs: { from: string; schema: JsonSchema | null }[];
  handler: string | null;
  fusedFrom: string[];
  lookup: { name?: string; step?: string }[] | null;
}
interface JsonGraph {
  name: string;
  kind: "workflow" | "handler";
  handler: string | null;
  stages: JsonStage[];
}
interface JsonIr {
  graphs: JsonGraph[];
  decisions?: { kind: string; stages: string[] }[];
}

/** What a stage is called on the page: its step, else its operation. */
function labelOf(s: JsonStage): string {
  if (s.kind === "lookup-join") {
    const names = (s.lookup ?? []).map((l) => l.step ?? l.name ?? "").filter((n) => n);
    return `join ${names.join(", ")}`;
  }
  if (s.kind === "prql") return "PRQL";
  if (s.kind === "handler-input") return "* (failed rows)";
  const op = s.module ? `${s.module}.${s.op}` : String(s.op);
  return s.step ? `${s.step} (${op})` : op;
}

/** A schema as text, one `name: type` a line (`?` marks a nullable column). */
export function schemaText(schema: JsonSchema | null): string {
  if (!schema) return "(schema not known)";
  const lines = schema.fields.map((f) =>
    `${f.name}: ${f.type ?? f.family ?? "(type not known)"}${f.nullable ? " (nullable)" : ""}`
  );
  if (schema.open) lines.push("..");
  return lines.join("\n");
}

/** What a page says of a stage it knows only by id. */
export interface StageInfo {
  kind: string;
  /** Whether the stage belongs to a workflow or a handler. */
  graph: "workflow" | "handler";
  label: string;
  /** Its place in the IR, for listing stages in order. */
  order: number;
}

/** The stages of every graph in `irJson`, by stage id. */
export function stageInfo(irJson: string): Map<string, StageInfo> {
  const ir = JSON.parse(irJson) as JsonIr;
  const stages = new Map<string, StageInfo>();
  for (const g of ir.graphs) {
    for (const s of g.stages) {
      stages.set(s.id, { kind: s.kind, graph: g.kind, label: labelOf(s), order: stages.size });
    }
  }
  return stages;
}

/** Where the latest run's stages ran, from its placement (docs/cluster.md), when known. */
export interface RunPlacement {
  stages: { id: string; worker: string | null }[];
  edges: { from: string; to: string; crossesHosts: boolean }[];
}

/** The drawn graph of `workflow` in `irJson`: its stages and those of the handlers it uses. */
export function workflowGraph(
  irJson: string,
  workflow: string,
  placement: RunPlacement | null,
): GraphView {
  const workers = new Map((placement?.stages ?? []).map((s) => [s.id, s.worker]));
  const crossing = new Set(
    (placement?.edges ?? []).filter((e) => e.crossesHosts).map((e) => `${e.from}>${e.to}`),
  );
  const ir = JSON.parse(irJson) as JsonIr;
  const main = ir.graphs.find((g) => g.kind === "workflow" && g.name === workflow);
  if (!main) return { workflow, nodes: [], edges: [] };
  const handlerNames = new Set<string>();
  if (main.handler) handlerNames.add(main.handler);
  for (const s of main.stages) if (s.handler) handlerNames.add(s.handler);
  const graphs = [
    main,
    ...ir.graphs.filter((g) => g.kind === "handler" && handlerNames.has(g.name)),
  ];
  const batched = new Set(
    (ir.decisions ?? []).filter((d) => d.kind === "lookup-batching").flatMap((d) => d.stages),
  );
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  for (const g of graphs) {
    for (const s of g.stages) {
      const marks: string[] = [];
      if (s.fusedFrom.length > 0) marks.push(`fused ×${s.fusedFrom.length}`);
      if (s.kind === "lookup-join" || batched.has(s.id)) marks.push("batched lookup");
      const worker = workers.get(s.id) ?? null;
      nodes.push({ id: s.id, label: labelOf(s), kind: s.kind, graph: g.name, marks, worker });
      for (const input of s.inputs) {
        edges.push({
          from: input.from,
          to: s.id,
          schema: schemaText(input.schema),
          crossesHosts: crossing.has(`${input.from}>${s.id}`),
        });
      }
    }
  }
  return { workflow, nodes, edges };
}
