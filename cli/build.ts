/**
 * `deno task build`: compiles Heddle into one self-contained binary, `bin/heddle`, whose
 * subcommands switch roles (orchestrator, worker daemon, LSP server). `deno compile` needs
 * Deno's runtime for the target (`denort`), which it downloads on first use; where that
 * download cannot happen, this script says so in one line instead of a Rust backtrace.
 */
const output = Deno.args[0] ?? "bin/heddle";

const command = new Deno.Command(Deno.execPath(), {
  args: [
    "compile",
    "--allow-all",
    "--include=proto/",
    "--include=sdk/python/",
    "--include=sdk/go/",
    "--include=sdk/rust/src/",
    "--include=sdk/rust/Cargo.toml",
    "--include=sdk/typescript/",
    "--include=runtime/registry/",
    "--include=runtime/fs/",
    "--include=runtime/plugins/protocol/",
    "--include=compiler/modules/",
    // The language server's checker runs in a Worker, loaded by URL.
    "--include=cli/_lsp_worker.ts",
    "--output",
    output,
    "cli/main.ts",
  ],
  stdout: "inherit",
  stderr: "piped",
});
const { code, stderr } = await command.output();
const message = new TextDecoder().decode(stderr);

if (code === 0) {
  console.error(`built ${output}`);
  Deno.exit(0);
}
if (/denort|Setting up base binary|error sending request/.test(message)) {
  console.error(
    "heddle build: `deno compile` must download Deno's runtime (denort) for the target, and " +
      "this machine cannot reach Deno's download servers. Build on a machine with internet " +
      "access, or set DENORT_BIN to a denort binary you already have.",
  );
  Deno.exit(1);
}
console.error(message.trimEnd());
Deno.exit(code);
