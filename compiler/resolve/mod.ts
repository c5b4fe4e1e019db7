/**
 * Name resolution: binds every name in a parsed program to what it denotes (a module
 * contract, a resource, a step, a handler, a stream, a type) and checks what contracts say
 * about names alone: config keys and value kinds, injection slots and resource kinds, where
 * sources, sinks and `*` may stand. It never infers row types (that is `compiler/types`) and
 * never throws for a user error.
 */
import type { Diagnostic, Result, Span } from "../diagnostics/_types.ts";
import type * as Ast from "../syntax/mod.ts";
import { MAX_NESTING } from "../syntax/mod.ts";
import {
  type ConfigField,
  loadModule,
  type ModuleContract,
  type ModuleSearch,
  type OpContract,
  parseType,
  type ResourceKind,
} from "../modules/mod.ts";
import { RESOLVE_CODES as C } from "./_codes.ts";
import { diag } from "./_diag.ts";
import { didYouMean } from "./_suggest.ts";

export { RESOLVE_CODES } from "./_codes.ts";
export { diag } from "./_diag.ts";
export { closest, didYouMean, editDistance } from "./_suggest.ts";

export interface ResolveOptions extends Partial<ModuleSearch> {
  file?: string;
}

export interface ResourceInfo {
  decl: Ast.ResourceDecl;
  module: ModuleContract;
  kind: ResourceKind;
  /** `fhub/postgresql.connection`: what slots compare against. */
  qualifiedKind: string;
}

/** A call that resolved to an operation of a module, with its injections bound. */
export interface ResolvedCall {
  node: Ast.CallStage;
  module: ModuleContract;
  op: OpContract;
  /** Slot name to resource name. */
  injections: Map<string, string>;
}

export interface StepInfo {
  decl: Ast.StepDecl;
  call: ResolvedCall | null;
}

/** What a bare name in a pipeline denotes. */
export type RefTarget =
  | { kind: "step"; step: StepInfo }
  | { kind: "stream"; name: string; bound: Ast.Statement };

export interface Resolved {
  program: Ast.Program;
  file: string;
  modules: Map<string, ModuleContract>;
  resources: Map<string, ResourceInfo>;
  steps: Map<string, StepInfo>;
  handlers: Map<string, Ast.HandlerDecl>;
  types: Map<string, Ast.TypeDecl>;
  workflows: Ast.WorkflowDecl[];
  calls: Map<Ast.CallStage, ResolvedCall>;
  refs: Map<Ast.RefStage, RefTarget>;
}

/** The config schema of `retry { ... }`, which every stage accepts. */
export const RETRY_CONFIG: ConfigField[] = [
  { key: "attempts", type: "int", required: false, doc: "Attempts in all (default 3)." },
  {
    key: "backoff",
    type: "duration",
    required: false,
    doc: "First delay between attempts, doubling after each (default 200ms).",
  },
  { key: "max_backoff", type: "duration", required: false, doc: "Cap of the delay (default 30s)." },
  { key: "timeout", type: "duration", required: false, doc: "Per-attempt timeout (default 30s)." },
  { key: "jitter", type: "bool", required: false, doc: "Randomise delays (default true)." },
];

const ARROW_NAMES = (n: string) => typeof parseType(n) !== "string";

export function resolve(program: Ast.Program, options: ResolveOptions = {}): Result<Resolved> {
  return new Resolver(program, options).run();
}

class Resolver {
  diagnostics: Diagnostic[] = [];
  out: Resolved;
  /** Top-level names to the span where each was declared, for duplicates. */
  declared = new Map<string, Span>();
  used = new Set<string>();
  aliasSpans = new Map<string, Ast.Ident>();
  /** Every word of every PRQL block, built on first use by `prqlMentions`. */
  prqlWords: Set<string> | null = null;

  constructor(program: Ast.Program, private options: ResolveOptions) {
    this.out = {
      program,
      file: options.file ?? "<input>",
      modules: new Map(),
      resources: new Map(),
      steps: new Map(),
      handlers: new Map(),
      types: new Map(),
      workflows: [],
      calls: new Map(),
      refs: new Map(),
    };
  }

  run(): Result<Resolved> {
    const items = this.out.program.items;
    for (const item of items) this.declare(item);
    for (const item of items) {
      if (item.kind === "Resource") this.resource(item);
    }
    for (const item of items) {
      if (item.kind === "Step") {
        const call = this.call(item.call);
        this.out.steps.set(item.name.name, { decl: item, call });
      }
    }
    for (const item of items) {
      if (item.kind === "TypeDecl") this.typeExpr(item.type);
      if (item.kind === "Handler") this.body(item.body, "handler");
      if (item.kind === "Workflow") {
        if (item.handler) this.handlerRef(item.handler);
        this.body(item.body, "workflow");
      }
    }
    this.typeCycles();
    this.handlerCycles();
    this.unused();
    return { value: this.out, diagnostics: this.diagnostics };
  }

  report(d: Diagnostic): void {
    this.diagnostics.push(d);
  }

  declare(item: Ast.Item): void {
    let name: Ast.Ident | null = null;
    switch (item.kind) {
      case "Import":
        name = item.alias;
        break;
      case "Resource":
      case "Step":
      case "Handler":
      case "Workflow":
      case "TypeDecl":
        name = item.name;
        break;
    }
    if (!name || !name.name) return;
    const prior = this.declared.get(name.name);
    if (prior) {
      this.report(diag(C.duplicate, `\`${name.name}\` is declared twice`, name.span, {
        labels: [{ span: prior, message: "first declared here" }],
      }));
      return;
    }
    this.declared.set(name.name, name.span);
    switch (item.kind) {
      case "Import": {
        this.aliasSpans.set(item.alias.name, item.alias);
        const found = loadModule(item.path.value, {
          programDir: this.options.programDir ?? ".",
          modulePath: this.options.modulePath,
          heddlePath: this.options.heddlePath,
          read: this.options.read,
        });
        if (found.ok) this.out.modules.set(item.alias.name, found.module);
        else {
          this.report(
            diag(C.unknownModule, `cannot find module \`${item.path.value}\``, item.path.span, {
              hints: [
                found.message,
                ...(found.searched.length ? [`searched: ${found.searched.join(", ")}`] : []),
              ],
            }),
          );
        }
        break;
      }
      case "Handler":
        this.out.handlers.set(item.name.name, item);
        break;
      case "TypeDecl":
        this.out.types.set(item.name.name, item);
        break;
      case "Workflow":
        this.out.workflows.push(item);
        break;
    }
  }

  /** The module behind `alias.member`, reporting an unknown alias; null if unknown. */
  moduleOf(q: Ast.QualifiedName): ModuleContract | null {
    const alias = q.module.name;
    this.used.add(alias);
    const m = this.out.modules.get(alias);
    if (m) return m;
    if (!this.aliasSpans.has(alias)) {
      this.report(diag(C.unknownAlias, `no module is imported as \`${alias}\``, q.module.span, {
        hints: didYouMean(alias, this.aliasSpans.keys()),
      }));
    }
    return null;
  }

  resource(item: Ast.ResourceDecl): void {
    const m = this.moduleOf(item.type);
    if (!m) return;
    const member = item.type.member.name;
    const kind = m.resources.get(member);
    if (!kind) {
      if (m.ops.has(member)) {
        this.report(diag(
          C.notAnOperation,
          `\`${item.type.module.name}.${member}\` is an operation, not a resource kind`,
          item.type.span,
        ));
      } else this.unknownMember(item.type, m, [...m.resources.keys()]);
      return;
    }
    this.config(item.config, kind.config, item.type.span, `\`${item.type.module.name}.${member}\``);
    this.out.resources.set(item.name.name, {
      decl: item,
      module: m,
      kind,
      qualifiedKind: `${m.path}.${kind.name}`,
    });
  }

  unknownMember(q: Ast.QualifiedName, m: ModuleContract, candidates: string[]): void {
    this.report(diag(
      C.unknownMember,
      `module \`${m.path}\` has no member \`${q.member.name}\``,
      q.member.span,
      { hints: didYouMean(q.member.name, candidates, `${q.module.name}.`) },
    ));
  }

  call(node: Ast.CallStage): ResolvedCall | null {
    this.suffix(node);
    const m = this.moduleOf(node.target);
    for (const inj of node.injections) this.resourceRef(inj.resource);
    if (!m) return null;
    const member = node.target.member.name;
    const op = m.ops.get(member);
    if (!op) {
      if (m.resources.has(member)) {
        this.report(diag(
          C.notAnOperation,
          `\`${node.target.module.name}.${member}\` is a resource kind, not an operation`,
          node.target.span,
          { hints: [`declare it with \`resource name = ${node.target.module.name}.${member}\``] },
        ));
      } else this.unknownMember(node.target, m, [...m.ops.keys()]);
      return null;
    }
    this.config(
      node.config,
      op.config,
      node.target.span,
      `\`${node.target.module.name}.${member}\``,
    );
    const injections = new Map<string, string>();
    let unknownSlot = false;
    for (const inj of node.injections) {
      const slot = op.slots.find((s) => s.name === inj.slot.name);
      if (!slot) {
        unknownSlot = true;
        this.report(diag(
          C.unknownSlot,
          `\`${node.target.module.name}.${member}\` has no slot \`${inj.slot.name}\``,
          inj.slot.span,
          {
            hints: op.slots.length
              ? didYouMean(inj.slot.name, op.slots.map((s) => s.name))
              : ["this operation takes no injections"],
          },
        ));
        continue;
      }
      if (injections.has(slot.name)) {
        this.report(diag(C.slotTwice, `slot \`${slot.name}\` is filled twice`, inj.span));
        continue;
      }
      injections.set(slot.name, inj.resource.name);
      const res = this.out.resources.get(inj.resource.name);
      if (res && res.qualifiedKind !== slot.resource) {
        this.report(diag(
          C.wrongResourceKind,
          `slot \`${slot.name}\` expects a \`${slot.resource}\`, but \`${inj.resource.name}\` is a \`${res.qualifiedKind}\``,
          inj.resource.span,
          {
            labels: [{
              span: res.decl.type.span,
              message: `\`${inj.resource.name}\` declared here`,
            }],
          },
        ));
      }
    }
    for (const slot of op.slots) {
      // After a misspelt slot, "missing slot" would only repeat the same mistake.
      if (slot.required && !injections.has(slot.name) && !unknownSlot) {
        this.report(diag(
          C.missingSlot,
          `\`${node.target.module.name}.${member}\` needs a resource in slot \`${slot.name}\` (a \`${slot.resource}\`)`,
          node.target.span,
          { hints: [`write \`<${slot.name}=name_of_resource>\``] },
        ));
      }
    }
    const resolved = { node, module: m, op, injections };
    this.out.calls.set(node, resolved);
    return resolved;
  }

  resourceRef(id: Ast.Ident): void {
    this.used.add(id.name);
    if (!this.out.resources.has(id.name) && !this.declared.has(id.name)) {
      this.report(diag(C.undefinedResource, `no resource is named \`${id.name}\``, id.span, {
        hints: didYouMean(id.name, this.out.resources.keys()),
      }));
    }
  }

  handlerRef(id: Ast.Ident): void {
    this.used.add(id.name);
    if (this.out.handlers.has(id.name)) return;
    if (this.declared.has(id.name)) {
      this.report(diag(C.notAHandler, `\`${id.name}\` is not a handler`, id.span, {
        labels: [{ span: this.declared.get(id.name)!, message: "declared here" }],
      }));
      return;
    }
    this.report(diag(C.undefinedHandler, `no handler is named \`${id.name}\``, id.span, {
      hints: didYouMean(id.name, this.out.handlers.keys()),
    }));
  }

  suffix(stage: Ast.StageSuffix): void {
    if (stage.handler) this.handlerRef(stage.handler);
    if (stage.retry) this.config(stage.retry, RETRY_CONFIG, stage.retry.span, "`retry`");
    if (stage.annotation) this.typeExpr(stage.annotation);
  }

  typeExpr(t: Ast.TypeExpr): void {
    switch (t.kind) {
      case "NamedType":
        if (ARROW_NAMES(t.name.name)) return;
        this.used.add(t.name.name);
        if (!this.out.types.has(t.name.name)) {
          this.report(diag(C.undefinedType, `no type is named \`${t.name.name}\``, t.name.span, {
            hints: didYouMean(t.name.name, this.out.types.keys()),
          }));
        }
        return;
      case "RowType":
        for (const f of t.fields) this.typeExpr(f.type);
        return;
      case "ListType":
        this.typeExpr(t.element);
    }
  }

  config(obj: Ast.ObjectLit | null, schema: ConfigField[], at: Span, what: string): void {
    const seen = new Set<string>();
    for (const f of obj?.fields ?? []) {
      const field = schema.find((s) => s.key === f.key.name);
      if (!field) {
        this.report(
          diag(C.unknownConfigKey, `${what} has no config key \`${f.key.name}\``, f.key.span, {
            hints: didYouMean(f.key.name, schema.map((s) => s.key)),
          }),
        );
        continue;
      }
      if (seen.has(f.key.name)) {
        this.report(
          diag(C.configKeyTwice, `config key \`${f.key.name}\` is given twice`, f.key.span),
        );
      }
      seen.add(f.key.name);
      const problem = valueProblem(f.value, field);
      if (problem) {
        this.report(diag(C.configType, `\`${f.key.name}\` ${problem}`, f.value.span));
      }
    }
    for (const s of schema) {
      if (s.required && !seen.has(s.key)) {
        this.report(
          diag(C.missingConfigKey, `${what} needs config key \`${s.key}\``, obj?.span ?? at, {
            hints: [s.doc],
          }),
        );
      }
    }
  }

  body(statements: Ast.Statement[], context: "workflow" | "handler"): void {
    const streams = new Map<string, Ast.Statement>();
    const laterBindings = new Map<string, Ast.Statement>();
    for (const st of statements) if (st.binding) laterBindings.set(st.binding.name, st);
    const read = new Set<string>();
    statements.forEach((st, si) => {
      const stages = st.pipeline.stages;
      stages.forEach((stage, i) => {
        const first = i === 0;
        const last = i === stages.length - 1;
        switch (stage.kind) {
          case "Wildcard":
            this.suffix(stage);
            if (context !== "handler" || !first || si !== 0) {
              this.report(diag(
                C.misplacedWildcard,
                "`*` may only start the first pipeline of a handler",
                stage.span,
              ));
            }
            break;
          case "Call": {
            const c = this.call(stage);
            if (c) this.placement(c.op, stage, first, last, st.binding !== null);
            break;
          }
          case "Ref":
            this.suffix(stage);
            this.ref(stage, streams, laterBindings, read, first, last, st.binding !== null);
            break;
          case "Prql":
            this.suffix(stage);
            if (first) {
              this.report(diag(
                C.misplacedStage,
                "a PRQL block needs an input: pipe a stream or a source into it",
                stage.span,
              ));
            }
            break;
          case "ErrorStage":
            break;
        }
      });
      if (context === "handler" && si === 0 && stages[0] && stages[0].kind !== "Wildcard") {
        this.report(
          diag(C.misplacedWildcard, "a handler's pipeline must start with `*`", stages[0].span),
        );
      }
      if (st.binding) {
        const prior = streams.get(st.binding.name);
        if (prior) {
          this.report(
            diag(
              C.streamBoundTwice,
              `stream \`${st.binding.name}\` is bound twice`,
              st.binding.span,
              {
                labels: [{ span: prior.binding!.span, message: "first bound here" }],
              },
            ),
          );
        } else if (this.out.steps.has(st.binding.name) || this.out.resources.has(st.binding.name)) {
          this.report(
            diag(
              C.duplicate,
              `stream \`${st.binding.name}\` shadows a declaration`,
              st.binding.span,
              {
                labels: [{ span: this.declared.get(st.binding.name)!, message: "declared here" }],
              },
            ),
          );
        } else streams.set(st.binding.name, st);
      }
    });
    for (const [name, st] of streams) {
      if (!read.has(name)) {
        this.report(diag(C.unusedStream, `stream \`${name}\` is never used`, st.binding!.span, {
          severity: "warning",
          hints: ["read it at the start of a statement, or remove `> " + name + "`"],
        }));
      }
    }
  }

  ref(
    stage: Ast.RefStage,
    streams: Map<string, Ast.Statement>,
    later: Map<string, Ast.Statement>,
    read: Set<string>,
    first: boolean,
    last: boolean,
    bound: boolean,
  ): void {
    const name = stage.name.name;
    const stream = streams.get(name);
    if (stream) {
      read.add(name);
      this.out.refs.set(stage, { kind: "stream", name, bound: stream });
      if (!first) {
        this.report(diag(
          C.misplacedStage,
          `stream \`${name}\` can only be read at the start of a pipeline`,
          stage.span,
        ));
      }
      return;
    }
    const step = this.out.steps.get(name);
    if (step) {
      this.used.add(name);
      this.out.refs.set(stage, { kind: "step", step });
      if (step.call) this.placement(step.call.op, stage, first, last, bound);
      return;
    }
    const laterStream = later.get(name);
    if (laterStream) {
      read.add(name);
      this.report(
        diag(
          C.streamBeforeBound,
          `stream \`${name}\` is used before it is bound`,
          stage.name.span,
          {
            labels: [{ span: laterStream.binding!.span, message: "bound here, later" }],
          },
        ),
      );
      return;
    }
    this.report(diag(C.undefinedStage, `no step or stream is named \`${name}\``, stage.name.span, {
      hints: didYouMean(name, [...this.out.steps.keys(), ...streams.keys()]),
    }));
  }

  placement(op: OpContract, stage: Ast.Stage, first: boolean, last: boolean, bound: boolean): void {
    if (op.role === "source" && !first) {
      this.report(
        diag(C.misplacedStage, `source \`${op.name}\` must start a pipeline`, stage.span),
      );
    }
    // A SQL query may start a pipeline when it has no `@params`: the type checker, which
    // reads the query text, reports one that does.
    const querySource = op.role === "lookup" && op.output?.kind === "sql";
    if (op.role !== "source" && first && !querySource) {
      this.report(diag(
        C.misplacedStage,
        `\`${op.name}\` needs an input: start the pipeline with a source or a stream`,
        stage.span,
      ));
    }
    if (op.role === "sink" && (!last || bound)) {
      this.report(
        diag(
          C.misplacedStage,
          `sink \`${op.name}\` produces no rows; nothing may follow it`,
          stage.span,
        ),
      );
    }
  }

  /**
   * Reports type declarations that refer to themselves and those whose expansion nests deeper
   * than the parser's limit through other declarations. Chains of declarations can be as long
   * as the file, so the walk keeps its own stack instead of recursing.
   */
  typeCycles(): void {
    /** The nesting depth of each declaration's expansion, once all it names are done. */
    const depth = new Map<string, number>();
    const visiting = new Set<string>();
    const names = (t: Ast.TypeExpr, acc: Ast.Ident[]): Ast.Ident[] => {
      // One declaration's own text nests at most MAX_NESTING deep (the parser's limit).
      if (t.kind === "NamedType") acc.push(t.name);
      else if (t.kind === "RowType") t.fields.forEach((f) => names(f.type, acc));
      else names(t.element, acc);
      return acc;
    };
    const expanded = (t: Ast.TypeExpr): number =>
      t.kind === "NamedType"
        ? depth.get(t.name.name) ?? 0
        : t.kind === "RowType"
        ? 1 + t.fields.reduce((m, f) => Math.max(m, expanded(f.type)), 0)
        : 1 + expanded(t.element);
    for (const root of this.out.types.keys()) {
      if (depth.has(root)) continue;
      const stack: Array<{ name: string; refs: Ast.Ident[] }> = [];
      const enter = (name: string) => {
        visiting.add(name);
        stack.push({ name, refs: names(this.out.types.get(name)!.type, []) });
      };
      enter(root);
      while (stack.length) {
        const top = stack[stack.length - 1];
        const id = top.refs.shift();
        if (id) {
          if (!this.out.types.has(id.name) || depth.has(id.name)) continue;
          if (visiting.has(id.name)) {
            this.report(diag(C.cycle, `type \`${id.name}\` refers to itself`, id.span, {
              labels: [{ span: this.out.types.get(id.name)!.name.span, message: "declared here" }],
            }));
          } else enter(id.name);
          continue;
        }
        stack.pop();
        visiting.delete(top.name);
        const decl = this.out.types.get(top.name)!;
        const d = expanded(decl.type);
        depth.set(top.name, d);
        // Reported once, where the limit is crossed, not again on every name built on it.
        const inner = names(decl.type, []).reduce((m, n) => Math.max(m, depth.get(n.name) ?? 0), 0);
        if (d > MAX_NESTING && inner <= MAX_NESTING) {
          this.report(diag(
            C.typeTooDeep,
            `type \`${top.name}\` nests ${d} levels deep through other types; the limit is ${MAX_NESTING}`,
            decl.name.span,
            { hints: ["flatten the type: one declaration may nest at most as deep on its own"] },
          ));
        }
      }
    }
  }

  handlerCycles(): void {
    for (const [name, h] of this.out.handlers) {
      const seen = new Set<string>([name]);
      let frontier = [h];
      while (frontier.length) {
        const next: Ast.HandlerDecl[] = [];
        for (const cur of frontier) {
          for (const st of cur.body) {
            for (const stage of st.pipeline.stages) {
              const ref = stage.handler;
              if (!ref) continue;
              if (ref.name === name) {
                this.report(
                  diag(C.cycle, `handler \`${name}\` catches its own failures`, ref.span, {
                    hints: ["a failing handler would feed itself forever; use another handler"],
                  }),
                );
                return;
              }
              const target = this.out.handlers.get(ref.name);
              if (target && !seen.has(ref.name)) {
                seen.add(ref.name);
                next.push(target);
              }
            }
          }
        }
        frontier = next;
      }
    }
  }

  unused(): void {
    for (const item of this.out.program.items) {
      let id: Ast.Ident | null = null;
      let what = "";
      if (item.kind === "Import") [id, what] = [item.alias, "import"];
      if (item.kind === "Resource") [id, what] = [item.name, "resource"];
      if (item.kind === "Step") [id, what] = [item.name, "step"];
      if (item.kind === "Handler") [id, what] = [item.name, "handler"];
      if (!id || this.used.has(id.name) || this.prqlMentions(id.name)) continue;
      this.report(diag(C.unusedDeclaration, `${what} \`${id.name}\` is never used`, id.span, {
        severity: "warning",
      }));
    }
  }

  /**
   * Steps may be used only inside PRQL text (`join step_name`), which resolve cannot parse:
   * the words of every block are collected once, so each name is a set lookup, not a scan.
   */
  prqlMentions(name: string): boolean {
    if (!this.prqlWords) {
      this.prqlWords = new Set();
      for (const item of this.out.program.items) {
        if (item.kind !== "Workflow" && item.kind !== "Handler") continue;
        for (const st of item.body) {
          for (const s of st.pipeline.stages) {
            if (s.kind === "Prql") {
              for (const [w] of s.text.matchAll(/\w+/g)) this.prqlWords.add(w);
            }
          }
        }
      }
    }
    return this.prqlWords.has(name);
  }
}

/** Why a config value does not fit its declared type, or null when it does. */
function valueProblem(v: Ast.Value, field: ConfigField): string | null {
  if (v.kind === "Env" || v.kind === "ErrorValue") return null;
  if (v.kind === "Null") return field.required ? "is required and cannot be null" : null;
  const t = field.type;
  const found = v.kind === "Number" ? (Number.isInteger(v.value) ? "an integer" : "a number") : ({
    String: "a string",
    Bool: "a boolean",
    Duration: "a duration",
    List: "a list",
    Object: "an object",
  } as Record<string, string>)[v.kind];
  if (typeof t === "object") {
    if (v.kind !== "String") {
      return `must be one of ${t.enum.map((e) => `"${e}"`).join(", ")}, found ${found}`;
    }
    return t.enum.includes(v.value)
      ? null
      : `must be one of ${t.enum.map((e) => `"${e}"`).join(", ")}, found "${v.value}"`;
  }
  const ok = (t === "string" && v.kind === "String") ||
    (t === "int" && v.kind === "Number" && Number.isInteger(v.value)) ||
    (t === "number" && v.kind === "Number") ||
    (t === "bool" && v.kind === "Bool") ||
    (t === "duration" && v.kind === "Duration") ||
    (t === "list" && v.kind === "List") ||
    (t === "object" && v.kind === "Object");
  const expected = {
    string: "a string",
    int: "an integer",
    number: "a number",
    bool: "a boolean",
    duration: "a duration such as `30s`",
    list: "a list",
    object: "an object",
  }[t];
  return ok ? null : `must be ${expected}, found ${found}`;
}
