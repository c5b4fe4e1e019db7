/**
 * Who may talk to a Heddle node, and how: every gRPC server a node runs (control plane,
 * worker, and the cluster's Flight endpoints) admits a call only when it carries the node's
 * shared token, and encrypts and checks certificates when TLS is configured. This is the
 * one place that knows the transport's credentials, so that every service of every node
 * is protected the same way; a server built without `createServer` has no protection.
 *
 * The token authenticates (bearer metadata, compared in constant time); TLS protects it in
 * transit and, with a CA, requires client certificates (mutual TLS). A call without the
 * right token gets UNAUTHENTICATED before any handler runs, and nothing else.
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import { checkServerIdentity } from "node:tls";

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

const HEADER = "authorization";

function bearerOf(metadata: grpc.Metadata): string | null {
  const value = metadata.get(HEADER)[0];
  if (typeof value !== "string" || !value.startsWith("Bearer ")) return null;
  return value.slice("Bearer ".length);
}

function sameToken(given: string | null, expected: string): boolean {
  if (given === null) return false;
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * A server interceptor that ends every call whose metadata lacks `token` with
 * UNAUTHENTICATED, before the call's handler is started (so it sees no request at all).
 */
export function authInterceptor(token: string): grpc.ServerInterceptor {
  return (_method, call) => {
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        if (sameToken(bearerOf(metadata), token)) next(metadata);
        else {
          call.sendStatus({
            code: grpc.status.UNAUTHENTICATED,
            details: "a valid token is required",
          });
        }
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
  options: grpc.ServerOptions = {},
): grpc.Server {
  if (credentials.token === null) throw new Error("a server needs a token");
  return new grpc.Server({ ...options, interceptors: [authInterceptor(credentials.token)] });
}

/** The server side of the transport: TLS (mutual when a CA is given) or plaintext. */
export function serverCredentials(credentials: Credentials): grpc.ServerCredentials {
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
  channel: grpc.ChannelCredentials;
  options: grpc.ClientOptions;
}

/** The host part of `host:port` or `[v6]:port`. */
function hostOf(address: string): string {
  return address.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
}

/**
 * The client side of the transport to `address`: TLS with this node's certificate (or
 * plaintext), and an interceptor that adds the bearer token to every call. An interceptor
 * rather than call credentials, because grpc-js sends call credentials only over TLS and a
 * loopback daemon is plaintext.
 */
export function clientTransport(credentials: Credentials, address: string): ClientTransport {
  const options: grpc.ClientOptions = {};
  const token = credentials.token;
  if (token !== null) {
    const interceptor: grpc.Interceptor = (callOptions, nextCall) =>
      new grpc.InterceptingCall(nextCall(callOptions), {
        start: (metadata, listener, next) => {
          metadata.set(HEADER, `Bearer ${token}`);
          next(metadata, listener);
        },
      });
    options.interceptors = [interceptor];
  }
  const tls = credentials.tls;
  if (!tls) return { channel: grpc.credentials.createInsecure(), options };
  const host = hostOf(address);
  const verify: grpc.VerifyOptions = {};
  if (isIP(host)) {
    // Deno's TLS refuses an IP address as the SNI name that grpc-js derives from the
    // target, so the SNI name is a placeholder and the certificate is checked against the
    // address itself (its IP subjectAltName) here.
    options["grpc.ssl_target_name_override"] = "heddle-node";
    verify.checkServerIdentity = (_name, cert) => checkServerIdentity(host, cert);
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
