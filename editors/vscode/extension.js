// The Heddle extension for VS Code: it starts `heddle dev --lsp --stdio` as the language
// client's server and `heddle dev --dap` as the debug adapter, and shows the workflow graph
// the server computes. It holds no language knowledge of its own (that lives in the
// servers), so it must stay a thin launcher. Plain CommonJS: it is packaged as written.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

/** A workspace folder (or the configured checkout) holding Heddle's sources. */
function checkout(config) {
  const configured = config.get("checkout");
  if (configured) return configured;
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    const dir = folder.uri.fsPath;
    if (
      fs.existsSync(path.join(dir, "cli", "main.ts")) && fs.existsSync(path.join(dir, "deno.json"))
    ) {
      return dir;
    }
  }
  return null;
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

/** How to run `heddle <args>`: the configured executable, `heddle` on PATH, or from source. */
function heddleCommand(args) {
  const config = vscode.workspace.getConfiguration("heddle");
  const env = { ...process.env };
  if (config.get("heddlePath")) env.HEDDLE_PATH = config.get("heddlePath");
  const explicit = config.get("path");
  if (explicit) return { command: explicit, args, env };
  const installed = onPath("heddle");
  if (installed) return { command: installed, args, env };
  const sources = checkout(config);
  if (sources) {
    const main = path.join(sources, "cli", "main.ts");
    return { command: config.get("deno") || "deno", args: ["run", "-A", main, ...args], env };
  }
  return { command: "heddle", args, env };
}

function startClient(context) {
  const run = heddleCommand(["dev", "--lsp", "--stdio"]);
  const server = { command: run.command, args: run.args, options: { env: run.env } };
  client = new LanguageClient("heddle", "Heddle", server, {
    documentSelector: [{ scheme: "file", language: "heddle" }],
    synchronize: {
      // A changed schema snapshot or plugin manifest changes what open programs mean.
      fileEvents: vscode.workspace.createFileSystemWatcher(
        "**/{*.schema.json,heddle.manifest.json}",
      ),
    },
  });
  context.subscriptions.push(client);
  return client.start();
}

function escapeHtml(text) {
  return String(text).replace(
    /[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c],
  );
}

/** The `heddle/dag` answer as a page: one table of stages per workflow and handler. */
function dagHtml(dag) {
  const graphs = dag.graphs.map((g) => {
    const rows = g.stages.map((s) =>
      `<tr><td>${escapeHtml(s.id)}</td><td>${escapeHtml(s.kind)}</td><td>${
        escapeHtml(s.label)
      }</td>` +
      `<td>${s.line}</td><td>${escapeHtml(s.inputs.join(", "))}</td></tr>`
    ).join("");
    return `<h2>${escapeHtml(g.kind)} ${escapeHtml(g.name)}</h2>` +
      `<table><tr><th>stage</th><th>kind</th><th>runs</th><th>line</th><th>inputs</th></tr>${rows}</table>` +
      `<pre>${escapeHtml(g.mermaid)}</pre>`;
  }).join("");
  return `<!DOCTYPE html><html><body>${
    graphs || "<p>The program has errors: no graph.</p>"
  }</body></html>`;
}

async function showDag() {
  const editor = vscode.window.activeTextEditor;
  if (!editor || !client) return;
  const dag = await client.sendRequest("heddle/dag", {
    textDocument: { uri: editor.document.uri.toString() },
  });
  const panel = vscode.window.createWebviewPanel(
    "heddleDag",
    "Heddle graph",
    vscode.ViewColumn.Beside,
    {},
  );
  panel.webview.html = dagHtml(dag);
}

function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("heddle.showDag", showDag),
    vscode.debug.registerDebugAdapterDescriptorFactory("heddle", {
      createDebugAdapterDescriptor() {
        const run = heddleCommand(["dev", "--dap"]);
        return new vscode.DebugAdapterExecutable(run.command, run.args, { env: run.env });
      },
    }),
    vscode.debug.registerDebugConfigurationProvider("heddle", {
      // F5 with no launch.json: debug the open program.
      resolveDebugConfiguration(_folder, config) {
        if (!config.type && !config.request) {
          const editor = vscode.window.activeTextEditor;
          if (editor?.document.languageId !== "heddle") return config;
          Object.assign(config, {
            type: "heddle",
            request: "launch",
            name: "Run this Heddle program",
          });
        }
        if (!config.program) config.program = "${file}";
        return config;
      },
    }),
  );
  return startClient(context);
}

function deactivate() {
  return client?.stop();
}

module.exports = { activate, deactivate };
