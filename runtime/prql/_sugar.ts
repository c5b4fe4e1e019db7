/**
 * Heddle's one departure from prql-js 0.12's name resolution, applied to the PL tree: in
 * `from input | join a (==id) | join b (==id)`, prql-js rejects the second `==id` as
 * ambiguous (both `input.id` and `a.id` are in scope), yet the seed program relies on it.
 * Heddle reads `(==c)` there as `input.c == that.c`: the column of the relation the pipeline
 * starts from, which is what the author of a lookup chain means. Only a self-equality that
 * prql-js would reject is rewritten; it must never change a query prql-js accepts.
 */
import type * as arrow from "apache-arrow";

type Node = Record<string, unknown>;

function ident(node: unknown): string | null {
  const id = (node as Node | null)?.Ident;
  return typeof id === "string" ? id : null;
}

function funcCall(node: unknown): { name: string | null; args: unknown[] } | null {
  const call = (node as Node | null)?.FuncCall as { name: unknown; args: unknown[] } | undefined;
  return call ? { name: ident(call.name), args: call.args } : null;
}

function rewritePipeline(exprs: unknown[], relations: Record<string, arrow.Schema>): void {
  const from = funcCall(exprs[0]);
  if (from?.name !== "from") return;
  const source = ident(from.args[0]);
  const sourceSchema = source ? relations[source] : undefined;
  if (!source || !sourceSchema) return;
  const inScope = new Set<string>(); // columns brought in by earlier joins
  for (const e of exprs.slice(1)) {
    const call = funcCall(e);
    if (call?.name !== "join") continue;
    const target = ident(call.args[0]);
    const cond = call.args[1] as Node | undefined;
    const unary = cond?.Unary as { op: string; expr: unknown } | undefined;
    const col = unary?.op === "EqSelf" ? ident(unary.expr) : null;
    if (col && inScope.has(col) && sourceSchema.fields.some((f) => f.name === col)) {
      call.args[1] = {
        Binary: {
          left: { Indirection: { base: { Ident: source }, field: { Name: col } } },
          op: "Eq",
          right: { Indirection: { base: { Ident: "that" }, field: { Name: col } } },
        },
      };
    }
    for (const f of (target && relations[target]?.fields) || []) inScope.add(f.name);
  }
}

/** Rewrites ambiguous `(==c)` join conditions in a PL tree (prql-js JSON), in place. */
export function resolveSelfJoins(pl: unknown, relations: Record<string, arrow.Schema>): void {
  if (Array.isArray(pl)) {
    for (const x of pl) resolveSelfJoins(x, relations);
    return;
  }
  if (!pl || typeof pl !== "object") return;
  const pipeline = (pl as Node).Pipeline as { exprs?: unknown[] } | undefined;
  if (pipeline?.exprs) rewritePipeline(pipeline.exprs, relations);
  for (const v of Object.values(pl)) resolveSelfJoins(v, relations);
}
