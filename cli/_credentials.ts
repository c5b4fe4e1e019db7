/**
 * The options that say how a command authenticates to, or as, a Heddle node: `--state`
 * (whose `token` the daemon writes and a local client reads), `--token-file` and the TLS
 * files. Defined once so that daemons and clients spell them identically, and credential
 * problems become one line and exit 1 rather than a stack trace.
 */
import type { Command, OptionValues } from "@commander-js/extra-typings";
import {
  clientCredentials,
  CredentialError,
  type CredentialOptions,
  type Credentials,
  defaultStateDir,
  nodeCredentials,
} from "../runtime/protocol/mod.ts";
import { CliError, ExitCode } from "./_terminal.ts";

/** Adds `--state`, `--token-file`, `--tls-cert`, `--tls-key` and `--tls-ca` to `command`. */
export function withCredentialOptions<
  Args extends unknown[],
  Opts extends OptionValues,
  Globals extends OptionValues,
>(command: Command<Args, Opts, Globals>) {
  return command
    .option("--state <dir>", "the daemon's state directory, holding its token", defaultStateDir())
    .option("--token-file <file>", "read the token from this file (0600) instead of --state")
    .option("--tls-cert <file>", "this side's TLS certificate (PEM)")
    .option("--tls-key <file>", "this side's TLS private key (PEM)")
    .option("--tls-ca <file>", "the CA that signed the other side's certificate (PEM)");
}

function translate<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CredentialError) throw new CliError(e.message, ExitCode.failure);
    throw e;
  }
}

/** A client's credentials (see `clientCredentials`), errors as `CliError`. */
export function clientCredentialsOf(options: CredentialOptions): Credentials {
  return translate(() => clientCredentials(options));
}

/** A node's credentials (see `nodeCredentials`), errors as `CliError`. */
export function nodeCredentialsOf(options: CredentialOptions, create: boolean): Credentials {
  return translate(() => nodeCredentials(options, create));
}
