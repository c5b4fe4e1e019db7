/**
 * The cluster benchmark: Arrow Flight throughput of one edge between two hosts (two network
 * namespaces joined by a veth pair and a bridge, tests/cluster/_netns.ts), Heddle's data
 * plane against pyarrow.flight (Arrow C++) moving the same table over the same veth in the
 * same run. Heddle's consumer adopts every stream into its registry (validated, in shared
 * memory), pyarrow's reads it into memory. A third row crosses them (pyarrow's client against
 * Heddle's server) to tell which side bounds Heddle. Cold is each pair's first transfer on a
 * fresh connection, warm the median of the rest. Needs root; otherwise the section is skipped.
 */
import { tableFromArrays } from "apache-arrow";
import { encodeStream } from "../runtime/registry/mod.ts";
import {
  FLIGHT_PEER,
  namespacesUnavailable,
  NetnsCluster,
  NODE_SCRIPT,
  type NodeProcess,
} from "../tests/cluster/mod.ts";
import { type BenchSection, median, row } from "./_report.ts";

export interface ClusterOptions {
  /** Size of the table's Arrow IPC stream, in MB. */
  megabytes: number;
  /** Warm transfers per pair (one cold transfer comes first). */
  runs: number;
  log: (line: string) => void;
}

const ROOT = new URL("..", import.meta.url).pathname;
const BATCH_ROWS = 262_144;

/** A numeric table (float64 and int32 columns) of about `megabytes`, as an IPC stream file. */
async function writeTable(path: string, megabytes: number): Promise<number> {
  const rows = Math.max(1, Math.round((megabytes * 1e6) / 12));
  const batches = [];
  for (let start = 0; start < rows; start += BATCH_ROWS) {
    const n = Math.min(BATCH_ROWS, rows - start);
    const x = new Float64Array(n);
    const v = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = (start + i) * 0.25;
      v[i] = (start + i) % 1000;
    }
    batches.push(...tableFromArrays({ x, v }).batches);
  }
  const stream = encodeStream(batches);
  const bytes = new Uint8Array(stream.byteLength);
  stream.writeInto(bytes);
  await Deno.writeFile(path, bytes);
  return stream.byteLength;
}

async function firstLine(process: NodeProcess, what: string): Promise<string> {
  const line = await process.lines.next();
  if (line.done) throw new Error(`${what} exited before it answered`);
  return line.value;
}

/** The token every node and client of the run uses (`_node.ts` and the pyarrow peer read it). */
const env = { HEDDLE_TOKEN: crypto.randomUUID() };

/** Seconds of each transfer, as the consumer measured them. */
async function transfers(node: NetnsCluster["nodes"][number], command: string[]) {
  const result = JSON.parse(await node.output(command, { cwd: ROOT, env }));
  return result.seconds as number[];
}

export async function benchCluster(o: ClusterOptions): Promise<BenchSection> {
  const section: BenchSection = {
    name: "cluster",
    title: `Arrow Flight, one edge between two network namespaces (${o.megabytes} MB table)`,
    runs: o.runs,
    rows: [],
    notes: [],
  };
  const unavailable = await namespacesUnavailable();
  if (unavailable !== undefined) return { ...section, skipped: unavailable };
  const dir = await Deno.makeTempDir({ prefix: "heddle-bench-cluster-" });
  try {
    const path = `${dir}/table.arrows`;
    const bytes = await writeTable(path, o.megabytes);
    await using cluster = await NetnsCluster.create(2);
    const [a, b] = cluster.nodes;
    const rounds = String(o.runs + 1);
    const deno = [Deno.execPath(), "run", "-A", NODE_SCRIPT];

    o.log("cluster: Heddle server, Heddle client");
    const heddle = a.spawn([...deno, "serve", a.address, path, "bench"], { cwd: ROOT, env });
    const served = JSON.parse(await firstLine(heddle, "the Heddle node"));
    const heddleSeconds = await transfers(b, [
      ...deno,
      "fetch",
      served.address,
      served.ticket,
      rounds,
      // The stream's size, as an edge's `next` announces it.
      String(served.bytes),
    ]);
    o.log("cluster: Heddle server, pyarrow client");
    const crossSeconds = await transfers(b, [
      "python3",
      FLIGHT_PEER,
      "bench",
      `grpc://${served.address}`,
      served.ticket,
      rounds,
    ]);
    await heddle.finish();

    o.log("cluster: pyarrow server, pyarrow client");
    const pyarrow = a.spawn(["python3", FLIGHT_PEER, "serve", path, a.address], { env });
    const port = await firstLine(pyarrow, "the pyarrow server");
    const pyarrowSeconds = await transfers(b, [
      "python3",
      FLIGHT_PEER,
      "bench",
      `grpc://${a.address}:${port}`,
      "t",
      rounds,
    ]);
    await pyarrow.finish();

    const rate = (seconds: number) => bytes / 1e6 / seconds;
    const warm = (s: number[]) => rate(median(s.slice(1).length > 0 ? s.slice(1) : s));
    const baseline = { baselineName: "pyarrow.flight server and client" };
    const size = `${o.megabytes}MB`;
    section.rows.push(
      row(
        `cluster.flight.${size}.cold`,
        rate(heddleSeconds[0]),
        "MB/s",
        rate(pyarrowSeconds[0]),
        baseline,
      ),
      row(`cluster.flight.${size}.warm`, warm(heddleSeconds), "MB/s", warm(pyarrowSeconds), {
        ...baseline,
        note: "goal: at least 0.5 (50% of pyarrow's throughput)",
      }),
      row(
        `cluster.flight.${size}.heddle-server->pyarrow-client.warm`,
        warm(crossSeconds),
        "MB/s",
        warm(pyarrowSeconds),
        { ...baseline, note: "isolates Heddle's server side" },
      ),
    );
    section.notes.push(
      `${bytes.toLocaleString("en-US")} bytes of Arrow IPC (float64 + int32 columns, ` +
        `${BATCH_ROWS.toLocaleString("en-US")}-row batches) per transfer, node ${a.address} ` +
        `to node ${b.address} over veth and a bridge`,
      "Heddle's client validates every message and adopts the stream into its registry " +
        "(shared memory); pyarrow's client reads it into memory (read_all)",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return section;
}
