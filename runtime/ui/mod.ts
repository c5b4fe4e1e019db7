/**
 * The web UI of a control plane (`docs/ui.md`): workflows, their graphs, runs live and past,
 * Stop and Start again, and `/metrics` on the same address. It is served by whoever hosts
 * the control plane (`heddle local`, `heddle cluster --control-plane`, `heddle run --ui`)
 * and asks for the node's token like every other way in (`_auth.ts`).
 */
import type { TlsMaterial } from "../protocol/mod.ts";
import { type ExtraRoute, UiApp, type UiControl } from "./_server.ts";

export type { ExtraRoute, UiControl } from "./_server.ts";
export type { FrontPage, RunRow, RunView, WorkflowPage } from "./_views.ts";

/** Where `heddle local` and `heddle cluster --control-plane` serve the UI unless told. */
export const DEFAULT_UI_ADDRESS = "127.0.0.1:7448";

export interface UiOptions {
  control: UiControl;
  /** `host:port`; port 0 picks a free one. */
  address: string;
  /** Required on every request (`?token=` once, then a cookie; or a bearer header). */
  token: string;
  /** Serve HTTPS with the node's certificate and key. */
  tls: TlsMaterial | null;
  /** More paths served behind the same token (`/metrics`). */
  routes?: Map<string, ExtraRoute>;
}

export interface UiServer {
  /** The address actually bound, `host:port`. */
  address: string;
  /** The address to open, carrying the token. */
  url: string;
  close(): Promise<void>;
}

/** Why the UI could not listen (address in use, not an address), for one line on stderr. */
export class UiListenError extends Error {
  constructor(message: string, readonly inUse: boolean) {
    super(message);
  }
}

export function parseAddress(address: string): { hostname: string; port: number } {
  const match = address.match(/^\[?([^\]]*?)\]?:(\d+)$/);
  const port = match ? Number(match[2]) : NaN;
  if (!match || !match[1] || !(port >= 0 && port <= 65535)) {
    throw new UiListenError(`\`${address}\` is not a host:port address`, false);
  }
  return { hostname: match[1], port };
}

/** Starts serving; fails with `UiListenError` when the address cannot be bound. */
export function serveUi(options: UiOptions): UiServer {
  const { hostname, port } = parseAddress(options.address);
  const app = new UiApp(options.control, options.token, options.routes);
  const controller = new AbortController();
  let server: Deno.HttpServer<Deno.NetAddr>;
  const tls = options.tls
    ? {
      cert: new TextDecoder().decode(options.tls.cert),
      key: new TextDecoder().decode(options.tls.key),
    }
    : {};
  try {
    server = Deno.serve({
      hostname,
      port,
      signal: controller.signal,
      onListen: () => {},
      ...tls,
    }, (request) => app.handle(request));
  } catch (e) {
    const inUse = e instanceof Deno.errors.AddrInUse;
    throw new UiListenError(
      `cannot serve the UI on ${options.address}: ${
        inUse ? "address in use" : (e as Error).message
      }`,
      inUse,
    );
  }
  const bound = server.addr;
  const host = bound.hostname.includes(":") ? `[${bound.hostname}]` : bound.hostname;
  const address = `${host}:${bound.port}`;
  return {
    address,
    url: `${options.tls ? "https" : "http"}://${address}/?token=${options.token}`,
    close: async () => {
      app.close();
      controller.abort();
      await server.finished;
    },
  };
}
