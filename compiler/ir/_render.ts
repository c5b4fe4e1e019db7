/**
 * Renderings of the IR for `heddle inspect --ir`: text for people, JSON for tools, Graphviz
 * DOT and Mermaid for pictures. Renderers only read the IR; they must never change it.
 */
import type { RowSchema } from "../types/mod.ts";
import type { Ir, IrStage } from "./mod.ts";

function label(s: IrStage): string {
  if (s.kind === "prql") return `prql`;
  if (s.kind === "lookup-join") return `lookup-join ${s.lookup?.map((l) => l.step).join(", ")}`;
  if (s.kind === "handler-input") return "*";
  if (s.calls) return s.calls.map((c) => c.step ?? `${c.module}.${c.op}`).join(" + ");
  return `${s.step ?? `${s.module}.${s.op}`}`;
}

function schemaText(schema: RowSchema | null): string {
  if (!schema) return "";
  const f = schema.fields.map((f) => `${f.name}: ${f.type ?? `?${f.family ?? ""}`}`);
  return `{${f.join(", ")}${schema.open ? ", .." : ""}}`;
}

export function irToText(ir: Ir): string {
  const out: string[] = [];
  for (const g of ir.graphs) {
    out.push(`${g.kind} ${g.name}${g.handler ? ` ? ${g.handler}` : ""}`);
    for (const s of g.stages) {
      const from = s.inputs.map((i) => i.from).join(", ");
      out.push(
        `  ${s.id} ${s.kind} ${label(s)} [${s.runtime}]${from ? ` <- ${from}` : ""}${
          s.handler ? ` ? ${s.handler}` : ""
        } ${schemaText(s.output)}`.trimEnd(),
      );
      for (const [k, c] of (s.calls ?? []).entries()) {
        const name = c.step ? `${c.step} (${c.module}.${c.op})` : `${c.module}.${c.op}`;
        out.push(`    chain ${k + 1}/${s.calls!.length} ${name} ${schemaText(c.output)}`.trimEnd());
      }
      for (const l of s.lookup ?? []) out.push(`    lookup ${l.step} (${l.dialect}): ${l.query}`);
    }
  }
  if (ir.decisions.length) out.push("decisions");
  for (const d of ir.decisions) out.push(`  ${d.kind} [${d.stages.join(", ")}]: ${d.explanation}`);
  return out.join("\n") + "\n";
}

export function irToJson(ir: Ir): string {
  return JSON.stringify(ir, null, 2) + "\n";
}

const safe = (id: string) => id.replace(/[^A-Za-z0-9_]/g, "_");

export function irToDot(ir: Ir): string {
  const out = ["digraph heddle {", "  rankdir=LR;"];
  for (const g of ir.graphs) {
    out.push(`  subgraph cluster_${safe(g.name)} {`, `    label="${g.kind} ${g.name}";`);
    for (const s of g.stages) {
      out.push(`    ${safe(s.id)} [label="${label(s).replace(/"/g, "'")}\\n${s.kind}"];`);
    }
    for (const s of g.stages) {
      for (const i of s.inputs) out.push(`    ${safe(i.from)} -> ${safe(s.id)};`);
    }
    out.push("  }");
  }
  out.push("}");
  return out.join("\n") + "\n";
}

export function irToMermaid(ir: Ir): string {
  const out = ["graph LR"];
  for (const g of ir.graphs) {
    out.push(`  subgraph ${safe(g.name)}[${g.kind} ${g.name}]`);
    for (const s of g.stages) out.push(`    ${safe(s.id)}["${label(s).replace(/"/g, "'")}"]`);
    for (const s of g.stages) {
      for (const i of s.inputs) out.push(`    ${safe(i.from)} --> ${safe(s.id)}`);
    }
    out.push("  end");
  }
  return out.join("\n") + "\n";
}
