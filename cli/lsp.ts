/**
 * The Language Server Protocol adapter behind `heddle dev --lsp --stdio`: it keeps the open
 * documents, runs the language service (`compiler/service`) on them and translates offsets
 * to protocol positions and back. It holds no language knowledge of its own. It must never
 * crash on any request nor on any text: each handler answers "nothing" when the service
 * fails, and logs why to the client. Run directly (`deno run -A cli/lsp.ts`) it serves on
 * stdio, which editors and the end-to-end test use before `dev` is registered.
 */
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  CompletionItemKind,
  createConnection,
  type Diagnostic as LspDiagnostic,
  DiagnosticSeverity,
  type DocumentSymbol,
  MarkupKind,
  ProposedFeatures,
  type Range,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  SymbolKind,
  TextDocuments,
  TextDocumentSyncKind,
  type TextEdit as LspTextEdit,
} from "vscode-languageserver/node";
import { TextDocument } from "vscode-languageserver-textdocument";
import type { CheckOptions, Span } from "../compiler/mod.ts";
import { type LineIndex, lineIndex } from "../compiler/diagnostics/mod.ts";
import * as service from "../compiler/service/mod.ts";

export interface LanguageServerOptions {
  /** `HEDDLE_PATH` as the caller read it, for finding plugin modules. */
  heddlePath?: string;
  /** How long typing must pause before a document is checked again, in milliseconds. */
  debounceMs?: number;
}

const SEVERITY: Record<service.ServiceDiagnostic["severity"], DiagnosticSeverity> = {
  error: DiagnosticSeverity.Error,
  warning: DiagnosticSeverity.Warning,
  info: DiagnosticSeverity.Information,
};

const COMPLETION_KIND: Record<service.CompletionKind, CompletionItemKind> = {
  keyword: CompletionItemKind.Keyword,
  module: CompletionItemKind.Module,
  operation: CompletionItemKind.Function,
  resourceKind: CompletionItemKind.Class,
  resource: CompletionItemKind.Variable,
  step: CompletionItemKind.Method,
  stream: CompletionItemKind.Variable,
  handler: CompletionItemKind.Event,
  slot: CompletionItemKind.Property,
  configKey: CompletionItemKind.Property,
  column: CompletionItemKind.Field,
};

const SYMBOL_KIND: Record<service.SymbolKind, SymbolKind> = {
  import: SymbolKind.Module,
  resource: SymbolKind.Variable,
  step: SymbolKind.Function,
  handler: SymbolKind.Event,
  workflow: SymbolKind.Class,
  type: SymbolKind.Struct,
  stream: SymbolKind.Variable,
};

/** The file name the compiler sees for a document: its path for `file:` URIs. */
function fileOf(uri: string): string {
  try {
    return uri.startsWith("file:") ? fileURLToPath(uri) : uri;
  } catch {
    return uri;
  }
}

function uriOf(file: string, fallback: string, docFile: string): string {
  if (file === docFile) return fallback;
  return file.startsWith("/") ? pathToFileURL(file).href : fallback;
}

/**
 * Serves the protocol on stdin/stdout until the client says `exit` (the library then ends
 * the process). The returned promise never settles, so callers can await it.
 */
export function startLanguageServer(options: LanguageServerOptions = {}): Promise<never> {
  // Stdout carries the protocol: a stray log line there would corrupt a message.
  console.log = console.info = console.debug = console.error;
  const connection = createConnection(
    ProposedFeatures.all,
    new StreamMessageReader(process.stdin),
    new StreamMessageWriter(process.stdout),
  );
  const documents = new TextDocuments(TextDocument);
  const checkOptions: CheckOptions = { heddlePath: options.heddlePath };
  const cache = new Map<string, { version: number; analysis: service.Analysis }>();
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const debounce = options.debounceMs ?? 150;

  const analysisOf = (uri: string): service.Analysis | null => {
    const doc = documents.get(uri);
    if (!doc) return null;
    const cached = cache.get(uri);
    if (cached?.version === doc.version) return cached.analysis;
    const analysis = service.analyse(doc.getText(), fileOf(uri), checkOptions);
    cache.set(uri, { version: doc.version, analysis });
    return analysis;
  };

  const range = (lines: LineIndex, span: Span): Range => ({
    start: service.positionAt(lines, span.start),
    end: service.positionAt(lines, span.end),
  });

  /** Runs a handler; a failure is logged and answered with `fallback`, never thrown. */
  const safe = <T>(what: string, fallback: T, run: () => T): T => {
    try {
      return run();
    } catch (e) {
      connection.console.error(
        `heddle: ${what} failed: ${e instanceof Error ? e.stack ?? e.message : e}`,
      );
      return fallback;
    }
  };

  const otherFiles = new Map<string, LineIndex | null>();
  const linesOfFile = (file: string): LineIndex | null => {
    if (!otherFiles.has(file)) {
      try {
        otherFiles.set(file, lineIndex(Deno.readTextFileSync(file)));
      } catch {
        otherFiles.set(file, null);
      }
    }
    return otherFiles.get(file)!;
  };

  const publish = (uri: string) =>
    safe("diagnostics", undefined, () => {
      const a = analysisOf(uri);
      if (!a) return;
      const diagnostics: LspDiagnostic[] = service.diagnostics(a).map((d) => ({
        range: range(a.lines, d.span),
        severity: SEVERITY[d.severity],
        code: d.code,
        source: "heddle",
        message: d.message,
        relatedInformation: d.related.map((r) => {
          const lines = r.file === a.file ? a.lines : linesOfFile(r.file);
          const zero = { line: 0, character: 0 };
          return {
            location: {
              uri: uriOf(r.file, uri, a.file),
              range: lines ? range(lines, r.span) : { start: zero, end: zero },
            },
            message: r.message,
          };
        }),
      }));
      connection.sendDiagnostics({ uri, diagnostics });
    });

  const schedule = (uri: string) => {
    clearTimeout(timers.get(uri));
    timers.set(
      uri,
      setTimeout(() => {
        timers.delete(uri);
        publish(uri);
      }, debounce),
    );
  };

  const edits = (a: service.Analysis, list: service.TextEdit[]): LspTextEdit[] =>
    list.map((e) => ({ range: range(a.lines, e.span), newText: e.newText }));

  connection.onInitialize(() => ({
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      hoverProvider: true,
      definitionProvider: true,
      referencesProvider: true,
      documentSymbolProvider: true,
      documentFormattingProvider: true,
      renameProvider: { prepareProvider: true },
      completionProvider: { triggerCharacters: [".", "<", "=", "?", "|"] },
    },
    serverInfo: { name: "heddle", version: "0.1.0" },
  }));

  documents.onDidChangeContent((e) => schedule(e.document.uri));
  documents.onDidClose((e) => {
    clearTimeout(timers.get(e.document.uri));
    timers.delete(e.document.uri);
    cache.delete(e.document.uri);
    connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
  });

  /** The analysis and cursor offset of a request, or null when the document is unknown. */
  const at = (p: { textDocument: { uri: string }; position: service.LinePosition }) => {
    const a = analysisOf(p.textDocument.uri);
    return a ? { a, offset: service.offsetAt(a.lines, p.position) } : null;
  };

  connection.onHover((p) =>
    safe("hover", null, () => {
      const c = at(p);
      const h = c && service.hover(c.a, c.offset);
      return h && c
        ? {
          contents: { kind: MarkupKind.Markdown, value: h.markdown },
          range: range(c.a.lines, h.span),
        }
        : null;
    })
  );

  connection.onDefinition((p) =>
    safe("definition", null, () => {
      const c = at(p);
      const span = c && service.definition(c.a, c.offset);
      return span && c ? { uri: p.textDocument.uri, range: range(c.a.lines, span) } : null;
    })
  );

  connection.onReferences((p) =>
    safe("references", [], () => {
      const c = at(p);
      if (!c) return [];
      return service.references(c.a, c.offset, p.context.includeDeclaration).map((span) => ({
        uri: p.textDocument.uri,
        range: range(c.a.lines, span),
      }));
    })
  );

  connection.onCompletion((p) =>
    safe("completion", [], () => {
      const c = at(p);
      if (!c) return [];
      return service.completion(c.a, c.offset).map((item) => ({
        label: item.label,
        kind: COMPLETION_KIND[item.kind],
        detail: item.detail,
        documentation: item.documentation
          ? { kind: MarkupKind.Markdown, value: item.documentation }
          : undefined,
        insertText: item.insertText,
      }));
    })
  );

  connection.onDocumentSymbol((p) =>
    safe("document symbols", [], () => {
      const a = analysisOf(p.textDocument.uri);
      if (!a) return [];
      const convert = (s: service.OutlineSymbol): DocumentSymbol => ({
        name: s.name,
        detail: s.detail,
        kind: SYMBOL_KIND[s.kind],
        range: range(a.lines, s.span),
        selectionRange: range(a.lines, s.selectionSpan),
        children: s.children.map(convert),
      });
      return service.documentSymbols(a).map(convert);
    })
  );

  connection.onDocumentFormatting((p) =>
    safe("formatting", null, () => {
      const doc = documents.get(p.textDocument.uri);
      if (!doc) return null;
      const text = doc.getText();
      const result = service.formatting(text);
      if (!result) return null;
      const lines = lineIndex(text);
      return result.map((e) => ({ range: range(lines, e.span), newText: e.newText }));
    })
  );

  connection.onPrepareRename((p) =>
    safe("prepare rename", null, () => {
      const c = at(p);
      const r = c && service.prepareRename(c.a, c.offset);
      return r && c ? { range: range(c.a.lines, r.span), placeholder: r.name } : null;
    })
  );

  connection.onRenameRequest((p) => {
    const c = safe("rename", null, () => at(p));
    if (!c) return null;
    const result = safe("rename", null, () => service.rename(c.a, c.offset, p.newName));
    if (!result) return null;
    // A refused rename is the user's mistake: say why in the editor instead of doing nothing.
    if (!result.ok) return new ResponseError(-32803, result.message);
    return { changes: { [p.textDocument.uri]: edits(c.a, result.edits) } };
  });

  documents.listen(connection);
  connection.listen();
  return new Promise<never>(() => {});
}

if (import.meta.main) {
  await startLanguageServer({ heddlePath: Deno.env.get("HEDDLE_PATH") ?? undefined });
}
