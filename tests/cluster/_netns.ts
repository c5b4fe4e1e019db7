/**
 * Several hosts on one machine, for the cluster's tests and benchmark: each node is a Linux
 * network namespace with its own address (a veth pair into a bridge this harness creates)
 * and every process started in it gets its own mount namespace with a private tmpfs on
 * /dev/shm, so nodes share neither shared memory nor loopback: only the network carries
 * data between them. Addresses come from 10.201.0.0/16, one /24 per harness (picked from the
 * pid), used only inside these namespaces and on the bridge; the host's side of the bridge
 * is `.1`, which is how a node reaches a host port exposed with `exposeHostPort` (services
 * on the host listen on 127.0.0.1, which inside a namespace is the node's own loopback).
 *
 * Everything is removed by `[Symbol.asyncDispose]` (processes, namespaces, veths, bridge),
 * also when the test failed; a harness killed with -9 leaves names with its pid in them,
 * and the next harness removes those whose pid is dead. It never touches an interface or
 * namespace it did not name.
 */

const PREFIX = "hdn"; // namespaces hdn<pid>-<i>, veths hdv<pid>-<i>, bridges hdb<pid>

/** Why namespaces cannot be used here, or undefined when they can. */
export async function namespacesUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "network namespaces need root";
  const probe = `${PREFIX}probe${Deno.pid}`;
  const added = await run(["ip", "netns", "add", probe], { check: false });
  if (!added.ok) return `ip netns add failed: ${added.stderr.trim()}`;
  await run(["ip", "netns", "del", probe], { check: false });
  return undefined;
}

/** Probed once at load: `Deno.test`'s `ignore` is decided when a test is declared. */
const unavailable = await namespacesUnavailable();

/**
 * A test that needs namespaces. Where they are not permitted it is declared ignored (the
 * runner counts it, one `skip:` line says why); under HEDDLE_REQUIRE_SERVICES=1 (as CI sets
 * it) it runs and fails instead.
 */
export function clusterTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  const required = Deno.env.get("HEDDLE_REQUIRE_SERVICES") === "1";
  if (unavailable !== undefined && !required) console.log(`skip: ${name}: ${unavailable}`);
  Deno.test({
    name,
    ignore: unavailable !== undefined && !required,
    async fn(t) {
      if (unavailable !== undefined) {
        throw new Error(`${unavailable}; HEDDLE_REQUIRE_SERVICES=1 requires namespaces`);
      }
      await fn(t);
    },
  });
}

interface RunResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

async function run(args: string[], options: { check?: boolean } = {}): Promise<RunResult> {
  const output = await new Deno.Command(args[0], {
    args: args.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const result = {
    ok: output.success,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
  if (!result.ok && options.check !== false) {
    throw new Error(`${args.join(" ")} failed: ${result.stderr.trim()}`);
  }
  return result;
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch (error) {
    return !(error instanceof Deno.errors.NotFound);
  }
}

/** Removes namespaces, veths and bridges that harnesses of dead processes left behind. */
async function sweepStale(): Promise<void> {
  const stale = (name: string, prefix: string) => {
    const match = new RegExp(`^${prefix}(\\d+)(-\\d+)?$`).exec(name);
    return match !== null && Number(match[1]) !== Deno.pid && !alive(Number(match[1]));
  };
  const namespaces = (await run(["ip", "netns", "list"], { check: false })).stdout
    .split("\n").map((line) => line.split(" ")[0]).filter((n) => stale(n, PREFIX));
  for (const ns of namespaces) await removeNamespace(ns);
  const links = (await run(["ip", "-o", "link", "show"], { check: false })).stdout
    .split("\n").map((line) => line.split(": ")[1]?.split("@")[0] ?? "")
    .filter((n) => stale(n, "hdv") || stale(n, "hdb"));
  for (const link of links) await run(["ip", "link", "del", link], { check: false });
}

async function removeNamespace(ns: string): Promise<void> {
  const pids = (await run(["ip", "netns", "pids", ns], { check: false })).stdout
    .split("\n").filter((p) => /^\d+$/.test(p)).map(Number);
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await run(["ip", "netns", "del", ns], { check: false });
}

/** A process started on a node. */
export interface NodeProcess {
  readonly child: Deno.ChildProcess;
  /** The process's stdout, line by line (stdout is consumed here). */
  readonly lines: AsyncIterator<string>;
  /** Writes a line to the process's stdin. */
  send(line: string): Promise<void>;
  /** Closes stdin and waits for the exit. */
  finish(): Promise<Deno.CommandStatus>;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Directories covered by an empty private tmpfs for this process: the node lacks them. */
  hide?: string[];
}

/** One host: a network namespace with an address and a private /dev/shm per process. */
export class NetnsNode {
  #processes: Deno.ChildProcess[] = [];

  constructor(readonly name: string, readonly namespace: string, readonly address: string) {}

  /** The argv that runs `command` inside this node (network and mount namespaces). */
  wrap(command: string[], hide: string[] = []): string[] {
    const mounts = ["/dev/shm", ...hide].map((dir) => `mount -t tmpfs -o mode=1777 tmpfs '${dir}'`);
    return [
      "ip",
      "netns",
      "exec",
      this.namespace,
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      `${mounts.join(" && ")} && exec "$@"`,
      "sh",
      ...command,
    ];
  }

  /** Starts `command` on the node with piped stdin/stdout (stderr is inherited). */
  spawn(command: string[], options: SpawnOptions = {}): NodeProcess {
    const argv = this.wrap(command, options.hide);
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
      env: options.env,
      cwd: options.cwd,
    }).spawn();
    this.#processes.push(child);
    const lines = readLines(child.stdout);
    const writer = child.stdin.getWriter();
    let closed = false;
    return {
      child,
      lines,
      send: (line) => writer.write(new TextEncoder().encode(line + "\n")),
      async finish() {
        if (!closed) await writer.close().catch(() => {});
        closed = true;
        return await child.status;
      },
    };
  }

  /** Runs `command` on the node to completion and returns its stdout. */
  async output(command: string[], options: SpawnOptions = {}): Promise<string> {
    const argv = this.wrap(command, options.hide);
    const output = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdout: "piped",
      stderr: "piped",
      env: options.env,
      cwd: options.cwd,
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    if (!output.success) throw new Error(`${command.join(" ")} on ${this.name} failed: ${stderr}`);
    return new TextDecoder().decode(output.stdout);
  }

  /** Kills whatever still runs on the node. */
  async stop(): Promise<void> {
    for (const child of this.#processes) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Exited already.
      }
      await child.status.catch(() => {});
    }
    this.#processes = [];
  }
}

async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
  }
  if (buffered !== "") yield buffered;
}

const FORWARD_SCRIPT = new URL("./_forward.ts", import.meta.url).pathname;

/** Several nodes on one bridge; dispose it to remove everything. */
export class NetnsCluster implements AsyncDisposable {
  readonly nodes: NetnsNode[] = [];
  #forwarders: Deno.TcpListener[] = [];

  private constructor(
    readonly bridge: string,
    readonly subnet: string,
    /** The host's address on the bridge: how nodes reach the host. */
    readonly hostAddress: string,
  ) {}

  /** Creates `count` nodes (`count` ≤ 200), each with its own namespace and address. */
  static async create(count: number): Promise<NetnsCluster> {
    await sweepStale();
    const third = (Deno.pid % 250) + 1;
    const subnet = `10.201.${third}`;
    const cluster = new NetnsCluster(`hdb${Deno.pid}`, `${subnet}.0/24`, `${subnet}.1`);
    try {
      await run(["ip", "link", "add", cluster.bridge, "type", "bridge"]);
      await run(["ip", "addr", "add", `${cluster.hostAddress}/24`, "dev", cluster.bridge]);
      await run(["ip", "link", "set", cluster.bridge, "up"]);
      for (let i = 0; i < count; i++) {
        const namespace = `${PREFIX}${Deno.pid}-${i}`;
        const veth = `hdv${Deno.pid}-${i}`;
        const address = `${subnet}.${i + 2}`;
        await run(["ip", "netns", "add", namespace]);
        cluster.nodes.push(new NetnsNode(`node${i}`, namespace, address));
        await run([
          "ip",
          "link",
          "add",
          veth,
          "type",
          "veth",
          "peer",
          "name",
          "eth0",
          "netns",
          namespace,
        ]);
        await run(["ip", "link", "set", veth, "master", cluster.bridge, "up"]);
        const inside = ["ip", "netns", "exec", namespace];
        await run([...inside, "ip", "addr", "add", `${address}/24`, "dev", "eth0"]);
        await run([...inside, "ip", "link", "set", "eth0", "up"]);
        await run([...inside, "ip", "link", "set", "lo", "up"]);
        await run([...inside, "ip", "route", "add", "default", "via", cluster.hostAddress]);
      }
    } catch (error) {
      await cluster[Symbol.asyncDispose]();
      throw error;
    }
    return cluster;
  }

  /**
   * Makes a port that listens on the host's loopback reachable from the nodes at
   * `hostAddress:port` (a TCP relay on the bridge address; closed on dispose).
   */
  exposeHostPort(port: number): string {
    const listener = Deno.listen({ hostname: this.hostAddress, port });
    this.#forwarders.push(listener);
    (async () => {
      for await (const inbound of listener) {
        Deno.connect({ hostname: "127.0.0.1", port }).then((outbound) => {
          inbound.readable.pipeTo(outbound.writable).catch(() => {});
          outbound.readable.pipeTo(inbound.writable).catch(() => {});
        }, () => inbound.close());
      }
    })().catch(() => {});
    return `${this.hostAddress}:${port}`;
  }

  /**
   * Makes services on the host's loopback reachable on every node at `127.0.0.1:port`, the
   * address they listen on and advertise: the host relays the bridge address to its
   * loopback, and a relay on each node (`_forward.ts`) its loopback to the bridge.
   */
  async reachHostServices(ports: number[]): Promise<void> {
    for (const port of ports) this.exposeHostPort(port);
    for (const node of this.nodes) {
      const relay = node.spawn([
        Deno.execPath(),
        "run",
        "-A",
        FORWARD_SCRIPT,
        this.hostAddress,
        ...ports.map(String),
      ]);
      const line = await relay.lines.next();
      if (line.value !== "ready") throw new Error(`the relay on ${node.name} did not start`);
    }
  }

  /** The names this cluster created, for checks that everything went. */
  names(): { namespaces: string[]; links: string[] } {
    return {
      namespaces: this.nodes.map((n) => n.namespace),
      links: [this.bridge, ...this.nodes.map((_, i) => `hdv${Deno.pid}-${i}`)],
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const listener of this.#forwarders) {
      try {
        listener.close();
      } catch {
        // Closed already.
      }
    }
    for (const node of this.nodes) await node.stop();
    for (const node of this.nodes) await removeNamespace(node.namespace);
    // Deleting a namespace deletes its veth ends; the bridge is ours to remove.
    for (const { links } of [this.names()]) {
      for (const link of links) await run(["ip", "link", "del", link], { check: false });
    }
  }
}

/** Whether the namespace or link still exists (for tests of the cleanup). */
export async function leftovers(names: { namespaces: string[]; links: string[] }) {
  const namespaces = (await run(["ip", "netns", "list"], { check: false })).stdout;
  const links = (await run(["ip", "-o", "link", "show"], { check: false })).stdout;
  return [
    ...names.namespaces.filter((n) => new RegExp(`^${n}( |$)`, "m").test(namespaces)),
    ...names.links.filter((l) => links.includes(` ${l}:`) || links.includes(` ${l}@`)),
  ];
}
