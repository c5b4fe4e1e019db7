/**
 * The syntax tree of a `.he` program: the output of parsing and the input of every later
 * phase. It records what was written and where, never what it means: names are not resolved
 * and no types are known here. Every node carries the span of the text it came from.
 *
 * The parser never fails: where text could not be parsed it leaves an `Error*` node so that
 * the rest of the file still has a tree (and the LSP still has something to work with).
 */
import type { Span } from "../diagnostics/_types.ts";

export type { Span };

interface Node {
  span: Span;
}

/** A name as written: `pg_db`, `FraudDetection`, `user_id`. */
export interface Ident extends Node {
  kind: "Ident";
  name: string;
}

/** `module.member`, as in `pg.query` or `kafka.connection`. */
export interface QualifiedName extends Node {
  kind: "QualifiedName";
  module: Ident;
  member: Ident;
}

/** A `//` comment, kept so that the formatter can put it back. */
export interface Comment extends Node {
  kind: "Comment";
  /** The text after `//`, without the line end. */
  text: string;
}

export interface Program extends Node {
  kind: "Program";
  items: Item[];
  comments: Comment[];
}

export type Item =
  | ImportDecl
  | ResourceDecl
  | StepDecl
  | HandlerDecl
  | WorkflowDecl
  | TypeDecl
  | ErrorItem;

/** `import "fhub/postgresql" pg` */
export interface ImportDecl extends Node {
  kind: "Import";
  path: StringLit;
  alias: Ident;
}

/** `resource pg_db = pg.connection { host: "pg.internal" }` */
export interface ResourceDecl extends Node {
  kind: "Resource";
  name: Ident;
  type: QualifiedName;
  config: ObjectLit | null;
}

/** `step fetch_user_data = <connection=pg_db> pg.query { query: "..." }` */
export interface StepDecl extends Node {
  kind: "Step";
  name: Ident;
  call: CallStage;
}

/** `handler alert_on_fail { * | kafka.produce <broker=kf_broker> { topic: "dlq" } }` */
export interface HandlerDecl extends Node {
  kind: "Handler";
  name: Ident;
  body: Statement[];
}

/** `workflow FraudDetection ? alert_on_fail { ... }` */
export interface WorkflowDecl extends Node {
  kind: "Workflow";
  name: Ident;
  /** The workflow-level handler after `?`. */
  handler: Ident | null;
  body: Statement[];
}

/** `type Transaction = { user_id: int64, amount: float64 }` */
export interface TypeDecl extends Node {
  kind: "TypeDecl";
  name: Ident;
  type: TypeExpr;
}

/** Text at declaration level that could not be parsed; a diagnostic says why. */
export interface ErrorItem extends Node {
  kind: "ErrorItem";
}

/** A pipeline, optionally bound to a stream name: `a | b | c > name`. */
export interface Statement extends Node {
  kind: "Statement";
  pipeline: Pipeline;
  binding: Ident | null;
}

export interface Pipeline extends Node {
  kind: "Pipeline";
  stages: Stage[];
}

export type Stage = CallStage | RefStage | PrqlStage | WildcardStage | ErrorStage;

/**
 * What may follow any stage: `? handler`, `retry { ... }` and a row-type annotation
 * `: Type`. Each is null when absent.
 */
export interface StageSuffix {
  handler: Ident | null;
  retry: ObjectLit | null;
  annotation: TypeExpr | null;
}

/**
 * A call of a module operation: `pg.query { ... }`, `kafka.produce <broker=kf> { ... }`.
 * Injections may be written before the name (in step declarations) or after it (inline).
 */
export interface CallStage extends Node, StageSuffix {
  kind: "Call";
  target: QualifiedName;
  injections: Injection[];
  config: ObjectLit | null;
}

/** A bare name in a pipeline: a declared step (`generate_audit`) or a stream (`tx_stream`). */
export interface RefStage extends Node, StageSuffix {
  kind: "Ref";
  name: Ident;
}

/**
 * An inline PRQL block `( from input ... )`, captured whole. `text` is what lies between
 * the outer parentheses and `textSpan` where it lies, so PRQL's own errors can be placed in
 * the `.he` file.
 */
export interface PrqlStage extends Node, StageSuffix {
  kind: "Prql";
  text: string;
  textSpan: Span;
}

/** `*`: in a handler, the failed rows with their error details. */
export interface WildcardStage extends Node, StageSuffix {
  kind: "Wildcard";
}

/** A stage that could not be parsed; recovery resumes at the next `|` or line. */
export interface ErrorStage extends Node, StageSuffix {
  kind: "ErrorStage";
}

/** `<connection=pg_db>`: a resource injected into an operation's slot. */
export interface Injection extends Node {
  kind: "Injection";
  slot: Ident;
  resource: Ident;
}

export type Value =
  | StringLit
  | NumberLit
  | BoolLit
  | NullLit
  | DurationLit
  | ListLit
  | ObjectLit
  | EnvRef
  | ErrorValue;

export interface StringLit extends Node {
  kind: "String";
  /** The decoded value, escapes applied. */
  value: string;
}

export interface NumberLit extends Node {
  kind: "Number";
  value: number;
  /** As written, so that `1_000` or `1e6` survive formatting. */
  raw: string;
}

export interface BoolLit extends Node {
  kind: "Bool";
  value: boolean;
}

export interface NullLit extends Node {
  kind: "Null";
}

/** `250ms`, `30s`, `5m`, `1h`. */
export interface DurationLit extends Node {
  kind: "Duration";
  milliseconds: number;
  raw: string;
}

export interface ListLit extends Node {
  kind: "List";
  items: Value[];
}

/** `{ key: value, ... }`: the config of resources and operations, and `retry { ... }`. */
export interface ObjectLit extends Node {
  kind: "Object";
  fields: Field[];
}

export interface Field extends Node {
  kind: "Field";
  key: Ident;
  value: Value;
}

/**
 * `env("NAME")`, `env("NAME", "default")` or `secret("NAME")`: a value read from the
 * environment when the program runs. A secret's value never appears in logs or output.
 */
export interface EnvRef extends Node {
  kind: "Env";
  secret: boolean;
  name: StringLit;
  default: StringLit | null;
}

export interface ErrorValue extends Node {
  kind: "ErrorValue";
}

export type TypeExpr = NamedType | RowType | ListType;

/** `int64`, `utf8?` (nullable), or the name of a `type` declaration. */
export interface NamedType extends Node {
  kind: "NamedType";
  name: Ident;
  nullable: boolean;
}

/** `{ user_id: int64, amount: float64, .. }`; a trailing `..` leaves the row open. */
export interface RowType extends Node {
  kind: "RowType";
  fields: RowTypeField[];
  open: boolean;
}

export interface RowTypeField extends Node {
  kind: "RowTypeField";
  name: Ident;
  type: TypeExpr;
}

/** `[float64]`: an Arrow list. */
export interface ListType extends Node {
  kind: "ListType";
  element: TypeExpr;
  nullable: boolean;
}
