/**
 * The shape of prql-js's RQ (relational query) JSON, as far as the engine reads it. RQ is
 * PRQL's last representation before SQL: names are resolved to column ids (`CId`) and every
 * operator is a `std.*` call. These types describe what prql-js 0.12 emits; they must never
 * claim more than was observed, because the engine trusts them after one parse.
 */

/** A column id, unique within one RQ query. */
export type CId = number;

export type RelationColumn = { Single: string | null } | "Wildcard";

export interface TableRef {
  source: number;
  columns: [RelationColumn, CId][];
  name: string | null;
}

export type Literal =
  | "Null"
  | { Integer: number }
  | { Float: number }
  | { Boolean: boolean }
  | { String: string }
  | { Date: string }
  | { Time: string }
  | { Timestamp: string }
  | { ValueAndUnit: unknown }
  | { [other: string]: unknown };

export interface SwitchCase {
  condition: Expr;
  value: Expr;
}

export type ExprKind =
  | { ColumnRef: CId }
  | { Literal: Literal }
  | { Operator: { name: string; args: Expr[] } }
  | { Case: SwitchCase[] }
  | { Array: Expr[] }
  | { SString: unknown }
  | { Param: string }
  | { [other: string]: unknown };

export interface Expr {
  kind: ExprKind;
  span: string | null;
}

export interface ColumnSort {
  direction: "Asc" | "Desc";
  column: CId;
}

export interface Compute {
  id: CId;
  expr: Expr;
  window?: unknown;
  is_aggregation?: boolean;
}

export interface Take {
  range: { start: Expr | null; end: Expr | null };
  partition: CId[];
  sort: ColumnSort[];
}

export interface Join {
  side: "Inner" | "Left" | "Right" | "Full";
  with: TableRef;
  filter: Expr;
}

export type Transform =
  | { From: TableRef }
  | { Compute: Compute }
  | { Select: CId[] }
  | { Filter: Expr }
  | { Aggregate: { partition: CId[]; compute: CId[] } }
  | { Sort: ColumnSort[] }
  | { Take: Take }
  | { Join: Join }
  | { Append: TableRef }
  | { [other: string]: unknown };

export type RelationKind =
  | { Pipeline: Transform[] }
  | { ExternRef: { LocalTable: string[] } | { [other: string]: unknown } }
  | { [other: string]: unknown };

export interface Relation {
  kind: RelationKind;
  columns: RelationColumn[];
}

export interface TableDecl {
  id: number;
  name: string | null;
  relation: Relation;
}

export interface RelationalQuery {
  def: unknown;
  tables: TableDecl[];
  relation: Relation;
}

/** The name of a transform or expression kind: the single key of its JSON object. */
export function tagOf(node: object | string): string {
  return typeof node === "string" ? node : Object.keys(node)[0];
}
