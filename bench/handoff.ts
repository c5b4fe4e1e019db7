/**
 * Handoff between processes: one batch of transactions moves from this producer to a
 * long-lived consumer process (TypeScript, Python, Go or Rust) three ways: a Heddle registry handle
 * (the consumer maps the shared-memory segment, zero-copy), JSON rows POSTed over HTTP (the
 * "standard microservice" of the design document) and Arrow IPC bytes copied over a Unix
 * socket. Every reply carries a checksum over every value the consumer read, checked against
 * the producer's own; a mismatch aborts the benchmark rather than reporting a skipped read.
 * Each method starts from its natural in-memory form (an Arrow table; plain row objects for
 * JSON), so the timed part is exactly what the handoff adds. It must never time process
 * start-up: consumers start once and are reused. Both processes collect their garbage before
 * each timed part, so that one measurement's 1 GB buffers are never freed inside another's
 * timing (docs/benchmarks.md, "What bounds the handoff", shows what that cost before).
 * Beside the Python consumer, the same table also goes through the peers a user would
 * otherwise pick, Vineyard and Ray, each checked against the same checksum; their start-up,
 * like the consumers', is reported apart and never inside another number.
 */
import { tableToIPC } from "apache-arrow";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { encodeStream, Registry } from "../runtime/registry/mod.ts";
import { provision } from "../runtime/plugins/mod.ts";
import {
  type BenchRow,
  type BenchSection,
  cpuMs,
  median,
  memoryAvailable,
  missingPeer,
  row,
} from "./_report.ts";
import {
  type Checksum,
  checksumMismatch,
  checksumTable,
  makeTransactions,
  toRows,
} from "./_transactions.ts";
import { type FrameKind, readLine, sendFrame } from "./_wire.ts";

export type ConsumerLanguage = "ts" | "python" | "go" | "rust";

export interface HandoffOptions {
  /** Batch sizes in MB (10^6 bytes of Arrow IPC stream). */
  sizesMB: number[];
  runs: number;
  consumers: ConsumerLanguage[];
  /** JSON is skipped above this size: its text would exceed V8's maximum string length. */
  jsonLimitMB?: number;
  /** Peers measured beside the Python consumer (each skipped with a note when not installed). */
  peers?: PeerName[];
  log?: (line: string) => void;
}

/** Medians in milliseconds for one consumer and size: what the chart plots. */
export interface HandoffPoint {
  consumer: ConsumerLanguage;
  sizeMB: number;
  rows: number;
  /** Registry put: the producer writes the batch into shared memory. */
  shmPut: number;
  /** The first put of this size: no released segment of that size to reuse yet. */
  shmPutCold: number;
  /** Inside the consumer, the first handle of this size: a segment it has never mapped. */
  consumerMapCold: number;
  /** A plain copy of the same IPC bytes into memory touched before (the put's floor). */
  memcpy: number;
  /** Handle delivery plus the consumer mapping the segment (no data read). */
  shmHandoff: number;
  /** Inside the consumer: mapping plus decoding the metadata; reading every value. */
  consumerMap: number;
  /** Inside the consumer: from the handle's arrival to its reply (map, decode, unmap). */
  consumerServe: number;
  consumerRead: number;
  /** Put, handle delivery, mapping, and the consumer reading every value. */
  shmTotal: number;
  /** Encode, copy over the socket, decode (no read); then the same plus reading. */
  arrowHandoff: number;
  arrowTotal: number;
  /** Stringify, POST, parse (no read); then the same plus reading. Null when skipped. */
  jsonHandoff: number | null;
  jsonTotal: number | null;
  /** Start-up, in no other number: the registry created and the consumer spawned until ready. */
  start: number;
  /** The peers' medians (Python consumers only, for each peer whose package imports). */
  peers: Partial<Record<PeerName, PeerPoint>>;
}

/** The systems the handoff is compared with, each driven by its own Python script. */
export type PeerName = "vineyard" | "ray";

/** What a peer's script (bench/_handoff_peer.py) measures, in milliseconds. */
export interface PeerPoint {
  /** Its store and its consumer process started until ready: in no other number. */
  start: number;
  put: number;
  putCold: number;
  handoff: number;
  total: number;
}

interface Peer {
  /** Its name in notes and errors. */
  label: string;
  /** The Python module whose import decides whether the peer runs. */
  module: string;
  script: string;
  baselineName: string;
  /** What its handoff and start-up consist of, beside Heddle's. */
  handoff: string;
  start: string;
}

const PEERS: Record<PeerName, Peer> = {
  vineyard: {
    label: "Vineyard",
    module: "vineyard",
    script: "_handoff_vineyard.py",
    baselineName: "Vineyard (Python producer and consumer)",
    handoff: "handle delivery + map vs the object id to the consumer + client.get",
    start: "a private vineyardd and the consumer process until ready",
  },
  ray: {
    label: "Ray",
    module: "ray",
    script: "_handoff_ray.py",
    baselineName: "Ray (Python producer, actor consumer)",
    handoff: "handle delivery + map vs the ObjectRef to the actor + ray.get (zero-copy)",
    start: "ray.init (one CPU, no dashboard) and the consumer actor's worker until ready",
  },
};

interface Consumer {
  language: ConsumerLanguage;
  process: Deno.ChildProcess;
  socket: Deno.Conn;
  httpPort: number;
  socketPath: string;
  /** From the spawn to a connected socket: what starting this consumer costs. */
  startMs: number;
}

/**
 * Waits (at most 5 s) until the consumer's process has used no CPU for 30 ms. A consumer
 * frees what the last frame left after its reply, and in Python a 100 MB JSON payload's
 * objects take seconds to free: on the other core that slowed the next put it overlapped
 * (100 MB: 22.5 ms against 12-14 ms with an idle consumer), a cost of the JSON baseline's
 * garbage charged to Heddle's put.
 */
async function idle(c: Consumer): Promise<void> {
  let last = cpuMs(c.process.pid);
  for (const end = performance.now() + 5_000; performance.now() < end;) {
    await new Promise((resolve) => setTimeout(resolve, 30));
    const now = cpuMs(c.process.pid);
    if (now === last) return;
    last = now;
  }
}

/** Issue 13's goal for a consumer's handle arrival to a mapped batch, whatever the size. */
const MAP_GOAL_MS = 0.1;
const BENCH_DIR = new URL(".", import.meta.url).pathname;
const MB = 1_000_000;

/** The compiled consumers, built on first use into the plugin build cache (a rebuild only
 * when their sources or the SDK change), so that compiling is never timed. */
const COMPILED: Record<"go" | "rust", string[]> = {
  go: ["go", "build", "-o", "{binary}", "."],
  rust: [
    "sh",
    "-c",
    't="${CARGO_TARGET_DIR:-target}" && cargo build --release --quiet --locked --target-dir "$t" && ' +
    'cp "$t/release/handoff-consumer" "$0"',
    "{binary}",
  ],
};

async function consumerCommand(language: ConsumerLanguage): Promise<string[]> {
  if (language === "ts") {
    return [
      Deno.execPath(),
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      `${BENCH_DIR}_handoff_consumer.ts`,
    ];
  }
  if (language === "python") return ["python3", `${BENCH_DIR}_handoff_consumer.py`];
  const built = await provision({
    dir: `${BENCH_DIR}consumers/${language}`,
    name: `${language} handoff consumer`,
    build: COMPILED[language],
    entry: ["{binary}"],
  });
  if (!built.ok) throw new Error(built.message);
  return built.entry;
}

async function startConsumer(language: ConsumerLanguage, dir: string): Promise<Consumer> {
  const socketPath = `${dir}/${language}.sock`;
  const [program, ...args] = await consumerCommand(language);
  const t0 = performance.now();
  const command = new Deno.Command(program, {
    args: [...args, socketPath],
    stdout: "piped",
    stderr: "inherit",
  });
  const process = command.spawn();
  const reader = process.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  if (!value) throw new Error(`the ${language} consumer exited before it was ready`);
  const { http } = JSON.parse(new TextDecoder().decode(value).split("\n")[0]);
  const socket = await Deno.connect({ transport: "unix", path: socketPath });
  const startMs = performance.now() - t0;
  return { language, process, socket, httpPort: http, socketPath, startMs };
}

async function stopConsumer(c: Consumer): Promise<void> {
  c.socket.close();
  c.process.kill("SIGTERM");
  await c.process.stdout.cancel().catch(() => {});
  await c.process.status;
}

async function roundTrip(c: Consumer, kind: FrameKind, payload: Uint8Array): Promise<unknown> {
  await sendFrame(c.socket, kind, payload);
  return JSON.parse(await readLine(c.socket));
}

async function postJson(c: Consumer, body: string, read: boolean): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${c.httpPort}/?read=${read ? 1 : 0}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  return await res.json();
}

function verify(what: string, expected: Checksum, got: unknown): void {
  const problem = checksumMismatch(expected, got as Checksum);
  if (problem) throw new Error(`${what}: the consumer read different data (${problem})`);
}

function verifyRows(what: string, expected: number, got: unknown): void {
  const rows = (got as { rows?: number }).rows;
  if (rows !== expected) throw new Error(`${what}: expected ${expected} rows, got ${rows}`);
}

/** V8's collector, exposed at run time so that `deno task bench` needs no extra flag. */
const collectGarbage: () => void = (() => {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc");
})();

async function timed<T>(f: () => Promise<T>): Promise<[number, T]> {
  collectGarbage();
  const t0 = performance.now();
  const value = await f();
  return [performance.now() - t0, value];
}

/** Rows of the transactions table whose IPC stream is about `bytes` long. */
function rowsFor(bytes: number): number {
  const sample = 20_000;
  const perRow = encodeStream(makeTransactions(sample)).byteLength / sample;
  return Math.max(1, Math.round(bytes / perRow));
}

/**
 * The same table handed over by each peer (bench/_handoff_peer.py): written once as an Arrow
 * IPC stream, put by the peer's script into its own store and taken there by another
 * process, whose checksum is checked exactly like those of Heddle's consumers.
 */
async function measurePeers(
  table: Parameters<typeof tableToIPC>[0],
  expected: Checksum,
  names: PeerName[],
  runs: number,
  warm: number,
  dir: string,
): Promise<Partial<Record<PeerName, PeerPoint>>> {
  const points: Partial<Record<PeerName, PeerPoint>> = {};
  if (names.length === 0) return points;
  const file = `${dir}/peer.arrows`;
  await Deno.writeFile(file, tableToIPC(table, "stream"));
  try {
    for (const name of names) points[name] = await runPeer(name, file, expected, runs, warm, dir);
    return points;
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

async function runPeer(
  name: PeerName,
  file: string,
  expected: Checksum,
  runs: number,
  warm: number,
  dir: string,
): Promise<PeerPoint> {
  const out = await new Deno.Command("python3", {
    args: [`${BENCH_DIR}${PEERS[name].script}`, file, String(runs), String(warm), dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (!out.success || !text.startsWith("{")) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
    throw new Error(`the ${PEERS[name].label} peer failed: ${why}`);
  }
  const result = JSON.parse(text);
  verify(`${PEERS[name].label} read`, expected, result.checksum);
  return result;
}

async function measure(
  c: Consumer,
  registry: Registry,
  sizeMB: number,
  runs: number,
  withJson: boolean,
  log: (line: string) => void,
  peers: PeerName[],
  dir: string,
): Promise<HandoffPoint> {
  const table = makeTransactions(rowsFor(sizeMB * MB));
  const expected = checksumTable(table);
  const rows = withJson ? toRows(table) : null;
  const what = `${c.language} ${sizeMB} MB`;
  const samples: Record<
    Exclude<
      keyof HandoffPoint,
      "consumer" | "sizeMB" | "rows" | "shmPutCold" | "consumerMapCold" | "start" | "peers"
    >,
    number[]
  > = {
    shmPut: [],
    memcpy: [],
    shmHandoff: [],
    consumerMap: [],
    consumerServe: [],
    consumerRead: [],
    shmTotal: [],
    arrowHandoff: [],
    arrowTotal: [],
    jsonHandoff: [],
    jsonTotal: [],
  };
  // One untimed round first for small sizes, so the first timed run does not pay for JIT.
  const warm = sizeMB <= 10 ? 1 : 0;
  // The floor of a put: copying the same bytes into memory that was touched before.
  const ipc = tableToIPC(table, "stream");
  const touched = new Uint8Array(ipc.byteLength).fill(1);
  let putCold = NaN;
  let mapCold = NaN;
  for (let run = 0; run < runs + warm; run++) {
    const keep = run >= warm;
    const enc = new TextEncoder();

    await idle(c);
    const [put, handle] = await timed(() => Promise.resolve(registry.put(table, 1)));
    if (run === 0) putCold = put;
    const [copy] = await timed(() => Promise.resolve(touched.set(ipc)));
    const payload = enc.encode(JSON.stringify(handle));
    const [mapOnly, mapped] = await timed(() => roundTrip(c, "M", payload));
    verifyRows(`${what} shm map`, table.numRows, mapped);
    if (run === 0) mapCold = (mapped as { mapMs: number }).mapMs;
    const [readAll, read] = await timed(() => roundTrip(c, "R", payload));
    verify(`${what} shm read`, expected, read);
    registry.release(handle.id);

    const [arrowHandoff, decoded] = await timed(async () =>
      await roundTrip(c, "B", tableToIPC(table, "stream"))
    );
    verifyRows(`${what} arrow decode`, table.numRows, decoded);
    const [arrowTotal, arrowRead] = await timed(async () =>
      await roundTrip(c, "A", tableToIPC(table, "stream"))
    );
    verify(`${what} arrow read`, expected, arrowRead);

    if (keep) {
      samples.shmPut.push(put);
      samples.memcpy.push(copy);
      samples.shmHandoff.push(mapOnly);
      samples.consumerMap.push((mapped as { mapMs: number }).mapMs);
      samples.consumerServe.push((mapped as { serveMs: number }).serveMs);
      samples.consumerRead.push((read as { readMs: number }).readMs);
      samples.shmTotal.push(put + readAll);
      samples.arrowHandoff.push(arrowHandoff);
      samples.arrowTotal.push(arrowTotal);
    }
    if (rows) {
      const [jsonHandoff, parsed] = await timed(() => postJson(c, JSON.stringify(rows), false));
      verifyRows(`${what} json parse`, table.numRows, parsed);
      const [jsonTotal, jsonRead] = await timed(() => postJson(c, JSON.stringify(rows), true));
      verify(`${what} json read`, expected, jsonRead);
      if (keep) {
        samples.jsonHandoff.push(jsonHandoff);
        samples.jsonTotal.push(jsonTotal);
      }
    }
  }
  const point: HandoffPoint = {
    consumer: c.language,
    sizeMB,
    rows: table.numRows,
    shmPut: median(samples.shmPut),
    shmPutCold: putCold,
    consumerMapCold: mapCold,
    memcpy: median(samples.memcpy),
    shmHandoff: median(samples.shmHandoff),
    consumerMap: median(samples.consumerMap),
    consumerServe: median(samples.consumerServe),
    consumerRead: median(samples.consumerRead),
    shmTotal: median(samples.shmTotal),
    arrowHandoff: median(samples.arrowHandoff),
    arrowTotal: median(samples.arrowTotal),
    jsonHandoff: rows ? median(samples.jsonHandoff) : null,
    jsonTotal: rows ? median(samples.jsonTotal) : null,
    start: c.startMs,
    peers: await measurePeers(table, expected, peers, runs, warm, dir),
  };
  log(
    `handoff ${what}: shm ${point.shmHandoff.toFixed(2)} / ${point.shmTotal.toFixed(1)} ms, ` +
      `arrow ${point.arrowTotal.toFixed(1)} ms, json ${
        point.jsonTotal?.toFixed(1) ?? "skipped"
      } ms`,
  );
  return point;
}

function rowsOf(p: HandoffPoint): BenchRow[] {
  const at = `handoff.ts->${p.consumer === "python" ? "py" : p.consumer}.${p.sizeMB}MB`;
  const json = { baselineName: "JSON over HTTP" };
  const arrow = { baselineName: "Arrow IPC over Unix socket" };
  const noJson = { note: "JSON skipped: text exceeds V8's maximum string length" };
  const mbps = (ms: number | null) => ms === null ? null : p.sizeMB / (ms / 1000);
  return [
    row(
      `${at}.handoff`,
      p.shmHandoff,
      "ms",
      p.jsonHandoff,
      p.jsonHandoff === null ? noJson : {
        ...json,
        note: "handle delivery + map vs stringify + POST + parse",
      },
    ),
    row(`${at}.handoff`, p.shmHandoff, "ms", p.arrowHandoff, {
      ...arrow,
      note: "handle delivery + map vs encode + copy + decode",
    }),
    row(`${at}.put`, p.shmPut, "ms", p.memcpy, {
      baselineName: "copy into touched memory",
      note: "producer writes the batch into shm (warm: a released segment reused); goal: " +
        "ratio >= 0.5",
    }),
    row(`${at}.put_cold`, p.shmPutCold, "ms", p.memcpy, {
      baselineName: "copy into touched memory",
      note: "the first put of this size: a new segment, pages allocated and zeroed on touch",
    }),
    row(`${at}.consumer_map`, p.consumerMap, "ms", MAP_GOAL_MS, {
      baselineName: "goal: 100 µs at any size",
      note: "inside the consumer: from the decoded handle to a mapped, decoded batch " +
        "(the handle's JSON decoding is in consumer_serve)",
    }),
    row(`${at}.consumer_map_cold`, p.consumerMapCold, "ms", MAP_GOAL_MS, {
      baselineName: "goal: 100 µs at any size",
      note: "the first handle of this size: a segment the consumer never mapped (the Go and " +
        "Rust SDKs keep mappings of pooled segments by id; later handles reuse them)",
    }),
    row(`${at}.consumer_serve`, p.consumerServe, "ms", null, {
      note: "inside the consumer: the frame's arrival to the reply (the handle's JSON " +
        "decoding, map, decode, unmap)",
    }),
    row(`${at}.consumer_read`, p.consumerRead, "ms", null, {
      note: "inside the consumer: every value",
    }),
    row(
      `${at}.end_to_end`,
      p.shmTotal,
      "ms",
      p.jsonTotal,
      p.jsonTotal === null ? noJson : {
        ...json,
        note: "put + handoff + consumer reads every value",
      },
    ),
    row(`${at}.end_to_end`, p.shmTotal, "ms", p.arrowTotal, arrow),
    row(`${at}.throughput`, mbps(p.shmTotal)!, "MB/s", mbps(p.jsonTotal), json),
    row(`${at}.throughput`, mbps(p.shmTotal)!, "MB/s", mbps(p.arrowTotal), arrow),
    row(`${at}.start`, p.start, "ms", null, {
      note: "start-up, in no other row: the registry created and the consumer spawned until " +
        "it serves",
    }),
    ...Object.entries(p.peers).flatMap(([name, v]) => peerRows(at, p, PEERS[name as PeerName], v)),
  ];
}

/** Heddle against a peer (issue 11, goal 1: a put never slower than the peer's). */
function peerRows(at: string, p: HandoffPoint, peer: Peer, v: PeerPoint): BenchRow[] {
  const { baselineName } = peer;
  return [
    row(`${at}.put`, p.shmPut, "ms", v.put, {
      baselineName,
      note: "the producer's put, warm; goal: ratio >= 1 (never slower than the peer's put)",
    }),
    row(`${at}.put_cold`, p.shmPutCold, "ms", v.putCold, {
      baselineName,
      note: "the first put of this size in each store",
    }),
    row(`${at}.handoff`, p.shmHandoff, "ms", v.handoff, { baselineName, note: peer.handoff }),
    row(`${at}.end_to_end`, p.shmTotal, "ms", v.total, {
      baselineName,
      note: "put + handoff + the consumer reads every value (the same checksum)",
    }),
    row(`${at}.start`, p.start, "ms", v.start, {
      baselineName,
      note: `start-up, in no other row: the registry and the consumer process vs ${peer.start}`,
    }),
  ];
}

export async function benchHandoff(
  options: HandoffOptions,
): Promise<{ section: BenchSection; points: HandoffPoint[] }> {
  const log = options.log ?? (() => {});
  const dir = await Deno.makeTempDir({ prefix: "heddle-bench-handoff-" });
  const t0 = performance.now();
  const registry = new Registry({ memoryBudget: 8 * 1024 ** 3, pool: true });
  const registryMs = performance.now() - t0;
  const consumers: Consumer[] = [];
  const points: HandoffPoint[] = [];
  const notes: string[] = [];
  try {
    for (const language of options.consumers) {
      const c = await startConsumer(language, dir);
      consumers.push({ ...c, startMs: registryMs + c.startMs });
    }
    const peers: PeerName[] = [];
    for (const name of options.consumers.includes("python") ? options.peers ?? [] : []) {
      const missing = await missingPeer(PEERS[name].module);
      if (missing) notes.push(`the ${PEERS[name].label} peer skipped: ${missing}`);
      else peers.push(name);
    }
    for (const sizeMB of options.sizesMB) {
      // Producer table, shm copy, IPC copy and the consumer's copy, with headroom.
      if (sizeMB * MB * 6 > memoryAvailable()) {
        notes.push(`${sizeMB} MB skipped: not enough free memory on this machine`);
        continue;
      }
      const withJson = sizeMB <= (options.jsonLimitMB ?? 200);
      if (!withJson) {
        notes.push(
          `${sizeMB} MB: JSON over HTTP not measured: the JSON text (about 2.2x the Arrow size) ` +
            "exceeds V8's maximum string length (~512 MiB), so the standard microservice cannot " +
            "send it as one document at all",
        );
      }
      for (const c of consumers) {
        const its = c.language === "python" ? peers : [];
        points.push(await measure(c, registry, sizeMB, options.runs, withJson, log, its, dir));
      }
    }
  } finally {
    for (const c of consumers) await stopConsumer(c).catch(() => {});
    registry.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  notes.push(
    "handoff = what moving the batch costs before the consumer reads it: for Heddle, sending " +
      "the handle and the consumer mapping the segment (and decoding the Arrow metadata), " +
      "measured by the producer until the consumer's reply; for JSON, stringify + POST + " +
      "parse; for Arrow over a socket, encode + copy + decode",
    "end_to_end = the producer's put/serialisation, the handoff, and the consumer reading " +
      "every value (sums over every integer word, float and string byte, checked against the " +
      "producer's checksum)",
    "ratio = baseline / Heddle for times, Heddle / baseline for throughput: >1 means Heddle wins",
  );
  return {
    section: {
      name: "handoff",
      title: "Handoff between processes",
      runs: options.runs,
      rows: points.flatMap(rowsOf),
      notes,
    },
    points,
  };
}
