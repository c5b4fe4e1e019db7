/**
 * The Language Server Protocol adapter behind `heddle dev --lsp --stdio`: it keeps the open
 * documents, runs the language service (`compiler/service`) on them and translates offsets
 * to protocol positions and back. It holds no language knowledge of its own. Diagnostics come
 * from a checker in a Worker (`_lsp_checker.ts`), so that checking never holds this thread:
 * requests are answered here, from this thread's own analysis of each document. It must never
 * crash on any request nor on any text: each handler answers "nothing" when the service
 * fails, and logs why to the client. Run directly (`deno run -A cli/lsp.ts`) it serves on
 * stdio, which editors and the end-to-end test use before `dev` is registered.
 */
import process from "node:process";
import { pathToFileURL } from "node:url";
import {
  CodeActionKind,
  CompletionItemKind,
  createConnection,
  DidChangeWatchedFilesNotification,
  DocumentHighlightKind,
  type DocumentSymbol,
  FoldingRangeKind,
  MarkupKind,
  ProposedFeatures,
  type Range,
  ResponseError,
  SemanticTokensBuilder,
  StreamMessageReader,
  StreamMessageWriter,
  SymbolKind,
  TextDocuments,
  TextDocumentSyncKind,
  type TextEdit as LspTextEdit,
} from "vscode-languageserver/node";
import { TextDocument } from "vscode-languageserver-textdocument";
import { addLowered, type CheckOptions, type Span } from "../compiler/mod.ts";
import { type LineIndex, lineIndex } from "../compiler/diagnostics/mod.ts";
import * as service from "../compiler/service/mod.ts";
import { fileOf, startChecker } from "./_lsp_checker.ts";

export interface LanguageServerOptions {
  /** `HEDDLE_PATH` as the caller read it, for finding plugin modules. */
  heddlePath?: string;
}

/** Where diagnostic codes are explained: docs/diagnostics.md of this checkout. */
const DIAGNOSTICS_DOC = new URL("../docs/diagnostics.md", import.meta.url).href;

/** Programs with at least this many declarations get partial re-checks while typing. */
const FOCUS_ITEMS = 30;
/**
 * How long typing must pause before a partially re-checked program is analysed in full, and
 * before this thread's analysis (for requests) is brought up to date.
 */
const FULL_AFTER_MS = 1000;

/** Files whose change changes what open programs mean: schema snapshots, plugin manifests. */
const WATCHED = ["**/*.schema.json", "**/heddle.manifest.json"];

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
  function: CompletionItemKind.Function,
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
  /** The analysis of each open document's latest version. */
  const cache = new Map<string, { version: number; analysis: service.Analysis }>();
  /** Each document's analysis as it was opened or last saved (see `service.completion`). */
  const baselines = new Map<string, service.Analysis>();
  /** The version of each document whose diagnostics were published last. */
  const published = new Map<string, number>();
  /** The progress of each document's first check, ended by its first diagnostics. */
  const firstChecks = new Map<string, () => void>();
  let workspaceRoots: string[] = [];
  let canRegisterWatchers = false;

  /**
   * The analysis of a document's current version. Analyses are only ever made for the
   * latest text: a version superseded before its turn is never analysed.
   */
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

  /**
   * The checker's answers: diagnostics are published unless a newer version's already were
   * (or the document was closed meanwhile), so a superseded version never replaces a newer.
   */
  const checker = startChecker(
    {
      checkOptions,
      docsHref: DIAGNOSTICS_DOC,
      focusItems: FOCUS_ITEMS,
      fullAfterMs: FULL_AFTER_MS,
    },
    (reply) => {
      if (reply.kind === "error") return connection.console.error(reply.message);
      const { uri, version, diagnostics } = reply;
      addLowered(reply.lowered);
      // The same version again is a full check after partial ones, or after a watched file
      // changed: newer news about the same text.
      if (!documents.get(uri) || version < (published.get(uri) ?? -Infinity)) return;
      // This thread has analysed the document for requests by now (see `onDidChangeContent`),
      // or does so here: once diagnostics show, requests are answered without a wait.
      if (!cache.has(uri)) safe("analysis", undefined, () => (analysisOf(uri), remember(uri)));
      published.set(uri, version);
      connection.sendDiagnostics({ uri, version, diagnostics });
      firstChecks.get(uri)?.();
      firstChecks.delete(uri);
    },
  );

  const edits = (a: service.Analysis, list: service.TextEdit[]): LspTextEdit[] =>
    list.map((e) => ({ range: range(a.lines, e.span), newText: e.newText }));

  connection.onInitialize((params) => {
    const roots = params.workspaceFolders?.map((f) => f.uri) ??
      (params.rootUri ? [params.rootUri] : []);
    workspaceRoots = roots.filter((u) => u.startsWith("file:")).map(fileOf);
    canRegisterWatchers =
      params.capabilities.workspace?.didChangeWatchedFiles?.dynamicRegistration === true;
    return {
      capabilities: {
        textDocumentSync: {
          openClose: true,
          change: TextDocumentSyncKind.Incremental,
          save: { includeText: false },
        },
        hoverProvider: true,
        definitionProvider: true,
        referencesProvider: true,
        documentSymbolProvider: true,
        workspaceSymbolProvider: true,
        documentFormattingProvider: true,
        documentHighlightProvider: true,
        foldingRangeProvider: true,
        renameProvider: { prepareProvider: true },
        completionProvider: { triggerCharacters: [".", "<", "=", "?", "|", " ", "{"] },
        signatureHelpProvider: { triggerCharacters: ["{", ",", ":"], retriggerCharacters: [" "] },
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
        semanticTokensProvider: {
          legend: {
            tokenTypes: [...service.TOKEN_TYPES],
            tokenModifiers: [...service.TOKEN_MODIFIERS],
          },
          full: true,
        },
      },
      serverInfo: { name: "heddle", version: "0.1.0" },
    };
  });

  connection.onInitialized(() => {
    // Clients that cannot register watchers send changes they watch themselves (the VS Code
    // extension watches the same files).
    if (canRegisterWatchers) {
      connection.client.register(DidChangeWatchedFilesNotification.type, {
        watchers: WATCHED.map((globPattern) => ({ globPattern })),
      });
    }
  });

  /** A changed snapshot or manifest: every open document is checked again. */
  connection.onDidChangeWatchedFiles(() =>
    safe("watched files", undefined, () => {
      cache.clear();
      checker.send({ kind: "recheckAll" });
    })
  );

  /**
   * A document's first check can take long (a large program, a cold PRQL cache): it is
   * reported as progress, so the editor shows why diagnostics have not come yet.
   */
  documents.onDidOpen((e) => {
    const uri = e.document.uri;
    connection.window.createWorkDoneProgress().then(
      (progress) => {
        if (published.has(uri)) return progress.done();
        progress.begin("heddle", 0, `checking ${uri.slice(uri.lastIndexOf("/") + 1)}`);
        firstChecks.set(uri, () => progress.done());
      },
      () => {},
    );
  });
  const remember = (uri: string) => {
    const a = cache.get(uri)?.analysis;
    if (a) baselines.set(uri, a);
  };
  documents.onDidSave((e) =>
    safe("save", undefined, () => (analysisOf(e.document.uri), remember(e.document.uri)))
  );
  /** This thread's analysis is brought up to date once typing has paused. */
  const refreshTimers = new Map<string, ReturnType<typeof setTimeout>>();
  const refreshLater = (uri: string) => {
    clearTimeout(refreshTimers.get(uri));
    refreshTimers.set(
      uri,
      setTimeout(() => {
        refreshTimers.delete(uri);
        safe("analysis", undefined, () => analysisOf(uri));
      }, FULL_AFTER_MS),
    );
  };
  /** Documents just opened whose analysis for requests is about to start. */
  const opening = new Set<string>();
  // Every text, the opened one included, goes to the checker as it is.
  documents.onDidChangeContent((e) => {
    const { uri, version } = e.document;
    checker.send({ kind: "update", uri, version, text: e.document.getText() });
    if (cache.has(uri)) refreshLater(uri);
    // A document just opened: this thread analyses it for requests while the checker checks
    // it, on another core, instead of after it (its first diagnostics wait for both).
    else if (!opening.has(uri)) {
      opening.add(uri);
      setTimeout(() => {
        opening.delete(uri);
        if (!cache.has(uri)) safe("analysis", undefined, () => (analysisOf(uri), remember(uri)));
      }, 0);
    }
  });
  documents.onDidClose((e) => {
    const uri = e.document.uri;
    checker.send({ kind: "close", uri });
    clearTimeout(refreshTimers.get(uri));
    for (const map of [cache, baselines, published, firstChecks]) map.delete(uri);
    connection.sendDiagnostics({ uri, diagnostics: [] });
  });

  /** The analysis and cursor offset of a request, or null when the document is unknown. */
  const at = (p: { textDocument: { uri: string }; position: service.LinePosition }) => {
    const a = analysisOf(p.textDocument.uri);
    return a ? { a, offset: service.offsetAt(a.lines, p.position) } : null;
  };

  /**
   * For the requests that come while someone types (hover, completion): this thread's latest
   * analysis even if edits behind, read through the edits since, so that they never wait for
   * a fresh analysis of a text that will change again in 100 ms. It is brought up to date
   * once typing pauses (`refreshLater`).
   */
  const current = (p: { textDocument: { uri: string }; position: service.LinePosition }) => {
    const uri = p.textDocument.uri;
    const doc = documents.get(uri);
    const cached = cache.get(uri);
    if (!doc || !cached || cached.version === doc.version) return at(p);
    const text = doc.getText();
    const lines = linesOf(uri, doc.version, text);
    const edit = service.editBetween(cached.analysis.source, text);
    return { a: cached.analysis, edit, text, lines, offset: service.offsetAt(lines, p.position) };
  };
  let lineCache: { uri: string; version: number; lines: LineIndex } | null = null;
  const linesOf = (uri: string, version: number, text: string): LineIndex => {
    if (lineCache?.uri !== uri || lineCache.version !== version) {
      lineCache = { uri, version, lines: lineIndex(text) };
    }
    return lineCache.lines;
  };

  connection.onHover((p) =>
    safe("hover", null, () => {
      const c = current(p);
      if (!c) return null;
      const edit = "edit" in c ? c.edit : null;
      const h = service.hover(c.a, edit ? edit.toOlder(c.offset) : c.offset);
      if (!h) return null;
      const span = edit
        ? { start: edit.toNewer(h.span.start), end: edit.toNewer(h.span.end) }
        : h.span;
      return {
        contents: { kind: MarkupKind.Markdown, value: h.markdown },
        range: range("lines" in c ? c.lines : c.a.lines, span),
      };
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
      const c = current(p);
      if (!c) return [];
      const earlier = baselines.get(p.textDocument.uri);
      // Completion reads the text before the cursor: the current text, the names of the
      // (possibly older) analysis.
      const a = "edit" in c ? service.withText(c.a, c.text, c.lines, c.edit) : c.a;
      return service.completion(a, c.offset, earlier).map((item) => ({
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

  connection.languages.semanticTokens.on((p) =>
    safe("semantic tokens", { data: [] }, () => {
      const a = analysisOf(p.textDocument.uri);
      if (!a) return { data: [] };
      const builder = new SemanticTokensBuilder();
      for (const t of service.semanticTokens(a)) {
        const type = service.TOKEN_TYPES.indexOf(t.type);
        const modifiers = t.modifiers.reduce(
          (bits, m) => bits | (1 << service.TOKEN_MODIFIERS.indexOf(m)),
          0,
        );
        // Tokens may not span lines: a multi-line one (a PRQL triple-quoted string) is cut.
        const from = service.positionAt(a.lines, t.span.start);
        const to = service.positionAt(a.lines, t.span.end);
        for (let line = from.line; line <= to.line; line++) {
          const first = line === from.line ? from.character : 0;
          const last = line === to.line ? to.character : a.lines.lineText(line + 1).length;
          if (last > first) builder.push(line, first, last - first, type, modifiers);
        }
      }
      return builder.build();
    })
  );

  connection.onCodeAction((p) =>
    safe("code actions", [], () => {
      const a = analysisOf(p.textDocument.uri);
      if (!a) return [];
      const span = {
        start: service.offsetAt(a.lines, p.range.start),
        end: service.offsetAt(a.lines, p.range.end),
      };
      return service.codeActions(a, span).map((action) => ({
        title: action.title,
        kind: CodeActionKind.QuickFix,
        isPreferred: action.preferred,
        diagnostics: p.context.diagnostics.filter((d) =>
          d.code === action.diagnostic.code &&
          service.offsetAt(a.lines, d.range.start) === action.diagnostic.span.start
        ),
        edit: { changes: { [p.textDocument.uri]: edits(a, action.edits) } },
      }));
    })
  );

  connection.onSignatureHelp((p) =>
    safe("signature help", null, () => {
      const c = at(p);
      const help = c && service.signatureHelp(c.a, c.offset);
      if (!help) return null;
      return {
        signatures: [{
          label: help.label,
          documentation: { kind: MarkupKind.Markdown, value: help.documentation },
          parameters: help.parameters.map((x) => ({
            label: x.label,
            documentation: { kind: MarkupKind.Markdown, value: x.documentation },
          })),
        }],
        activeSignature: 0,
        activeParameter: help.active < 0 ? undefined : help.active,
      };
    })
  );

  connection.onDocumentHighlight((p) =>
    safe("document highlight", [], () => {
      const c = at(p);
      if (!c) return [];
      return service.documentHighlights(c.a, c.offset).map((h) => ({
        range: range(c.a.lines, h.span),
        kind: h.write ? DocumentHighlightKind.Write : DocumentHighlightKind.Read,
      }));
    })
  );

  connection.onFoldingRanges((p) =>
    safe("folding ranges", [], () => {
      const a = analysisOf(p.textDocument.uri);
      if (!a) return [];
      const kinds = {
        region: FoldingRangeKind.Region,
        comment: FoldingRangeKind.Comment,
        imports: FoldingRangeKind.Imports,
      };
      return service.foldingRanges(a).map((f) => ({
        startLine: f.startLine - 1,
        endLine: f.endLine - 1,
        kind: kinds[f.kind],
      }));
    })
  );

  connection.onWorkspaceSymbol((p) =>
    safe("workspace symbols", [], () => {
      const files = new Map<string, string>();
      for (const doc of documents.all()) files.set(fileOf(doc.uri), doc.getText());
      for (const root of workspaceRoots) {
        for (const file of heddleFiles(root)) {
          if (!files.has(file)) files.set(file, Deno.readTextFileSync(file));
        }
      }
      const list = [...files].map(([file, source]) => ({ file, source }));
      const found = service.workspaceSymbols(list, p.query);
      const indexes = new Map(list.map((f) => [f.file, lineIndex(f.source)]));
      return found.map((s) => ({
        name: s.name,
        kind: SYMBOL_KIND[s.kind],
        containerName: s.container ?? undefined,
        location: { uri: pathToFileURL(s.file).href, range: range(indexes.get(s.file)!, s.span) },
      }));
    })
  );

  /** The workflow graph, for the editor's preview (`heddle/dag`, see docs/lsp.md). */
  connection.onRequest(
    "heddle/dag",
    (p: { textDocument: { uri: string } }) =>
      safe("workflow graph", { graphs: [] }, () => {
        const a = analysisOf(p.textDocument.uri);
        return { graphs: (a && service.dag(a)) ?? [] };
      }),
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

/** The `.he` files under a folder (dependencies and hidden folders left out), at most 2000. */
function heddleFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return;
    }
    for (const e of entries) {
      if (out.length >= 2000) return;
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) walk(path);
      else if (e.isFile && e.name.endsWith(".he")) out.push(path);
    }
  };
  walk(root);
  return out;
}

if (import.meta.main) {
  await startLanguageServer({ heddlePath: Deno.env.get("HEDDLE_PATH") ?? undefined });
}
