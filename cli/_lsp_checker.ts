/**
 * The language server's checker, run in a Worker (`startChecker`): it analyses the latest
 * text of each open document and hands back the diagnostics to publish. It exists so that
 * checking, which takes hundreds of milliseconds on a large program, never holds the
 * server's own thread: hover and completion are answered there while a check runs here.
 *
 * Only the newest version of a document is ever checked: updates that arrive while a check
 * runs replace each other, and a version superseded before its turn is never analysed. In a
 * program of many declarations an edit inside one workflow's body is re-checked alone
 * (`service.recheck`), and the full analysis follows once typing pauses. Every answer names
 * the version it is for; the server publishes it only if nothing newer was published.
 */
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  type Diagnostic as LspDiagnostic,
  DiagnosticSeverity,
  DiagnosticTag,
} from "vscode-languageserver/node";
import { type CheckOptions, type Lowered, type Span, takeLowered } from "../compiler/mod.ts";
import { type LineIndex, lineIndex } from "../compiler/diagnostics/mod.ts";
import * as service from "../compiler/service/mod.ts";

/** What the server tells the checker. */
export type CheckerRequest =
  | { kind: "update"; uri: string; version: number; text: string }
  | { kind: "close"; uri: string }
  /** A schema snapshot or plugin manifest changed: forget everything, check open documents. */
  | { kind: "recheckAll" };

/** What the checker answers. */
export type CheckerReply =
  | {
    kind: "diagnostics";
    uri: string;
    version: number;
    diagnostics: LspDiagnostic[];
    /** The PRQL blocks this check lowered, for the server's own cache (`addLowered`). */
    lowered: Array<[string, Lowered]>;
  }
  | { kind: "error"; message: string };

export interface CheckerOptions {
  checkOptions: CheckOptions;
  /** Where diagnostic codes are explained (`codeDescription`). */
  docsHref: string;
  /** Programs with at least this many declarations get partial re-checks while typing. */
  focusItems: number;
  /** How long typing must pause before a partially re-checked program is analysed in full. */
  fullAfterMs: number;
}

/** The file name the compiler sees for a document: its path for `file:` URIs. */
export function fileOf(uri: string): string {
  try {
    return uri.startsWith("file:") ? fileURLToPath(uri) : uri;
  } catch {
    return uri;
  }
}

const SEVERITY: Record<service.ServiceDiagnostic["severity"], DiagnosticSeverity> = {
  error: DiagnosticSeverity.Error,
  warning: DiagnosticSeverity.Warning,
  info: DiagnosticSeverity.Information,
};

/** The checker's state and work, apart from how messages reach it (a Worker). */
export class Checker {
  /** Each open document's latest text. */
  private readonly texts = new Map<string, { version: number; text: string }>();
  /** Documents whose latest text waits for a check, and those whose check must be full. */
  private readonly pending = new Set<string>();
  private readonly wantFull = new Set<string>();
  /**
   * What each document's next partial re-check starts from: its last full analysis, or the
   * last partial re-check's base; `full` tells which.
   */
  private readonly bases = new Map<
    string,
    { version: number; base: service.Analysis | service.RecheckBase; full: boolean }
  >();
  private readonly fullTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly otherFiles = new Map<string, LineIndex | null>();
  private draining = false;

  constructor(
    private readonly options: CheckerOptions,
    private readonly reply: (r: CheckerReply) => void,
  ) {
    takeLowered();
  }

  receive(r: CheckerRequest): void {
    if (r.kind === "update") {
      this.texts.set(r.uri, { version: r.version, text: r.text });
      this.pending.add(r.uri);
      // Typing goes on: the full analysis waits for a pause counted from this update.
      if (this.fullTimers.has(r.uri)) this.scheduleFull(r.uri);
    } else if (r.kind === "close") {
      for (const map of [this.texts, this.bases]) map.delete(r.uri);
      this.pending.delete(r.uri);
      this.wantFull.delete(r.uri);
      clearTimeout(this.fullTimers.get(r.uri));
      this.fullTimers.delete(r.uri);
    } else {
      this.otherFiles.clear();
      this.bases.clear();
      for (const uri of this.texts.keys()) this.pending.add(uri);
    }
    this.drain();
  }

  /**
   * Checks pending documents one at a time, letting the event loop run between checks so
   * that updates arriving meanwhile replace what is still pending.
   */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    const step = () => {
      const uri = this.pending.values().next().value;
      if (uri === undefined) {
        this.draining = false;
        return;
      }
      this.pending.delete(uri);
      try {
        this.check(uri);
      } catch (e) {
        this.reply({
          kind: "error",
          message: `heddle: diagnostics failed: ${e instanceof Error ? e.stack ?? e.message : e}`,
        });
      }
      setTimeout(step, 0);
    };
    setTimeout(step, 0);
  }

  private check(uri: string): void {
    const latest = this.texts.get(uri);
    if (!latest) return;
    const { version, text } = latest;
    const previous = this.bases.get(uri);
    let a: service.Analysis | null = null;
    const partial = !this.wantFull.delete(uri) && previous &&
      ("items" in previous.base ? previous.base.items : previous.base.resolved.program.items)
          .length >= this.options.focusItems;
    if (partial) {
      const edit = service.editBetween(previous.base.source, text);
      const r = service.recheck(previous.base, text, edit, this.options.checkOptions);
      if (r) {
        a = r;
        this.bases.set(uri, { version, base: r.base, full: false });
        this.scheduleFull(uri);
      }
    }
    if (!a) {
      a = service.analyse(text, fileOf(uri), this.options.checkOptions);
      this.bases.set(uri, { version, base: a, full: true });
    }
    const diagnostics = this.convert(uri, a);
    this.reply({ kind: "diagnostics", uri, version, diagnostics, lowered: takeLowered() });
  }

  /** The full analysis after partial ones, once no update has come for a while. */
  private scheduleFull(uri: string): void {
    clearTimeout(this.fullTimers.get(uri));
    this.fullTimers.set(
      uri,
      setTimeout(() => {
        this.fullTimers.delete(uri);
        const base = this.bases.get(uri);
        if (base?.full && this.texts.get(uri)?.version === base.version) return;
        this.wantFull.add(uri);
        this.pending.add(uri);
        this.drain();
      }, this.options.fullAfterMs),
    );
  }

  private convert(uri: string, a: service.Analysis): LspDiagnostic[] {
    const range = (lines: LineIndex, span: Span) => ({
      start: service.positionAt(lines, span.start),
      end: service.positionAt(lines, span.end),
    });
    const zero = { line: 0, character: 0 };
    return service.diagnostics(a).map((d) => ({
      range: range(a.lines, d.span),
      severity: SEVERITY[d.severity],
      code: d.code,
      codeDescription: { href: this.options.docsHref },
      source: "heddle",
      message: d.message,
      tags: d.tags.includes("unnecessary") ? [DiagnosticTag.Unnecessary] : undefined,
      relatedInformation: d.related.map((r) => {
        const lines = r.file === a.file ? a.lines : this.linesOfFile(r.file);
        const other = r.file !== a.file && r.file.startsWith("/");
        return {
          location: {
            uri: other ? pathToFileURL(r.file).href : uri,
            range: lines ? range(lines, r.span) : { start: zero, end: zero },
          },
          message: r.message,
        };
      }),
    }));
  }

  private linesOfFile(file: string): LineIndex | null {
    if (!this.otherFiles.has(file)) {
      try {
        this.otherFiles.set(file, lineIndex(Deno.readTextFileSync(file)));
      } catch {
        this.otherFiles.set(file, null);
      }
    }
    return this.otherFiles.get(file)!;
  }
}

/** The checker in a Worker: `send` a request, `onReply` gets the answers. */
export function startChecker(
  options: CheckerOptions,
  onReply: (r: CheckerReply) => void,
): { send(r: CheckerRequest): void; stop(): void } {
  const worker = new Worker(new URL("./_lsp_worker.ts", import.meta.url).href, { type: "module" });
  worker.onmessage = (e: MessageEvent<CheckerReply>) => onReply(e.data);
  worker.onerror = (e) => {
    e.preventDefault();
    onReply({ kind: "error", message: `heddle: the checker failed: ${e.message}` });
  };
  worker.postMessage(options);
  return {
    send: (r) => worker.postMessage(r),
    stop: () => worker.terminate(),
  };
}
