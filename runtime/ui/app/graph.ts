/**
 * The workflow graph, drawn as SVG: dagre lays the stages out left to right (a maintained
 * layout library, not hand-placed boxes), Preact draws them. Each edge's schema shows on
 * hover (an SVG `<title>`); fused stages and batched lookups carry a mark, and each stage
 * names its worker when one is known.
 */
import { html } from "./_html.ts";
import dagre from "@dagrejs/dagre";
import type { GraphView } from "../_views.ts";

const NODE_WIDTH = 190;
const LINE = 16;

export function Graph({ graph }: { graph: GraphView }) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 56, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of graph.nodes) {
    const lines = 2 + (n.marks.length > 0 ? 1 : 0) + (n.worker ? 1 : 0);
    g.setNode(n.id, { width: NODE_WIDTH, height: lines * LINE + 12 });
  }
  for (const e of graph.edges) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const size = g.graph();
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  return html`
    <svg class="graph" width=${size.width} height=${size.height}
      viewBox=${`0 0 ${size.width} ${size.height}`} role="img" aria-label="workflow graph">
        <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7"
          markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" /></marker></defs>
        ${graph.edges.map((e) => {
          const points = g.edge(e.from, e.to)?.points ?? [];
          const d = points.map((p: { x: number; y: number }, i: number) =>
            `${i === 0 ? "M" : "L"}${p.x},${p.y}`
          ).join(" ");
          const flight = e.crossesHosts ? " (Arrow Flight, between hosts)" : "";
          return html`
            <g class=${`edge${e.crossesHosts ? " crosses-hosts" : ""}`} data-from=${e
              .from} data-to=${e.to}>
              <path d=${d} marker-end="url(#arrow)" />
              <path class="hit" d=${d} />
              <title>${`${e.from} → ${e.to}${flight}\n${e.schema}`}</title>
            </g>
          `;
        })}
        ${g.nodes().map((id) => {
          const box = g.node(id);
          const n = byId.get(id)!;
          const x = box.x - box.width / 2;
          const y = box.y - box.height / 2;
          const lines = [
            html`<tspan class="id" x=${x + 8} dy="0">${n.id}</tspan>`,
            html`<tspan x=${x + 8} dy=${LINE}>${clip(n.label)}</tspan>`,
            n.marks.length > 0 &&
            html`<tspan class="mark" x=${x + 8} dy=${LINE}>${n.marks.join(" · ")}</tspan>`,
            n.worker &&
            html`<tspan class="worker" x=${x + 8} dy=${LINE}>on ${clip(n.worker)}</tspan>`,
          ];
          return html`
            <g class=${`stage kind-${n.kind} graph-${
              n.graph === graph.workflow ? "main" : "handler"
            }`}
              data-stage=${n.id}>
              <rect x=${x} y=${y} width=${box.width} height=${box.height} rx="6" />
              <text x=${x + 8} y=${y + 18}>${lines}</text>
              <title>${`${n.id} ${n.kind} ${n.label}${
                n.graph === graph.workflow ? "" : ` (handler ${n.graph})`
              }`}</title>
            </g>
          `;
        })}</svg>
  `;
}

function clip(text: string): string {
  return text.length > 26 ? `${text.slice(0, 25)}…` : text;
}
