/**
 * The language server while someone types, as an editor drives it: a real
 * `heddle dev --lsp --stdio` process, spoken to over stdio, opens the program that
 * bench/parse.ts generates and receives one typed character every 100 ms inside a PRQL
 * block, each followed by a completion and a hover request. Reported: the cold first
 * diagnostics, and p50/p95 of edit → diagnostics (until diagnostics for that version or a
 * later one arrive) and of completion and hover answers, against the goals of issue 12
 * (100 ms and 50 ms) as baselines. It must never assert: the numbers go to `deno task bench`.
 */
import { spawnLanguageServer } from "../cli/framing.ts";
import { type BenchRow, median, percentile, row } from "./_report.ts";
import { generateProgram } from "./parse.ts";

const ROOT = new URL("../", import.meta.url).pathname;

export interface LspBenchOptions {
  lines: number;
  /** Characters typed, one every `intervalMs`. */
  keystrokes: number;
  intervalMs?: number;
  log?: (line: string) => void;
}

function position(text: string, offset: number) {
  const before = text.slice(0, offset);
  return {
    line: before.split("\n").length - 1,
    character: offset - (before.lastIndexOf("\n") + 1),
  };
}

export async function benchLsp(o: LspBenchOptions): Promise<BenchRow[]> {
  const interval = o.intervalMs ?? 100;
  const source = generateProgram(o.lines);
  const lines = source.split("\n").length - 1;
  const dir = await Deno.makeTempDir({ prefix: "heddle-bench-lsp-" });
  const file = `${dir}/bench.he`;
  await Deno.writeTextFile(file, source);
  const uri = `file://${file}`;
  const client = spawnLanguageServer(ROOT);
  /** Arrival times of diagnostics, by the document version they are for. */
  const published: Array<{ version: number; at: number }> = [];
  let firstDiagnostics: () => void = () => {};
  const first = new Promise<void>((resolve) => (firstDiagnostics = resolve));
  client.onNotification = (m) => {
    if (m.method !== "textDocument/publishDiagnostics" || m.params?.uri !== uri) return;
    published.push({ version: Number(m.params.version ?? 0), at: performance.now() });
    firstDiagnostics();
  };
  try {
    await client.request("initialize", { processId: null, rootUri: null, capabilities: {} });
    await client.notify("initialized", {});
    const opened = performance.now();
    await client.notify("textDocument/didOpen", {
      textDocument: { uri, languageId: "heddle", version: 1, text: source },
    });
    await first;
    const coldMs = performance.now() - opened;
    o.log?.(`lsp: first diagnostics after ${coldMs.toFixed(0)} ms`);

    // Type digits after `filter amount > K` in a block in the middle of the program.
    const middle = source.indexOf("filter amount > ", Math.floor(source.length / 2));
    let cursor = source.indexOf(" #", middle);
    const hoverAt = position(source, middle + "filter am".length);
    const sent: number[] = [];
    const completions: Array<Promise<number>> = [];
    const hovers: Array<Promise<number>> = [];
    const timed = (method: string, params: unknown) => {
      const t0 = performance.now();
      return client.request(method, params).then(() => performance.now() - t0);
    };
    const start = performance.now();
    for (let k = 0; k < o.keystrokes; k++) {
      const due = start + k * interval;
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      const at = position(source, cursor);
      sent.push(performance.now());
      client.notify("textDocument/didChange", {
        textDocument: { uri, version: k + 2 },
        contentChanges: [{ range: { start: at, end: at }, text: String(k % 10) }],
      });
      cursor++;
      const after = { line: at.line, character: at.character + 1 };
      completions.push(
        timed("textDocument/completion", { textDocument: { uri }, position: after }),
      );
      hovers.push(timed("textDocument/hover", { textDocument: { uri }, position: hoverAt }));
    }
    const completionMs = await Promise.all(completions);
    const hoverMs = await Promise.all(hovers);
    const last = o.keystrokes + 1;
    while (!published.some((p) => p.version >= last)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const editMs = sent.map((t, k) =>
      Math.min(...published.filter((p) => p.version >= k + 2).map((p) => p.at)) - t
    );
    const goal = (name: string, values: number[], target: number) => [
      row(`lsp.${name}.p95`, percentile(values, 95), "ms", target, {
        baselineName: "goal (issue 12)",
        note: `goal: p95 under ${target} ms`,
      }),
      row(`lsp.${name}.p50`, median(values), "ms"),
    ];
    return [
      row(`lsp.first_diagnostics_${lines}_lines`, coldMs, "ms", null, {
        note: "cold: a fresh server, every PRQL block compiled once",
      }),
      ...goal("edit_to_diagnostics", editMs, 100),
      ...goal("completion", completionMs, 50),
      ...goal("hover", hoverMs, 50),
    ];
  } finally {
    await client.request("shutdown", null).catch(() => {});
    await client.notify("exit", null).catch(() => {});
    await client.close().catch(() => {});
    await client.child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const rows = await benchLsp({ lines: 10_000, keystrokes: 30, log: console.error });
  for (const r of rows) console.log(`${r.name}: ${r.value.toFixed(1)} ${r.unit}`);
}
