/**
 * Contracts, row types and declarations as Markdown, for hovers and completion details.
 * One place renders them so that a contract reads the same wherever the editor shows it.
 * It only formats what earlier phases found; it must never compute types itself.
 */
import type { RowSchema } from "../mod.ts";
import type { SchemaField } from "../types/mod.ts";
import type * as Ast from "../syntax/mod.ts";
import {
  type ArrowField,
  type ConfigField,
  type ConfigType,
  type ModuleContract,
  type OpContract,
  type ResourceKind,
  type RowContract,
  typeToString,
} from "../modules/mod.ts";
import type { Analysis, SymbolInfo } from "./_analysis.ts";

export function configTypeText(t: ConfigType): string {
  return typeof t === "string" ? t : t.enum.map((e) => `"${e}"`).join(" | ");
}

export function configFieldText(f: ConfigField): string {
  return `\`${f.key}: ${configTypeText(f.type)}\`${f.required ? " (required)" : ""}: ${f.doc}`;
}

function fieldsText(fields: ArrowField[], open: boolean): string {
  const parts = fields.map((f) => `${f.name}: ${typeToString(f.type)}${f.nullable ? "?" : ""}`);
  if (open) parts.push("..");
  return `{ ${parts.join(", ")} }`;
}

export function rowContractText(r: RowContract | null): string {
  if (!r) return "none";
  switch (r.kind) {
    case "fields":
      return fieldsText(r.fields, r.open);
    case "input-plus":
      return `input + ${fieldsText(r.fields, false)}`;
    case "open":
      return "{ .. } (any row)";
    case "sql":
      return `columns selected by config key "${r.key}" (${r.dialect})`;
  }
}

/** An inferred field's type: `int64`, `float64?`; an unknown type shows its family. */
export function fieldTypeText(f: SchemaField): string {
  return `${f.type ?? (f.family ? `<${f.family}>` : "<unknown>")}${f.nullable ? "?" : ""}`;
}

/** An inferred row: `{ user_id: int64, amount: float64, .. }`; unknown types show their family. */
export function rowSchemaText(r: RowSchema): string {
  const parts = r.fields.map((f) => `${f.name}: ${fieldTypeText(f)}`);
  if (r.open) parts.push("..");
  return `{ ${parts.join(", ")} }`;
}

function configSection(config: ConfigField[]): string[] {
  if (!config.length) return ["No config keys."];
  return ["Config:", ...config.map((f) => `- ${configFieldText(f)}`)];
}

export function opMarkdown(alias: string, op: OpContract): string {
  const lines = [
    "```heddle",
    `${alias}.${op.name}  // ${op.role}${op.role === "source" && op.bounded ? " (bounded)" : ""}`,
    "```",
    op.doc,
    "",
    ...configSection(op.config),
  ];
  if (op.slots.length) {
    lines.push(
      "",
      "Slots:",
      ...op.slots.map((s) =>
        `- \`<${s.name}=…>\` a \`${s.resource}\`${s.required ? " (required)" : ""}: ${s.doc}`
      ),
    );
  }
  if (op.input) lines.push("", `Input: \`${rowContractText(op.input)}\``);
  if (op.output) lines.push("", `Output: \`${rowContractText(op.output)}\``);
  return lines.join("\n");
}

export function resourceKindMarkdown(alias: string, kind: ResourceKind): string {
  return [
    "```heddle",
    `${alias}.${kind.name}  // resource kind`,
    "```",
    kind.doc,
    "",
    ...configSection(kind.config),
  ].join("\n");
}

export function moduleMarkdown(alias: string, m: ModuleContract): string {
  const lines = ["```heddle", `import "${m.path}" ${alias}`, "```", `Runtime: ${m.runtime}.`];
  if (m.resources.size) {
    lines.push("", "Resource kinds:", ...[...m.resources.values()].map((r) => `- \`${r.name}\``));
  }
  if (m.ops.size) {
    lines.push(
      "",
      "Operations:",
      ...[...m.ops.values()].map((o) => `- \`${o.name}\` (${o.role}): ${o.doc}`),
    );
  }
  return lines.join("\n");
}

/** The first line of a declaration, as written: `step x = <connection=pg_db> pg.query`. */
function headerOf(a: Analysis, span: Ast.Span): string {
  const text = a.source.slice(span.start, span.end);
  const brace = text.indexOf("{");
  return (brace >= 0 ? text.slice(0, brace) : text.split("\n")[0]).trim();
}

/** The inferred row that a step's uses produce, else what its contract promises. */
export function stepRow(a: Analysis, step: Ast.StepDecl): string | null {
  for (const [stage, target] of a.resolved.refs) {
    if (target.kind !== "step" || target.step.decl !== step) continue;
    const out = a.typed?.stages.get(stage)?.output;
    if (out) return rowSchemaText(out);
  }
  const snapshot = a.typed?.sql.get(step.name.name)?.snapshot;
  if (snapshot) {
    const parts = snapshot.columns.map((c) => `${c.name}: ${c.type}${c.nullable ? "?" : ""}`);
    return `{ ${parts.join(", ")} }`;
  }
  const call = a.resolved.steps.get(step.name.name)?.call;
  return call?.op.output ? rowContractText(call.op.output) : null;
}

/** The inferred row of the statement that binds a stream. */
export function streamRow(a: Analysis, statement: Ast.Statement): string | null {
  const last = statement.pipeline.stages.at(-1);
  const out = last ? a.typed?.stages.get(last)?.output : null;
  return out ? rowSchemaText(out) : null;
}

export function symbolMarkdown(a: Analysis, s: SymbolInfo): string {
  const code = (text: string) => ["```heddle", text, "```"];
  const item = s.item;
  switch (s.kind) {
    case "import": {
      const m = a.resolved.modules.get(s.name);
      return m ? moduleMarkdown(s.name, m) : code(headerOf(a, s.declSpan)).join("\n");
    }
    case "resource": {
      const info = a.resolved.resources.get(s.name);
      const lines = code(headerOf(a, s.declSpan));
      if (info) lines.push(`A \`${info.qualifiedKind}\`: ${info.kind.doc}`);
      return lines.join("\n");
    }
    case "step": {
      const lines = code(headerOf(a, s.declSpan));
      const call = a.resolved.steps.get(s.name)?.call;
      if (call) lines.push(`${call.op.role}: ${call.op.doc}`);
      const row = item.kind === "Step" ? stepRow(a, item) : null;
      if (row) lines.push("", `Output: \`${row}\``);
      return lines.join("\n");
    }
    case "stream": {
      const lines = code(
        `> ${s.name}  // stream of ${item.kind === "Workflow" ? "workflow" : "handler"} \`${
          (item as Ast.WorkflowDecl | Ast.HandlerDecl).name.name
        }\``,
      );
      const row = s.statement ? streamRow(a, s.statement) : null;
      if (row) lines.push(`Rows: \`${row}\``);
      return lines.join("\n");
    }
    case "handler": {
      const lines = code(`handler ${s.name}`);
      const first = item.kind === "Handler" ? item.body[0]?.pipeline.stages[0] : undefined;
      const star = first ? a.typed?.stages.get(first)?.output : null;
      if (star) lines.push(`Receives the failed rows: \`${rowSchemaText(star)}\``);
      return lines.join("\n");
    }
    case "workflow":
    case "type":
      return code(
        s.kind === "type"
          ? a.source.slice(s.declSpan.start, s.declSpan.end)
          : headerOf(a, s.declSpan),
      )
        .join("\n");
  }
}
