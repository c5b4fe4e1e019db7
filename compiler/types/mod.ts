/**
 * Type inference and contract checking: gives every stream of a resolved program a row
 * type, pinning open rows by contracts (module contracts, plugin manifests, annotations,
 * `type` declarations, the schema snapshot for SQL steps) and reporting conflicts with both
 * places named. It reads no database and runs no plugin; SQL column types come only from
 * the snapshot (see `introspect` for refreshing it).
 */
import type { Diagnostic, Result, Span } from "../diagnostics/_types.ts";
import type * as Ast from "../syntax/mod.ts";
import { type ArrowField, parseType, primitive, type RowContract } from "../modules/mod.ts";
import { closest, diag, RESOLVE_CODES, type Resolved, type ResolvedCall } from "../resolve/mod.ts";
import { SQL_CODES, TYPE_CODES } from "./_codes.ts";
import { known, Row, type RowSchema, schemaOf, type Site, unify } from "./_row.ts";
import { type PrqlJoin, typePrql } from "./_prql.ts";
import { lowerAll } from "./_prql_lower.ts";
import {
  lookupSnapshot,
  type SchemaSnapshot,
  type SnapshotEntry,
  sqlShape,
  typedColumns,
} from "./_sql.ts";

export { SQL_CODES, TYPE_CODES } from "./_codes.ts";
export { prqlc, PrqlCrash } from "./_prqlc.ts";
export { addLowered, lowerDeclared, type Lowered, takeLowered } from "./_prql_lower.ts";
export type { RowSchema, SchemaField } from "./_row.ts";
export {
  parseSnapshot,
  queryHash,
  type SchemaSnapshot,
  type SnapshotColumn,
  type SnapshotEntry,
  sqlShape,
} from "./_sql.ts";
export {
  type Catalog,
  type CatalogAnswer,
  introspect,
  type IntrospectOptions,
} from "./_introspect.ts";

/** The error fields every handler's `*` rows carry besides the failed row's own fields. */
export const ERROR_FIELDS: ArrowField[] = [
  { name: "_error_step", type: primitive("utf8"), nullable: false },
  { name: "_error_message", type: primitive("utf8"), nullable: false },
  { name: "_error_attempt", type: primitive("int32"), nullable: false },
];

export interface InferOptions {
  /** The parsed schema snapshot, or null when the program has none. */
  snapshot?: SchemaSnapshot | null;
  /** The caller's time limit: past `at` (a `Date.now()`) no further PRQL block is typed. */
  deadline?: Deadline;
}

export interface Deadline {
  at: number;
  /** The limit as the caller gave it, for the message. */
  ms: number;
}

/** HE0209 once `deadline` has passed, else null. */
export function pastDeadline(deadline: Deadline | undefined): Diagnostic | null {
  if (deadline === undefined || Date.now() <= deadline.at) return null;
  return diag(
    TYPE_CODES.deadline,
    `checking took longer than the limit of ${deadline.ms} ms and stopped`,
    { start: 0, end: 0 },
    { hints: ["split the program into several files, or raise the limit"] },
  );
}

/** What inference learnt about one stage. */
export interface StageTypes {
  input: RowSchema | null;
  output: RowSchema | null;
}

/** A query step: its SQL, parameters and (if the snapshot has it) its typed columns. */
export interface SqlStep {
  step: string;
  resource: string;
  dialect: "postgres" | "clickhouse";
  query: string;
  params: string[];
  columns: string[] | null;
  snapshot: SnapshotEntry | null;
}

export interface PrqlBlock {
  joins: Array<{ step: string; side: string; keys: Array<[string, string]> }>;
  inputColumns: string[];
}

export interface Typed {
  resolved: Resolved;
  stages: Map<Ast.Stage, StageTypes>;
  prql: Map<Ast.PrqlStage, PrqlBlock>;
  sql: Map<string, SqlStep>;
}

export function infer(resolved: Resolved, options: InferOptions = {}): Result<Typed> {
  return new Inferrer(resolved, options.snapshot ?? null, options.deadline).run();
}

class Inferrer {
  diagnostics: Diagnostic[] = [];
  rows = new Map<Ast.Stage, { input: Row | null; output: Row | null }>();
  prql = new Map<Ast.PrqlStage, PrqlBlock>();
  sql = new Map<string, SqlStep>();
  sqlRows = new Map<string, Row>();
  /** Stages that flow into each handler, to type its `*`. */
  /** Every column a PRQL block read from `input`, with the row it came from. */
  reads: Array<{ origin: Row; name: string; at: Span; grows: boolean }> = [];
  /** Set once the deadline has passed: no further PRQL block is typed. */
  late = false;
  constructor(
    private r: Resolved,
    private snapshot: SchemaSnapshot | null,
    private deadline: Deadline | undefined,
  ) {}

  run(): Result<Typed> {
    // Every PRQL block is lowered up front, many per prql-js call; typing then hits the cache.
    const bodies = [...this.r.workflows, ...this.r.handlers.values()].map((d) => d.body);
    lowerAll(
      bodies.flatMap((body) =>
        body.flatMap((st) => st.pipeline.stages.flatMap((s) => s.kind === "Prql" ? [s.text] : []))
      ),
    );
    for (const [name, step] of this.r.steps) {
      if (step.call?.op.output?.kind === "sql") this.sqlStep(name, step.call);
    }
    for (const wf of this.r.workflows) this.body(wf.body, null);
    for (const h of this.r.handlers.values()) {
      const star = Row.fromFields(
        ERROR_FIELDS,
        { span: h.name.span, note: "the failed rows" },
        true,
      );
      this.body(h.body, star);
    }
    this.misspellings();
    const stages = new Map<Ast.Stage, StageTypes>();
    for (const [stage, { input, output }] of this.rows) {
      stages.set(stage, {
        input: input ? schemaOf(input) : null,
        output: output ? schemaOf(output) : null,
      });
    }
    return {
      value: { resolved: this.r, stages, prql: this.prql, sql: this.sql },
      diagnostics: this.diagnostics,
    };
  }

  sqlStep(name: string, call: ResolvedCall): void {
    const key = call.op.output?.kind === "sql" ? call.op.output.key : "query";
    const lit = call.node.config?.fields.find((f) => f.key.name === key)?.value;
    if (!lit || lit.kind !== "String") return;
    const shape = sqlShape(lit.value);
    const resource = call.injections.get("connection") ?? "";
    const entry = lookupSnapshot(this.snapshot, resource, lit.value);
    const site: Site = { span: lit.span, note: `the columns of \`${name}\`` };
    if (shape.problem) {
      this.diagnostics.push(diag(SQL_CODES.selectList, shape.problem, lit.span));
    }
    let row: Row;
    if (entry) {
      const cols = typedColumns(entry.columns);
      row = Row.fromFields(cols, site, false);
      const names = cols.map((c) => c.name).join(", ");
      if (shape.columns && shape.columns.join(", ") !== names) {
        this.diagnostics.push(diag(
          SQL_CODES.snapshotStale,
          `the snapshot lists columns (${names}) but the query selects (${
            shape.columns.join(", ")
          })`,
          lit.span,
          { hints: ["run `heddle check --introspect` to refresh the snapshot"] },
        ));
      }
    } else {
      // Untyped names from the SELECT list must not pin a type: give them fresh variables.
      row = new Row(site, true);
      for (const c of shape.columns ?? []) row.get(c, site);
      if (shape.columns) row.close(site);
      this.diagnostics.push(diag(
        SQL_CODES.noSnapshot,
        `no schema snapshot for the query of \`${name}\`: its column types stay open`,
        lit.span,
        { severity: "warning", hints: ["run `heddle check --introspect` to record them"] },
      ));
    }
    this.sqlRows.set(name, row);
    this.sql.set(name, {
      step: name,
      resource,
      dialect: call.op.output?.kind === "sql" ? call.op.output.dialect : "postgres",
      query: lit.value,
      params: shape.params.map((p) => p.name),
      columns: shape.columns,
      snapshot: entry,
    });
  }

  /** Checks that the `@params` of query step `name` are fields of `row`. */
  params(name: string, row: Row, at: Span, what: string): void {
    const step = this.sql.get(name);
    const call = this.r.steps.get(name)?.call;
    const lit = call?.node.config?.fields.find((f) => f.key.name === "query")?.value;
    if (!step || !lit) return;
    for (const p of sqlShape(step.query).params) {
      const span = {
        start: lit.span.start + 1 + p.offset,
        end: lit.span.start + 2 + p.offset + p.name.length,
      };
      const v = row.get(p.name, { span, note: `parameter \`@${p.name}\`` });
      if (!v) {
        this.diagnostics.push(diag(
          SQL_CODES.paramMissing,
          `parameter \`@${p.name}\` of \`${name}\` is not a field of ${what}`,
          at,
          {
            labels: [{ span, message: "parameter declared here" }],
            hints: [`available: ${row.known().map((n) => `\`${n}\``).join(", ") || "none"}`],
          },
        ));
        continue;
      }
      const declared = step.snapshot?.params.find((q) => q.name === p.name);
      const t = declared && parseType(declared.type);
      if (t && typeof t !== "string") {
        const c = unify(known(t, { span, note: "the database expects this type" }), v);
        if (c) {
          this.diagnostics.push(diag(
            SQL_CODES.paramType,
            `parameter \`@${p.name}\`: ${c.message}`,
            at,
            {
              labels: [{ span: c.expected.span, message: "expected here" }, {
                span: c.found.span,
                message: "found there",
              }],
            },
          ));
        }
      }
    }
  }

  conflict(c: ReturnType<typeof unify>, at: Span, context: string): void {
    if (!c) return;
    this.diagnostics.push(diag(TYPE_CODES.typeConflict, `${context}: ${c.message}`, at, {
      labels: [
        { span: c.expected.span, message: `expected here (${c.expected.note || "declared"})` },
        { span: c.found.span, message: `found there (${c.found.note || "inferred"})` },
      ],
    }));
  }

  /** Types each statement; `star` is the handler's failed-rows row. */
  body(statements: Ast.Statement[], star: Row | null): void {
    const streams = new Map<string, Row>();
    for (const st of statements) {
      let row: Row | null = null;
      for (const [i, stage] of st.pipeline.stages.entries()) {
        const input = row;
        row = this.stage(stage, input, streams, star, i === 0);
        this.rows.set(stage, { input, output: row });
        if (stage.annotation && row) row = this.annotate(stage.annotation, row);
      }
      if (st.binding && row) streams.set(st.binding.name, row);
    }
  }

  stage(
    stage: Ast.Stage,
    input: Row | null,
    streams: Map<string, Row>,
    star: Row | null,
    first: boolean,
  ): Row | null {
    switch (stage.kind) {
      case "Wildcard":
        return star;
      case "Ref": {
        const target = this.r.refs.get(stage);
        if (!target) return null;
        if (target.kind === "stream") return streams.get(target.name) ?? null;
        if (!target.step.call) return null;
        const name = target.step.decl.name.name;
        const row = this.call(target.step.call, input, stage.span, name, first);
        // An annotation on the step's declaration holds wherever the step runs.
        const declared = target.step.decl.call.annotation;
        return declared && row ? this.annotate(declared, row) : row;
      }
      case "Call": {
        const call = this.r.calls.get(stage);
        return call ? this.call(call, input, stage.span, null, first) : null;
      }
      case "Prql":
        return input ? this.prqlStage(stage, input) : null;
      case "ErrorStage":
        return null;
    }
  }

  call(
    call: ResolvedCall,
    input: Row | null,
    at: Span,
    stepName: string | null,
    first: boolean,
  ): Row | null {
    const label = `\`${call.node.target.module.name}.${call.op.name}\``;
    const site: Site = { span: call.node.span, note: `${label}'s contract` };
    if (first && call.op.role === "lookup") this.querySource(call, at, label);
    if (input && call.op.input) this.accept(call.op.input, input, at, site, label);
    if (stepName && this.sql.has(stepName) && input) {
      this.params(stepName, input, at, "the rows flowing in");
    }
    return call.op.output ? this.produce(call.op.output, input, site, stepName) : null;
  }

  /** A query that starts a pipeline reads no rows, so it can bind no `@params`. */
  querySource(call: ResolvedCall, at: Span, label: string): void {
    const key = call.op.output?.kind === "sql" ? call.op.output.key : "query";
    const lit = call.node.config?.fields.find((f) => f.key.name === key)?.value;
    if (!lit || lit.kind !== "String") return;
    const params = [...new Set(sqlShape(lit.value).params.map((p) => `\`@${p.name}\``))];
    if (params.length === 0) return;
    this.diagnostics.push(diag(
      RESOLVE_CODES.misplacedStage,
      `${label} binds ${params.join(", ")} to the rows flowing in, so it cannot start a pipeline`,
      at,
      {
        labels: [{ span: lit.span, message: "the query" }],
        hints: ["pipe rows into it, join it in a PRQL block, or drop the `@` parameters"],
      },
    ));
  }

  accept(contract: RowContract, input: Row, at: Span, site: Site, label: string): void {
    if (contract.kind !== "fields") return;
    for (const f of contract.fields) {
      const v = input.get(f.name, { span: at, note: `needed by ${label}` });
      if (!v) {
        this.diagnostics.push(diag(
          TYPE_CODES.missingField,
          `${label} needs field \`${f.name}\`, which the rows flowing in do not have`,
          at,
          {
            labels: [{ span: input.site.span, message: "the rows are defined here" }],
            hints: [`available: ${input.known().map((n) => `\`${n}\``).join(", ") || "none"}`],
          },
        ));
        continue;
      }
      this.conflict(unify(known(f.type, site, f.nullable), v), at, `field \`${f.name}\``);
    }
  }

  produce(contract: RowContract, input: Row | null, site: Site, stepName: string | null): Row {
    switch (contract.kind) {
      case "fields":
        return Row.fromFields(contract.fields, site, contract.open);
      case "input-plus":
        return input
          ? Row.extending(input, contract.fields, site)
          : Row.fromFields(contract.fields, site, true);
      case "open":
        return new Row(site, true);
      case "sql":
        return (stepName && this.sqlRows.get(stepName)) || new Row(site, true);
    }
  }

  prqlStage(stage: Ast.PrqlStage, input: Row): Row | null {
    // prql-js is the slow part of a check, so the deadline is checked before each block.
    if (this.late) return null;
    const late = pastDeadline(this.deadline);
    if (late) {
      this.diagnostics.push(late);
      this.late = true;
      return null;
    }
    const t = typePrql(stage.text, stage.textSpan, input, (name) => {
      const step = this.r.steps.get(name);
      if (!step?.call) return null;
      return this.sqlRows.get(name) ??
        (step.call.op.output
          ? this.produce(step.call.op.output, null, { span: step.decl.name.span, note: "" }, name)
          : null);
    });
    const abs = (a: { start: number; end: number }): Span => ({
      start: stage.textSpan.start + a.start,
      end: stage.textSpan.start + a.end,
    });
    for (const p of t.problems) {
      const code = {
        prql: TYPE_CODES.prql,
        crash: TYPE_CODES.prqlCrash,
        type: TYPE_CODES.typeConflict,
        "missing-column": TYPE_CODES.missingField,
        "unknown-table": TYPE_CODES.unknownTable,
        "join-key": TYPE_CODES.joinKey,
      }[p.kind];
      const labels = p.other
        ? [{ span: abs(p.at), message: "expected here" }, {
          span: p.other.span,
          message: p.other.note,
        }]
        : [];
      this.diagnostics.push(diag(code, p.message, abs(p.at), { labels, hints: p.hints }));
    }
    for (const j of t.joins) this.join(stage, j);
    const origin = input.origin();
    for (const read of t.reads) this.reads.push({ origin, ...read });
    this.prql.set(stage, {
      joins: t.joins.map(({ step, side, keys }) => ({ step, side, keys })),
      inputColumns: t.inputColumns,
    });
    return t.output;
  }

  /**
   * An open row grows a field for any name a PRQL block reads, so a misspelt column is not an
   * error there. Once the program is typed, a name that only one read brought in, next to a
   * known name within typo distance that a contract pinned or that several reads use, is
   * most likely a misspelling of it: a warning at the read.
   */
  misspellings(): void {
    const uses = new Map<Row, Map<string, number>>();
    for (const { origin, name } of this.reads) {
      const m = uses.get(origin) ?? new Map<string, number>();
      m.set(name, (m.get(name) ?? 0) + 1);
      uses.set(origin, m);
    }
    const pinned = (row: Row, name: string) => (row.fields.get(name)?.root().type ?? null) !== null;
    const knownOf = new Map<Row, string[]>();
    for (const { origin, name, at, grows } of this.reads) {
      const count = uses.get(origin)!;
      if (!grows || count.get(name)! > 1 || pinned(origin, name)) continue;
      if (!knownOf.has(origin)) knownOf.set(origin, origin.known());
      const near = closest(name, knownOf.get(origin)!.filter((n) => n !== name));
      if (!near || !(pinned(origin, near) || (count.get(near) ?? 0) > 1)) continue;
      this.diagnostics.push(diag(
        TYPE_CODES.misspelt,
        `column \`${name}\` is read only here, and the rows have \`${near}\``,
        at,
        {
          severity: "warning",
          labels: [{ span: origin.site.span, message: "the rows come from here" }],
          hints: [`did you mean \`${near}\`?`],
        },
      ));
    }
  }

  join(stage: Ast.PrqlStage, j: PrqlJoin): void {
    const step = this.r.steps.get(j.step);
    const at = (() => {
      const i = stage.text.indexOf(j.step);
      return {
        start: stage.textSpan.start + Math.max(0, i),
        end: stage.textSpan.start + Math.max(0, i) + j.step.length,
      };
    })();
    if (!step?.call) return;
    if (step.call.op.role !== "lookup") {
      this.diagnostics.push(diag(
        TYPE_CODES.notJoinable,
        `\`${j.step}\` is a ${step.call.op.role}, not a lookup: it cannot be joined`,
        at,
        { labels: [{ span: step.decl.name.span, message: "declared here" }] },
      ));
      return;
    }
    this.params(j.step, j.left, at, "the left input of the join");
  }

  annotate(t: Ast.TypeExpr, row: Row): Row {
    const target = this.rowOfType(t);
    if (!target) return row;
    const site: Site = { span: t.span, note: "the annotation" };
    for (const name of target.known()) {
      const v = row.get(name, site);
      if (!v) {
        this.diagnostics.push(
          diag(TYPE_CODES.annotation, `the rows have no field \`${name}\``, t.span, {
            labels: [{ span: row.site.span, message: "the rows are defined here" }],
          }),
        );
        continue;
      }
      this.conflict(unify(target.fields.get(name)!, v), t.span, `field \`${name}\``);
    }
    if (!target.open) {
      for (const name of row.known()) {
        if (!target.fields.has(name)) {
          this.diagnostics.push(
            diag(
              TYPE_CODES.annotation,
              `field \`${name}\` is not in the annotated row type`,
              t.span,
              {
                labels: [{ span: row.site.span, message: "the rows are defined here" }],
                hints: ["add it to the type, or end the row type with `..` to leave it open"],
              },
            ),
          );
        }
      }
      // Pinning: past an annotation the row is exactly what it says.
      for (const name of target.known()) if (!row.fields.has(name)) row.get(name, site);
      return target;
    }
    return row;
  }

  rowOfType(type: Ast.TypeExpr): Row | null {
    const t = this.unalias(type);
    if (t.kind !== "RowType") return null;
    const row = new Row({ span: t.span, note: "the annotation" }, t.open);
    for (const f of t.fields) {
      const ft = this.fieldType(f.type);
      if (ft) {
        row.add(
          f.name.name,
          known(ft.type, { span: f.span, note: "declared here" }, ft.nullable),
        );
      }
    }
    return row;
  }

  /**
   * Follows `type A = B` declarations to the first type that is not such a name. A loop, not
   * recursion: a chain of declarations is as long as the file (resolve reported any cycle).
   */
  unalias(type: Ast.TypeExpr): Ast.TypeExpr {
    let t = type;
    const seen = new Set<string>();
    while (t.kind === "NamedType" && typeof parseType(t.name.name) === "string") {
      const decl = this.r.types.get(t.name.name);
      if (!decl || seen.has(t.name.name)) break;
      seen.add(t.name.name);
      t = decl.type;
    }
    return t;
  }

  /** A field's Arrow type; lists nest at most MAX_NESTING deep (resolve checked that). */
  fieldType(type: Ast.TypeExpr): { type: ArrowField["type"]; nullable: boolean } | null {
    const t = this.unalias(type);
    if (t.kind === "NamedType") {
      const p = parseType(t.name.name);
      return typeof p === "string" ? null : { type: p, nullable: t.nullable };
    }
    if (t.kind === "ListType") {
      const el = this.fieldType(t.element);
      return el
        ? {
          type: { kind: "list", element: { name: "item", type: el.type, nullable: el.nullable } },
          nullable: t.nullable,
        }
        : null;
    }
    return null;
  }
}
