/**
 * The language server while someone types, as an editor drives it: a real
 * `heddle dev --lsp --stdio` process, spoken to over stdio, opens the program that
 * bench/parse.ts generates and receives one typed character every 100 ms inside a PRQL
 * block, each followed by a completion and a hover request: first digits into a threshold
 * (a literal), then letters into a column alias of another workflow (`new_shape.*`: every
 * keystroke a block of a new shape, once a prql-js lowering each, now lowered in
 * compiler/types/_prql_resolve.ts). Reported: the cold first diagnostics, and the warm p50/p95
 * of edit → diagnostics (until diagnostics for that version or a later one arrive) and of
 * completion and hover answers, against the goals of issue 12 (100 ms and 50 ms) as baselines
 * and as pass/fail rows, with the load average they were measured at. It must never assert: the
 * numbers go to `deno task bench`.
 */
import { spawnLanguageServer } from "../cli/framing.ts";
import { type BenchRow, cpuMs, goalRow, median, percentile, row } from "./_report.ts";
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

    const timed = (method: string, params: unknown) => {
      const t0 = performance.now();
      return client.request(method, params).then(() => performance.now() - t0);
    };
    let text = source;
    let version = 1;
    /**
     * Types `o.keystrokes` characters at `cursor`, one every `interval` ms, each followed by a
     * completion and a hover; the milliseconds until each edit's diagnostics and of the answers.
     */
    const typing = async (cursor: number, char: (k: number) => string) => {
      const hoverAt = position(text, text.lastIndexOf("filter am", cursor) + "filter am".length);
      const sent: number[] = [];
      const completions: Array<Promise<number>> = [];
      const hovers: Array<Promise<number>> = [];
      const firstVersion = version + 1;
      const cpu0 = cpuMs(client.child.pid);
      const start = performance.now();
      for (let k = 0; k < o.keystrokes; k++) {
        const due = start + k * interval;
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
        const at = position(text, cursor);
        sent.push(performance.now());
        text = text.slice(0, cursor) + char(k) + text.slice(cursor);
        client.notify("textDocument/didChange", {
          textDocument: { uri, version: ++version },
          contentChanges: [{ range: { start: at, end: at }, text: char(k) }],
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
      while (!published.some((p) => p.version >= version)) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const editMs = sent.map((t, k) =>
        Math.min(...published.filter((p) => p.version >= firstVersion + k).map((p) => p.at)) - t
      );
      const cpu1 = cpuMs(client.child.pid);
      const cpuPerKey = cpu0 === null || cpu1 === null ? null : (cpu1 - cpu0) / o.keystrokes;
      return { editMs, completionMs, hoverMs, cpuPerKey };
    };
    // Digits typed after `filter amount > K` in a block in the middle of the program: each
    // edit changes a literal only, which the compiler lowers by shape without prql-js.
    const middle = source.indexOf("filter amount > ", Math.floor(source.length / 2));
    const digits = await typing(source.indexOf(" #", middle), (k) => String(k % 10));
    // Letters typed into a column alias of another block: each edit a new block shape, which
    // prql-js lowers (its standard library load each time).
    const alias = text.indexOf("label = ", text.indexOf("filter amount > ", middle + 200));
    const letters = await typing(alias + "label".length, (k) => "xyz"[k % 3]);
    const goal = (name: string, values: number[], target: number) => [
      row(`lsp.${name}.p95`, percentile(values, 95), "ms", target, {
        baselineName: "goal (issue 12)",
        note: `goal: p95 under ${target} ms`,
      }),
      goalRow(`lsp.${name}.p95`, percentile(values, 95), target, "ms"),
      row(`lsp.${name}.p50`, median(values), "ms"),
    ];
    const cpu = (name: string, perKey: number | null) =>
      perKey === null ? [] : [
        row(`lsp.${name}cpu_per_keystroke`, perKey, "ms", null, {
          note: "the server's CPU time (all threads) per keystroke with its completion and " +
            "hover: what load cannot stretch",
        }),
      ];
    return [
      row("lsp.load_average", Deno.loadavg()[0], "load", null, {
        note: "the machine's 1-minute load average after typing: every number here depends on it",
      }),
      row(`lsp.first_diagnostics_${lines}_lines`, coldMs, "ms", null, {
        note: "cold: a fresh server, every PRQL block lowered once",
      }),
      ...cpu("", digits.cpuPerKey),
      ...cpu("new_shape.", letters.cpuPerKey),
      ...goal("edit_to_diagnostics", digits.editMs, 100),
      ...goal("completion", digits.completionMs, 50),
      ...goal("hover", digits.hoverMs, 50),
      ...goal("new_shape.edit_to_diagnostics", letters.editMs, 100),
      ...goal("new_shape.completion", letters.completionMs, 50),
      ...goal("new_shape.hover", letters.hoverMs, 50),
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
