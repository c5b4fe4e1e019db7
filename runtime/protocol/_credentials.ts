/**
 * Where a node's and a client's credentials come from. A daemon writes a random token into
 * its private state directory on first start; a client on the same machine reads it from
 * there, so the daemon's owner never handles it, while nobody else can read it. Remote
 * clients and other nodes get the same token as a file (`--token-file`) and, across a
 * network, certificates (`--tls-cert`, `--tls-key`, `--tls-ca`). Reading options into
 * `Credentials` happens here once; the transport (`_auth.ts`) trusts what it is given.
 */
import { ensurePrivateDir, readPrivateFile, UnsafePathError, writePrivateFile } from "../fs/mod.ts";
import type { Credentials, TlsMaterial } from "./_auth.ts";

/** Where the credentials are, as the command line gives them. */
export interface CredentialOptions {
  /** The state directory (`--state`): holds `token` unless `tokenFile` is given. */
  state: string;
  tokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

/** Credentials that cannot be read or are unsafe; the message says which and why. */
export class CredentialError extends Error {}

/** `--state`'s default: `$HEDDLE_STATE_DIR`, else `~/.heddle`. */
export function defaultStateDir(): string {
  return Deno.env.get("HEDDLE_STATE_DIR") ?? `${Deno.env.get("HOME") ?? "."}/.heddle`;
}

/** The token file inside a state directory. */
export function tokenPath(state: string): string {
  return `${state}/token`;
}

function attempt<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UnsafePathError) throw new CredentialError(e.message);
    const reason = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (e as Error).message;
    throw new CredentialError(`cannot read ${what}: ${reason}`);
  }
}

function readToken(path: string): string {
  const token = attempt(`the token file ${path}`, () => readPrivateFile(path)).trim();
  if (token.length < 16) {
    throw new CredentialError(`the token in ${path} is too short (at least 16 characters)`);
  }
  return token;
}

function readTls(options: CredentialOptions): TlsMaterial | null {
  const { tlsCert, tlsKey, tlsCa } = options;
  if (tlsCert === undefined && tlsKey === undefined && tlsCa === undefined) return null;
  if (tlsCert === undefined || tlsKey === undefined || tlsCa === undefined) {
    throw new CredentialError("TLS needs --tls-cert, --tls-key and --tls-ca together");
  }
  return {
    cert: attempt(`the certificate ${tlsCert}`, () => Deno.readFileSync(tlsCert)),
    key: attempt(`the key ${tlsKey}`, () => new TextEncoder().encode(readPrivateFile(tlsKey))),
    ca: attempt(`the CA certificate ${tlsCa}`, () => Deno.readFileSync(tlsCa)),
  };
}

/** A fresh token: 32 random bytes, hex. */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The credentials of a node that serves calls. With `create`, a node that has no token yet
 * (no `--token-file`, none in its state directory) makes one: 32 random bytes, hex, in a
 * 0600 file of its 0700 state directory. Without it (a worker joining a control plane
 * elsewhere), a missing token is an error, since it must be the control plane's.
 */
export function nodeCredentials(options: CredentialOptions, create: boolean): Credentials {
  const tls = readTls(options);
  if (options.tokenFile !== undefined) return { token: readToken(options.tokenFile), tls };
  const path = tokenPath(options.state);
  if (!create) {
    if (!exists(path)) {
      throw new CredentialError(
        `no token: give --token-file with the control plane's token (not found in ${path})`,
      );
    }
    return { token: readToken(path), tls };
  }
  attempt(`the state directory ${options.state}`, () => ensurePrivateDir(options.state));
  if (!exists(path)) {
    try {
      writePrivateFile(path, newToken() + "\n");
    } catch (e) {
      // Another node starting at the same moment wrote it first: use theirs.
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
  }
  return { token: readToken(path), tls };
}

/**
 * The credentials of a client (`heddle workflow`): `--token-file`, else the token in the
 * state directory when there is one. With no token at all the calls go out without one and
 * the server's UNAUTHENTICATED answer says what is missing.
 */
export function clientCredentials(options: CredentialOptions): Credentials {
  const tls = readTls(options);
  if (options.tokenFile !== undefined) return { token: readToken(options.tokenFile), tls };
  const path = tokenPath(options.state);
  return { token: exists(path) ? readToken(path) : null, tls };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    // Present but unreachable (a directory we may not enter): reading it says why.
    return true;
  }
}
