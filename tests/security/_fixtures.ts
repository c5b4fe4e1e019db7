/**
 * What the security tests share: a real `heddle local` daemon as a child process, test
 * certificates made with `openssl` at test time (no private key is ever committed), raw
 * gRPC calls made with `curl` the way an attacker without Heddle's client would, and
 * running commands as the unprivileged user `nobody`.
 */
import assert from "node:assert/strict";
import { type CliResult, heddle, spawnHeddle } from "../_cli.ts";

export const examples = new URL("../../examples/", import.meta.url).pathname;

export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export interface Daemon {
  child: Deno.ChildProcess;
  /** The control plane's address. */
  address: string;
  /** The worker's address. */
  worker: string;
  state: string;
  /** Stops it with SIGTERM, checks it exited 0, and returns the rest of its stderr. */
  stop(): Promise<string>;
}

/** Starts `heddle local` with `--state state` on a free loopback port, plus `args`. */
export async function startDaemon(
  state: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<Daemon> {
  const address = `127.0.0.1:${freePort()}`;
  const child = spawnHeddle(["local", "--listen", address, "--state", state, ...args], {
    env: { HEDDLE_PATH: `${examples}plugins`, ...env },
  });
  // One reader for the daemon's whole stderr: the start lines now, the rest at stop.
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  let worker: string | undefined;
  while (worker === undefined) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`heddle local exited before it listened:\n${log}`);
    log += value;
    worker = /worker listening on (\S+)\n/.exec(log)?.[1];
  }
  return {
    child,
    address,
    worker,
    state,
    stop: async () => {
      // A daemon that died early fails below with its log, not with kill's own error.
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      const [status, rest] = await Promise.all([child.status, readRest(reader)]);
      await child.stdout.cancel();
      assert.equal(status.code, 0, `exit ${status.code} signal ${status.signal}\n${log}${rest}`);
      return log + rest;
    },
  };
}

/** What is left to read from `reader`. */
async function readRest(reader: ReadableStreamDefaultReader<string>): Promise<string> {
  let text = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
  return text;
}

/** The `heddle workflow` options of the daemon's owner: its address and state directory. */
export function ownerOf(daemon: Daemon): string[] {
  return ["--server", daemon.address, "--state", daemon.state];
}

/** `heddle workflow start --wait --output json` as the owner of a daemon (`ownerOf`). */
export function startAndWait(owner: string[], workflow: string): Promise<CliResult> {
  return heddle(["workflow", "start", "--wait", "--output", "json", ...owner, workflow]);
}

/** A program with `n` workflows, each reading and writing its own file. */
export function manyWorkflows(n: number): string {
  const workflows = Array.from(
    { length: n },
    (_, i) =>
      `workflow W${i} {\n  file.read { path: "in${i}.csv", format: "csv" } : { n: int64 }\n` +
      `  | file.write { path: "out${i}.csv", format: "csv" }\n}\n`,
  );
  return 'import "fhub/file" file\n' + workflows.join("");
}

/** Runs a command and returns its exit code and output. */
export async function sh(
  cmd: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: options.cwd,
    env: options.env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/**
 * Whether this process can act as another user (root, as in CI). Elsewhere a test that
 * needs it skips with one line, unless HEDDLE_REQUIRE_SERVICES=1 says it must run.
 */
export function canSwitchUser(name: string): boolean {
  if (Deno.uid() === 0) return true;
  if (Deno.env.get("HEDDLE_REQUIRE_SERVICES") === "1") {
    throw new Error(`${name} must run as root (HEDDLE_REQUIRE_SERVICES=1)`);
  }
  console.log(`skipping ${name}: needs root to run commands as nobody`);
  return false;
}

/** Runs `cmd` as the user `nobody` with no supplementary groups. */
export function asNobody(cmd: string[], options: { cwd?: string } = {}) {
  return sh(
    ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", ...cmd],
    { cwd: options.cwd ?? "/", env: { PATH: "/usr/bin:/bin", HOME: "/nonexistent" } },
  );
}

/** A protobuf length-delimited field (wire type 2) holding `text`. */
function field(number: number, text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const varint: number[] = [];
  let n = bytes.length;
  do {
    varint.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return new Uint8Array([(number << 3) | 2, ...varint, ...bytes]);
}

/** A gRPC request body: one uncompressed message made of string fields. */
export function grpcBody(fields: [number, string][]): Uint8Array {
  const parts = fields.map(([n, t]) => field(n, t));
  const length = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(5 + length);
  new DataView(out.buffer).setUint32(1, length);
  let at = 5;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Calls `method` (`/package.Service/Method`) at `address` with `curl` over HTTP/2, as a
 * user with no Heddle client would, and returns the gRPC status it got. Each call is bounded
 * in time and tried once more when no answer came: under load, Deno's `node:http2` server
 * has been seen to leave one refused streaming call unanswered (the next call on a new
 * connection is answered at once); an answer other than UNAUTHENTICATED still fails.
 */
export async function curlGrpc(
  run: typeof sh,
  address: string,
  method: string,
  bodyFile: string,
  headers: string[] = [],
): Promise<number> {
  let answer = "";
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = await run([
      "curl",
      "-s",
      "--max-time",
      "15",
      "--http2-prior-knowledge",
      "-H",
      "content-type: application/grpc",
      "-H",
      "te: trailers",
      ...headers.flatMap((h) => ["-H", h]),
      "--data-binary",
      `@${bodyFile}`,
      "-D",
      "-",
      "-o",
      "/dev/null",
      `http://${address}${method}`,
    ]);
    const status = /grpc-status: (\d+)/.exec(r.stdout);
    if (status) return Number(status[1]);
    answer += `${r.stdout}${r.stderr}`;
  }
  assert.fail(`no gRPC status from ${method} in two tries: ${answer}`);
}

export interface Certs {
  dir: string;
  ca: string;
  /** A node certificate (server and client use) for 127.0.0.1 signed by `ca`. */
  cert: string;
  key: string;
  /** A certificate for 127.0.0.1 signed by another CA the daemon does not trust. */
  rogueCert: string;
  rogueKey: string;
  rogueCa: string;
}

async function openssl(dir: string, ...args: string[]): Promise<void> {
  const r = await sh(["openssl", ...args], { cwd: dir });
  assert.equal(r.code, 0, `openssl ${args.join(" ")}: ${r.stderr}`);
}

/** Makes a CA and a node certificate for 127.0.0.1, and the same from a second, rogue CA. */
export async function makeCerts(): Promise<Certs> {
  const dir = await Deno.makeTempDir({ prefix: "heddle-certs-" });
  await Deno.writeTextFile(
    `${dir}/node.ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
  );
  for (const name of ["ca", "rogue-ca"]) {
    await openssl(
      dir,
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=heddle test ${name}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
    );
  }
  for (const [name, ca] of [["node", "ca"], ["rogue", "rogue-ca"]]) {
    await openssl(
      dir,
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=127.0.0.1",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
    );
    await openssl(
      dir,
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${ca}.pem`,
      "-CAkey",
      `${ca}.key`,
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      "node.ext",
      "-out",
      `${name}.pem`,
    );
    await Deno.chmod(`${dir}/${name}.key`, 0o600);
  }
  return {
    dir,
    ca: `${dir}/ca.pem`,
    cert: `${dir}/node.pem`,
    key: `${dir}/node.key`,
    rogueCert: `${dir}/rogue.pem`,
    rogueKey: `${dir}/rogue.key`,
    rogueCa: `${dir}/rogue-ca.pem`,
  };
}

/** The mode bits of `path` (permissions only). */
export function modeOf(path: string): number {
  return (Deno.statSync(path).mode ?? 0) & 0o777;
}
