/**
 * Refreshing the schema snapshot: asks an injected catalog for the column and parameter
 * types of every SQL step, and returns the snapshot to write next to the program. The
 * compiler never imports a database client; the runtime or CLI supplies `catalog`, which
 * connects with the resource's config.
 */
import type { Resolved } from "../resolve/mod.ts";
import { queryHash, type SchemaSnapshot, type SnapshotColumn, sqlShape } from "./_sql.ts";

/** What the catalog reports for one query. */
export interface CatalogAnswer {
  columns: SnapshotColumn[];
  params: SnapshotColumn[];
}

/** Describes a query on a resource; `module` is e.g. `fhub/postgresql`. */
export type Catalog = (request: {
  resource: string;
  module: string;
  config: Record<string, unknown>;
  query: string;
  params: string[];
}) => Promise<CatalogAnswer>;

export interface IntrospectOptions {
  catalog: Catalog;
}

/** Builds a fresh snapshot for every SQL step of a resolved program. */
export async function introspect(
  resolved: Resolved,
  options: IntrospectOptions,
): Promise<SchemaSnapshot> {
  const queries: SchemaSnapshot["queries"] = [];
  for (const step of resolved.steps.values()) {
    const call = step.call;
    if (call?.op.output?.kind !== "sql") continue;
    const key = call.op.output.key;
    const lit = call.node.config?.fields.find((f) => f.key.name === key)?.value;
    const resource = call.injections.get("connection");
    const res = resource ? resolved.resources.get(resource) : undefined;
    if (lit?.kind !== "String" || !res) continue;
    const config: Record<string, unknown> = {};
    for (const f of res.decl.config?.fields ?? []) {
      const v = f.value;
      config[f.key.name] = v.kind === "Env"
        ? { env: v.name.value, secret: v.secret, default: v.default?.value ?? null }
        : "value" in v
        ? v.value
        : null;
    }
    const params = [...new Set(sqlShape(lit.value).params.map((p) => p.name))];
    const answer = await options.catalog({
      resource: resource!,
      module: call.module.path,
      config,
      query: lit.value,
      params,
    });
    queries.push({ resource: resource!, hash: queryHash(lit.value), query: lit.value, ...answer });
  }
  return { heddle_schema_snapshot: 1, queries };
}
