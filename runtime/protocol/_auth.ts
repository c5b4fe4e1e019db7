/**
 * Who may talk to a Heddle node, and how: every gRPC server a node runs (control plane,
 * worker, and the cluster's Flight endpoints) admits a call only when it carries the node's
 * shared token, and encrypts and checks certificates when TLS is configured. This is the
 * one place that knows the credentials, so that every service of every node is protected
 * the same way: the grpc-js services through `createServer` and `clientTransport`, the
 * data plane's own HTTP/2 (runtime/dataplane) through `requireToken`, `tokenMatches`,
 * `bearer` and `peerName`, with the same `Credentials`.
 *
 * The token authenticates (bearer metadata, compared in constant time); TLS protects it in
 * transit and, with a CA, requires client certificates (mutual TLS). A call without the
 * right token gets UNAUTHENTICATED before any handler runs, and nothing else.
 */
import type * as Grpc from "@grpc/grpc-js";
import { grpc } from "./_npm.ts";
import { Buffer } from "node:buffer";
import { timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate } from "node:tls";

/** PEM files of this node: its certificate and key, and the CA its peers are checked with. */
export interface TlsMaterial {
  cert: Uint8Array;
  key: Uint8Array;
  ca: Uint8Array;
}

/** What a node presents on its calls and requires on calls it serves. */
export interface Credentials {
  /** The shared bearer token; null only for a client that has none (its calls are refused). */
  token: string | null;
  /** TLS material, or null for plaintext (loopback, or an operator's `--insecure`). */
  tls: TlsMaterial | null;
}

/** The header (gRPC metadata) that carries a call's token, as `Bearer <token>`. */
export const TOKEN_HEADER = "authorization";

/** What a refused call is told, whatever was wrong with its token: nothing more. */
export const UNAUTHENTICATED_MESSAGE = "a valid token is required";

/** The value of `TOKEN_HEADER` that carries `token`. */
export function bearer(token: string): string {
  return `Bearer ${token}`;
}

/** Whether a `TOKEN_HEADER` value carries `token` (compared in constant time). */
export function tokenMatches(value: unknown, token: string): boolean {
  if (typeof value !== "string" || !value.startsWith("Bearer ")) return false;
  const given = new TextEncoder().encode(value.slice("Bearer ".length));
  const expected = new TextEncoder().encode(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The token a server requires; a server cannot be built without one. */
export function requireToken(credentials: Credentials): string {
  if (credentials.token === null) throw new Error("a server needs a token");
  return credentials.token;
}

/**
 * A server interceptor that ends every call whose metadata lacks `token` with
 * UNAUTHENTICATED, before the call's handler is started (so it sees no request at all).
 */
export function authInterceptor(token: string): Grpc.ServerInterceptor {
  return (_method, call) => {
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        if (tokenMatches(metadata.get(TOKEN_HEADER)[0], token)) next(metadata);
        else {call.sendStatus({
            code: grpc.status.UNAUTHENTICATED,
            details: UNAUTHENTICATED_MESSAGE,
          });}
      }).build();
    return new grpc.ServerInterceptingCall(
      call,
      new grpc.ResponderBuilder().withStart((next) => next(listener)).build(),
    );
  };
}

/** A gRPC server (with `options`) that admits only calls carrying `credentials.token`. */
export function createServer(
  credentials: Credentials,
  options: Grpc.ServerOptions = {},
): Grpc.Server {
  return new grpc.Server({
    ...options,
    interceptors: [authInterceptor(requireToken(credentials))],
  });
}

/** The server side of the transport: TLS (mutual when a CA is given) or plaintext. */
export function serverCredentials(credentials: Credentials): Grpc.ServerCredentials {
  const tls = credentials.tls;
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    Buffer.from(tls.ca),
    [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }],
    true,
  );
}

/** How a client reaches a node: the channel's credentials and the client's options. */
export interface ClientTransport {
  channel: Grpc.ChannelCredentials;
  options: Grpc.ClientOptions;
}

/** The host part of `host:port` or `[v6]:port`. */
function hostOf(address: string): string {
  return address.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
}

/**
 * How a client names the peer it dials at `host` over TLS: the SNI name it sends, and the
 * check of the peer's certificate against the host itself. Deno's TLS refuses an IP address
 * as the SNI name, and cluster peers are addressed by IP, so for an IP the SNI name is a
 * placeholder and the certificate must carry the IP as a subjectAltName.
 */
export function peerName(host: string): {
  servername: string;
  check: (cert: PeerCertificate) => Error | undefined;
} {
  return {
    servername: isIP(host) ? "heddle-node" : host,
    check: (cert) => checkServerIdentity(host, cert),
  };
}

/**
 * The client side of the transport to `address`: TLS with this node's certificate (or
 * plaintext), and an interceptor that adds the bearer token to every call. An interceptor
 * rather than call credentials, because grpc-js sends call credentials only over TLS and a
 * loopback daemon is plaintext.
 */
export function clientTransport(credentials: Credentials, address: string): ClientTransport {
  const options: Grpc.ClientOptions = {};
  const token = credentials.token;
  if (token !== null) {
    const interceptor: Grpc.Interceptor = (callOptions, nextCall) =>
      new grpc.InterceptingCall(nextCall(callOptions), {
        start: (metadata, listener, next) => {
          metadata.set(TOKEN_HEADER, bearer(token));
          next(metadata, listener);
        },
      });
    options.interceptors = [interceptor];
  }
  const tls = credentials.tls;
  if (!tls) return { channel: grpc.credentials.createInsecure(), options };
  const host = hostOf(address);
  const verify: Grpc.VerifyOptions = {};
  if (isIP(host)) {
    // grpc-js derives the SNI name from the target: see `peerName`.
    const peer = peerName(host);
    options["grpc.ssl_target_name_override"] = peer.servername;
    verify.checkServerIdentity = (_name, cert) => peer.check(cert);
  }
  return {
    channel: grpc.credentials.createSsl(
      Buffer.from(tls.ca),
      Buffer.from(tls.key),
      Buffer.from(tls.cert),
      verify,
    ),
    options,
  };
}

/** Whether `address` (`host:port`, `[v6]:port` or `unix:/path`) is reachable only locally. */
export function isLoopback(address: string): boolean {
  if (address.startsWith("unix:")) return true;
  const host = hostOf(address);
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A listen address the operator may not use as given, and why. */
export class ListenRefused extends Error {}

/**
 * Checks a listen address against the transport: beyond loopback, plaintext is refused
 * unless the operator says `--insecure`; returns a warning to print in that case.
 */
export function checkListen(
  address: string,
  credentials: Credentials,
  insecure: boolean,
): string | null {
  if (credentials.tls || isLoopback(address)) return null;
  if (!insecure) {
    throw new ListenRefused(
      `refusing to listen on ${address} without TLS: the token would cross the network in ` +
        "clear text; give --tls-cert, --tls-key and --tls-ca, or --insecure if the network " +
        "is trusted",
    );
  }
  return `warning: listening on ${address} without TLS (--insecure): anyone on the network ` +
    "can read the token and the programs sent to this node";
}
