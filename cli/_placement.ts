/**
 * A run's placement for people: which worker runs which stage group, and which edges
 * between groups cross hosts. `heddle inspect --plan` and `heddle workflow status` show it;
 * with `--output json` they print the `Placement` itself (each stage with its `worker`).
 */
import type { Placement } from "../runtime/control/mod.ts";

export function placementText(p: Placement): string {
  const label = new Map(p.stages.map((s) => [s.id, s.label]));
  const worker = new Map(p.stages.map((s) => [s.id, s.worker]));
  const lines = [`stage groups of ${p.workflow}:`];
  for (const g of p.groups) {
    const where = g.worker ? ` on ${g.worker}` : "";
    const needs = g.requires.length > 0 ? ` (needs ${g.requires.join(", ")})` : "";
    const stages = g.stages.map((s) => `${s} ${label.get(s)}`).join(", ");
    lines.push(`  ${g.id}${where}${needs}: ${stages}`);
  }
  const planned = p.groups.every((g) => g.worker === null);
  if (p.edges.length > 0) {
    lines.push(
      planned
        ? "edges between groups (shared memory on one host, Arrow Flight between hosts):"
        : "edges between groups:",
    );
  }
  for (const e of p.edges) {
    const kind = e.kind === "failed-rows" ? " (failed rows)" : "";
    if (planned) {
      lines.push(`  ${e.from} -> ${e.to}${kind}`);
      continue;
    }
    const how = e.crossesHosts
      ? `Arrow Flight (${worker.get(e.from)} -> ${worker.get(e.to)})`
      : `shared memory (${worker.get(e.from)})`;
    lines.push(`  ${e.from} -> ${e.to}${kind}: ${how}`);
  }
  return lines.join("\n") + "\n";
}
