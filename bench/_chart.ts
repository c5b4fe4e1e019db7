/**
 * Renders the handoff chart (docs/benchmarks/handoff.svg): time against batch size on log-log
 * axes, one colour per method and one dash pattern per consumer language. It is
 * plain SVG text so the docs need no tooling; it must never plot a point that was not measured.
 */
import type { ConsumerLanguage, HandoffPoint } from "./handoff.ts";

const W = 960, H = 440, L = 70, R = 340, T = 30, B = 50;

const SERIES: { key: keyof HandoffPoint; label: string; color: string }[] = [
  { key: "shmHandoff", label: "Heddle handle (deliver + map)", color: "#1b7f3b" },
  { key: "shmTotal", label: "Heddle put + handoff + read all", color: "#7fbf3f" },
  { key: "arrowTotal", label: "Arrow IPC over Unix socket", color: "#1f5fbf" },
  { key: "jsonTotal", label: "JSON over HTTP", color: "#c0392b" },
];

const CONSUMERS: Record<ConsumerLanguage, { name: string; dashes: string }> = {
  ts: { name: "TS", dashes: "" },
  python: { name: "Python", dashes: "6 4" },
  go: { name: "Go", dashes: "2 3" },
  rust: { name: "Rust", dashes: "10 3 2 3" },
};

function log10Range(values: number[]): [number, number] {
  return [Math.floor(Math.log10(Math.min(...values))), Math.ceil(Math.log10(Math.max(...values)))];
}

export function handoffSvg(points: HandoffPoint[]): string {
  const times = points.flatMap((p) => SERIES.map((s) => p[s.key] as number | null))
    .filter((v): v is number => v !== null && v > 0);
  const sizes = points.map((p) => p.sizeMB);
  if (times.length === 0) return "";
  const [y0, y1] = log10Range(times);
  const [x0, x1] = log10Range(sizes);
  const x = (mb: number) => L + (Math.log10(mb) - x0) / Math.max(1, x1 - x0) * (W - L - R);
  const y = (ms: number) => H - B - (Math.log10(ms) - y0) / Math.max(1, y1 - y0) * (H - T - B);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="18" font-size="14">Handoff of one batch between processes (log-log)</text>`,
  ];
  for (let e = y0; e <= y1; e++) {
    out.push(
      `<line x1="${L}" x2="${W - R}" y1="${y(10 ** e)}" y2="${y(10 ** e)}" stroke="#ddd"/>`,
      `<text x="${L - 6}" y="${y(10 ** e) + 4}" text-anchor="end">${10 ** e} ms</text>`,
    );
  }
  for (let e = x0; e <= x1; e++) {
    out.push(
      `<line x1="${x(10 ** e)}" x2="${x(10 ** e)}" y1="${T}" y2="${H - B}" stroke="#ddd"/>`,
      `<text x="${x(10 ** e)}" y="${H - B + 16}" text-anchor="middle">${10 ** e} MB</text>`,
    );
  }
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">batch size</text>`);
  let legend = T + 10;
  for (const [consumer, { name, dashes }] of Object.entries(CONSUMERS)) {
    for (const s of SERIES) {
      const pts = points.filter((p) => p.consumer === consumer && (p[s.key] as number) > 0);
      if (pts.length === 0) continue;
      const dash = dashes ? ` stroke-dasharray="${dashes}"` : "";
      const path = pts.map((p) => `${x(p.sizeMB).toFixed(1)},${y(p[s.key] as number).toFixed(1)}`);
      out.push(
        `<polyline points="${
          path.join(" ")
        }" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`,
        ...pts.map((p) =>
          `<circle cx="${x(p.sizeMB).toFixed(1)}" cy="${
            y(p[s.key] as number).toFixed(1)
          }" r="3" fill="${s.color}"/>`
        ),
        `<line x1="${W - R + 12}" x2="${
          W - R + 40
        }" y1="${legend}" y2="${legend}" stroke="${s.color}" stroke-width="2"${dash}/>`,
        `<text x="${W - R + 46}" y="${
          legend + 4
        }" font-size="11">${s.label} (TS -> ${name})</text>`,
      );
      legend += 18;
    }
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}
