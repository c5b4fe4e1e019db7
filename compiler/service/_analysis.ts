/**
 * One analysed document: the compiler's phases run over the text, plus an index of every
 * name occurrence (declarations and uses) with what it denotes. Every editor feature reads
 * this index instead of walking the tree again. Unlike `check`, semantic phases run even
 * after syntax errors (the parser always returns a tree), because an editor needs hover and
 * navigation most while the file is broken; their diagnostics are then not reported.
 * Nothing here may throw on any input.
 */
import {
  check,
  type Checked,
  type CheckOptions,
  type Diagnostic,
  infer,
  resolve,
  type Resolved,
  type Span,
  type Typed,
} from "../mod.ts";
import type * as Ast from "../syntax/mod.ts";
import type { ConfigField, ModuleContract, OpContract, SlotContract } from "../modules/mod.ts";
import { RETRY_CONFIG } from "../resolve/mod.ts";
import { type LineIndex, lineIndex } from "../diagnostics/mod.ts";

export type SymbolKind =
  | "import"
  | "resource"
  | "step"
  | "handler"
  | "workflow"
  | "type"
  | "stream";

/** A declared name: top-level declarations, and streams bound inside one body. */
export interface SymbolInfo {
  /** Unique within the document: `step:fetch_user_data`, `stream:FraudDetection:tx_stream`. */
  key: string;
  kind: SymbolKind;
  name: string;
  /** The declaring identifier. */
  nameSpan: Span;
  /** The whole declaration (for streams: the statement that binds it). */
  declSpan: Span;
  item: Ast.Item;
  /** For streams: the statement that binds it. */
  statement?: Ast.Statement;
}

/** What the text under a cursor means. */
export type Target =
  | { kind: "symbol"; key: string; declaration: boolean }
  | { kind: "member"; alias: string; member: string; module: ModuleContract }
  | { kind: "configKey"; field: ConfigField; owner: string }
  | { kind: "slot"; slot: SlotContract; op: OpContract };

export interface Occurrence {
  span: Span;
  target: Target;
}

export interface Analysis {
  source: string;
  file: string;
  lines: LineIndex;
  checked: Checked;
  /** Every phase's diagnostics, as `check` reports them. */
  diagnostics: Diagnostic[];
  /** Resolved names, even when the file has syntax errors. */
  resolved: Resolved;
  /** Inferred row types; null when inference could not run on this text. */
  typed: Typed | null;
  symbols: Map<string, SymbolInfo>;
  occurrences: Occurrence[];
  /**
   * Set when `source` is newer than the tree (see `withText`): maps an offset of `source`
   * to the tree's text.
   */
  edit?: { toOlder(offset: number): number };
}

/** Runs the phases over a document and indexes its names. */
export function analyse(source: string, file: string, options: CheckOptions = {}): Analysis {
  // No editor feature reads the optimised IR (the DAG preview reads the lowered one).
  const result = check(source, file, { ...options, optimise: false });
  const checked = result.value;
  const resolved = checked.resolved ??
    resolve(checked.ast, {
      file,
      programDir: dirOf(file),
      modulePath: options.modulePath,
      heddlePath: options.heddlePath,
      read: options.read,
    }).value;
  let typed = checked.typed;
  if (!typed) {
    try {
      typed = infer(resolved, {}).value;
    } catch {
      // Inference assumes a program that resolved cleanly; on a broken one its row types are
      // a luxury, so the editor goes on without them.
      typed = null;
    }
  }
  const analysis: Analysis = {
    source,
    file,
    lines: lineIndex(source),
    checked,
    diagnostics: result.diagnostics,
    resolved,
    typed,
    symbols: new Map(),
    occurrences: [],
  };
  new Indexer(analysis).run();
  analysis.occurrences.sort((a, b) => a.span.start - b.span.start);
  return analysis;
}

function dirOf(file: string): string {
  const slash = file.lastIndexOf("/");
  return slash >= 0 ? file.slice(0, slash) || "/" : ".";
}

/** The longest occurrence of each analysis: how far back a search for `offset` must look. */
const longest = new WeakMap<Occurrence[], number>();

/** The occurrence whose span holds `offset` (touching its end counts, as editors expect). */
export function occurrenceAt(a: Analysis, offset: number): Occurrence | null {
  // Occurrences are sorted by start (`analyse`): only those starting between `offset` less the
  // longest span and `offset` can hold it. Hover asks on every keystroke of a large program.
  const all = a.occurrences;
  let reach = longest.get(all);
  if (reach === undefined) {
    reach = all.reduce((m, o) => Math.max(m, o.span.end - o.span.start), 0);
    longest.set(all, reach);
  }
  let lo = 0;
  let hi = all.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (all[mid].span.start <= offset) lo = mid + 1;
    else hi = mid;
  }
  let best: Occurrence | null = null;
  for (let i = lo - 1; i >= 0 && all[i].span.start >= offset - reach; i--) {
    const o = all[i];
    if (offset <= o.span.end) {
      if (!best || o.span.end - o.span.start <= best.span.end - best.span.start) best = o;
    }
  }
  return best;
}

/** The symbol under the cursor, if the cursor is on a declared name or a use of one. */
export function symbolAt(a: Analysis, offset: number): SymbolInfo | null {
  const o = occurrenceAt(a, offset);
  return o?.target.kind === "symbol" ? a.symbols.get(o.target.key) ?? null : null;
}

const TOP_LEVEL: Partial<Record<Ast.Item["kind"], SymbolKind>> = {
  Import: "import",
  Resource: "resource",
  Step: "step",
  Handler: "handler",
  Workflow: "workflow",
  TypeDecl: "type",
};

class Indexer {
  constructor(private a: Analysis) {}

  run(): void {
    const items = this.a.resolved.program.items;
    for (const item of items) {
      const kind = TOP_LEVEL[item.kind];
      if (!kind || item.kind === "ErrorItem") continue;
      const id = item.kind === "Import" ? item.alias : item.name;
      if (!id.name) continue;
      const key = `${kind}:${id.name}`;
      // A duplicate declaration stays the first one's use, as the resolver decides.
      if (this.symbolKeyOf(id.name)) {
        this.use(id, this.symbolKeyOf(id.name)!);
        continue;
      }
      this.a.symbols.set(key, {
        key,
        kind,
        name: id.name,
        nameSpan: id.span,
        declSpan: item.span,
        item,
      });
      this.a.occurrences.push({
        span: id.span,
        target: { kind: "symbol", key, declaration: true },
      });
    }
    for (const item of items) this.item(item);
  }

  symbolKeyOf(name: string): string | null {
    for (const kind of ["import", "resource", "step", "handler", "workflow", "type"]) {
      if (this.a.symbols.has(`${kind}:${name}`)) return `${kind}:${name}`;
    }
    return null;
  }

  use(id: Ast.Ident, key: string): void {
    this.a.occurrences.push({ span: id.span, target: { kind: "symbol", key, declaration: false } });
  }

  useIfKnown(id: Ast.Ident, kind: SymbolKind): void {
    if (this.a.symbols.has(`${kind}:${id.name}`)) this.use(id, `${kind}:${id.name}`);
  }

  item(item: Ast.Item): void {
    switch (item.kind) {
      case "Resource": {
        const m = this.qualified(item.type);
        const kind = m?.resources.get(item.type.member.name);
        if (kind) this.config(item.config, kind.config, `${item.type.module.name}.${kind.name}`);
        break;
      }
      case "Step":
        this.call(item.call);
        break;
      case "Handler":
        this.body(item, item.body);
        break;
      case "Workflow":
        if (item.handler) this.useIfKnown(item.handler, "handler");
        this.body(item, item.body);
        break;
      case "TypeDecl":
        this.typeExpr(item.type);
        break;
    }
  }

  /** Indexes `alias.member`; returns the module when the alias is known. */
  qualified(q: Ast.QualifiedName): ModuleContract | null {
    this.useIfKnown(q.module, "import");
    const m = this.a.resolved.modules.get(q.module.name) ?? null;
    if (m && (m.ops.has(q.member.name) || m.resources.has(q.member.name))) {
      this.a.occurrences.push({
        span: q.member.span,
        target: { kind: "member", alias: q.module.name, member: q.member.name, module: m },
      });
    }
    return m;
  }

  call(stage: Ast.CallStage): void {
    const m = this.qualified(stage.target);
    const op = m?.ops.get(stage.target.member.name);
    for (const inj of stage.injections) {
      this.useIfKnown(inj.resource, "resource");
      const slot = op?.slots.find((s) => s.name === inj.slot.name);
      if (slot && op) {
        this.a.occurrences.push({ span: inj.slot.span, target: { kind: "slot", slot, op } });
      }
    }
    if (op) this.config(stage.config, op.config, `${stage.target.module.name}.${op.name}`);
    this.suffix(stage);
  }

  suffix(stage: Ast.StageSuffix): void {
    if (stage.handler) this.useIfKnown(stage.handler, "handler");
    if (stage.retry) this.config(stage.retry, RETRY_CONFIG, "retry");
    if (stage.annotation) this.typeExpr(stage.annotation);
  }

  config(obj: Ast.ObjectLit | null, schema: ConfigField[], owner: string): void {
    for (const f of obj?.fields ?? []) {
      const field = schema.find((s) => s.key === f.key.name);
      if (field) {
        this.a.occurrences.push({ span: f.key.span, target: { kind: "configKey", field, owner } });
      }
    }
  }

  typeExpr(t: Ast.TypeExpr): void {
    if (t.kind === "NamedType") this.useIfKnown(t.name, "type");
    else if (t.kind === "RowType") t.fields.forEach((f) => this.typeExpr(f.type));
    else this.typeExpr(t.element);
  }

  body(owner: Ast.HandlerDecl | Ast.WorkflowDecl, body: Ast.Statement[]): void {
    const streamKey = (name: string) => `stream:${owner.name.name}:${name}`;
    for (const st of body) {
      if (!st.binding || this.a.symbols.has(streamKey(st.binding.name))) continue;
      const key = streamKey(st.binding.name);
      this.a.symbols.set(key, {
        key,
        kind: "stream",
        name: st.binding.name,
        nameSpan: st.binding.span,
        declSpan: st.span,
        item: owner,
        statement: st,
      });
    }
    for (const st of body) {
      if (st.binding) {
        const key = streamKey(st.binding.name);
        const declaration = this.a.symbols.get(key)!.nameSpan === st.binding.span;
        this.a.occurrences.push({
          span: st.binding.span,
          target: { kind: "symbol", key, declaration },
        });
      }
      for (const stage of st.pipeline.stages) {
        if (stage.kind === "Call") this.call(stage);
        else this.suffix(stage);
        if (stage.kind === "Ref") {
          const key = this.a.symbols.has(streamKey(stage.name.name))
            ? streamKey(stage.name.name)
            : `step:${stage.name.name}`;
          if (this.a.symbols.has(key)) this.use(stage.name, key);
        }
        if (stage.kind === "Prql") this.prql(stage);
      }
    }
  }

  /** Steps are joined inside PRQL text by name (`join fetch_user_data`): index those uses. */
  prql(stage: Ast.PrqlStage): void {
    for (const m of stage.text.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)) {
      if (!this.a.symbols.has(`step:${m[0]}`)) continue;
      const start = stage.textSpan.start + m.index!;
      this.a.occurrences.push({
        span: { start, end: start + m[0].length },
        target: { kind: "symbol", key: `step:${m[0]}`, declaration: false },
      });
    }
  }
}
