/**
 * Serving the web UI and `/metrics` from a command that hosts a control plane: `--ui-listen`
 * on the daemons, `--ui` on `heddle run`. One place decides what an address means (`off`, the
 * default, one given), applies the listen rules of every other service (loopback, or TLS,
 * or `--insecure` with a warning) and announces the address with its token on stderr.
 */
import { Option } from "@commander-js/extra-typings";
import type { ControlPlane } from "../runtime/control/mod.ts";
import { checkListen, type Credentials, ListenRefused } from "../runtime/protocol/mod.ts";
import { DEFAULT_UI_ADDRESS, serveUi, UiListenError, type UiServer } from "../runtime/ui/mod.ts";
import { Metrics } from "../runtime/metrics/mod.ts";
import { CliError, ExitCode, jsonLine, type Terminal } from "./_terminal.ts";

/** `--ui-listen <address|off>`; left unset, the default address is tried. */
export function uiListenOption() {
  return new Option(
    "--ui-listen <address>",
    `where the web UI and /metrics listen, or \`off\` (default: ${DEFAULT_UI_ADDRESS}; ` +
      "when that port is taken, the daemon starts without a UI and says so)",
  );
}

export interface UiStart {
  control: ControlPlane;
  /** The `--ui-listen` value; undefined: the default address, skipped when it is taken. */
  address: string | undefined;
  credentials: Credentials;
  insecure: boolean;
  output: "text" | "json";
}

/** Serves the UI unless `off`; returns null when it is off or the default port was taken. */
export function startUi(term: Terminal, options: UiStart): UiServer | null {
  if (options.address === "off") return null;
  const address = options.address ?? DEFAULT_UI_ADDRESS;
  const token = options.credentials.token;
  if (token === null) throw new Error("the UI needs the node's token");
  try {
    const warning = checkListen(address, options.credentials, options.insecure);
    if (warning) term.err(`heddle: ${warning}\n`);
    const metrics = new Metrics({
      control: options.control,
      workers: () => options.control.workers(),
    });
    let server: UiServer;
    try {
      server = serveUi({
        control: options.control,
        address,
        token,
        tls: options.credentials.tls,
        routes: new Map([["/metrics", () => metrics.respond()]]),
      });
    } catch (e) {
      metrics.close();
      throw e;
    }
    if (options.output === "json") {
      term.out(jsonLine({ role: "ui", address: server.address, url: server.url }));
    } else term.err(`heddle: ui listening on ${server.url}\n`);
    return {
      ...server,
      close: async () => {
        await server.close();
        metrics.close();
      },
    };
  } catch (e) {
    if (e instanceof UiListenError && e.inUse && options.address === undefined) {
      term.err(`heddle: warning: ${e.message}; starting without a UI (see --ui-listen)\n`);
      return null;
    }
    if (e instanceof UiListenError || e instanceof ListenRefused) {
      throw new CliError(`--ui-listen: ${e.message}`, ExitCode.usage);
    }
    throw e;
  }
}
