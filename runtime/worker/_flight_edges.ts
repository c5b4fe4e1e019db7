/**
 * The two ends of an edge between hosts, as connectors the executor runs like any other:
 * `heddle/flight.send`, a sink after the producer that publishes each batch on the
 * worker's data plane, and `heddle/flight.receive`, a source standing in for a producer on
 * another worker that pulls them with DoGet. The control plane puts them into a worker's
 * part of a run (runtime/control/_placement.ts); programs cannot name them. An edge that
 * fails or is cut short on the producer fails the consumer's part, never ends it normally.
 */
import { type Table, tableFromIPC } from "apache-arrow";
import {
  type ConnectorContext,
  ConnectorError,
  type ConnectorRegistry,
  type Sink,
  type Source,
  type SourceBatch,
} from "../connectors/mod.ts";
import { type DataPlane, FlightClient, type FlightEdge } from "../dataplane/mod.ts";
import type { Credentials } from "../protocol/mod.ts";

/** Batches an edge holds in flight before its producer waits for the consumers. */
const EDGE_CAPACITY = 4;
/**
 * How long, once the run is stopped, a consumer waits for its producer to end the edge, and
 * a producer waits for room on its edge.
 */
const STOP_GRACE_MS = 10_000;

function text(ctx: ConnectorContext, name: string): string {
  const value = ctx.config[name];
  if (typeof value !== "string" || value === "") {
    throw new ConnectorError("config", `a Flight edge stage needs \`${name}\``);
  }
  return value;
}

/** Adds the Flight edge connectors over `plane` to `connectors`. */
export function withFlightEdges(
  connectors: ConnectorRegistry,
  plane: DataPlane,
  credentials: Credentials,
): ConnectorRegistry {
  return connectors
    .register("heddle/flight.send", {
      role: "sink",
      open: (ctx) => {
        const consumers = ctx.config.consumers as string[];
        const edge = plane.edge(text(ctx, "edge"), consumers, EDGE_CAPACITY);
        return Promise.resolve(new SendSink(edge, consumers.length, ctx));
      },
    })
    .register("heddle/flight.receive", {
      role: "source",
      open: (ctx) => Promise.resolve(new ReceiveSource(plane, credentials, ctx)),
    });
}

class SendSink implements Sink {
  // Rows count as delivered once the edge took them; see docs/cluster.md for what that
  // means when the consumer's host dies.
  readonly acknowledges = "on-write";
  #ended = false;
  /** Aborted `STOP_GRACE_MS` after the run was stopped: a send waiting for room gives up. */
  #givenUp = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #onStop = () => this.#timer = setTimeout(() => this.#givenUp.abort(), STOP_GRACE_MS);

  constructor(
    readonly edge: FlightEdge,
    readonly consumers: number,
    readonly ctx: ConnectorContext,
  ) {
    if (ctx.stopped?.aborted) this.#onStop();
    else ctx.stopped?.addEventListener("abort", this.#onStop, { once: true });
  }

  /**
   * Publishes the batch, waiting while the edge is full. A stop does not cut the wait
   * short: the consumers' parts are stopped too and drain the edge. A write still waiting
   * for room `STOP_GRACE_MS` after the stop (the consumers' host froze or died) gives them
   * up: the edge fails, every object on it is withdrawn, and the stage fails at once.
   */
  async write(rows: Table, signal: AbortSignal): Promise<void> {
    const registry = this.edge.plane.registry;
    const handle = registry.put(rows, this.consumers);
    try {
      await this.edge.send(handle, AbortSignal.any([signal, this.#givenUp.signal]));
    } catch (error) {
      for (let i = 0; i < this.consumers; i++) registry.release(handle.id);
      if (!this.#givenUp.signal.aborted) throw error;
      const reason = `the run was stopped and its consumers freed no room on the edge for ` +
        `${STOP_GRACE_MS / 1000} s`;
      this.edge.fail(reason);
      // `config`: a failure no retry can mend (the edge is gone), so the stage ends now.
      throw new ConnectorError("config", `edge \`${this.edge.id}\`: ${reason}`);
    }
  }

  end(): Promise<void> {
    this.#ended = true;
    this.#settle();
    this.edge.close();
    return Promise.resolve();
  }

  flush(): Promise<void> {
    return this.end();
  }

  abort(): Promise<void> {
    this.#settle();
    if (!this.#ended) this.edge.fail("the producing part of the run failed or was stopped");
    return Promise.resolve();
  }

  #settle(): void {
    clearTimeout(this.#timer);
    this.ctx.stopped?.removeEventListener("abort", this.#onStop);
  }
}

class ReceiveSource implements Source {
  readonly bounded: boolean;
  #schema: Table["schema"] | null = null;
  #client: FlightClient | null = null;

  constructor(
    readonly plane: DataPlane,
    readonly credentials: Credentials,
    readonly ctx: ConnectorContext,
  ) {
    this.bounded = ctx.config.bounded === true;
  }

  get schema(): Table["schema"] {
    return this.#schema ?? tableFromIPC(new Uint8Array(0)).schema;
  }

  /**
   * Pulls until the producer's edge ends. A stop does not cut it short: the producer's part
   * is stopped too and ends the edge, and a consumer that stopped pulling would hold it.
   * A producer that has not ended its edge `STOP_GRACE_MS` after the stop (its host is
   * gone or frozen) is given up: the connection closes and the part fails.
   */
  async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
    const peer = text(this.ctx, "peer");
    const edge = text(this.ctx, "edge");
    const self = text(this.ctx, "self");
    const registry = this.plane.registry;
    const client = new FlightClient(peer, this.credentials);
    this.#client = client;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const giveUp = () => timer = setTimeout(() => client.close(), STOP_GRACE_MS);
    signal.addEventListener("abort", giveUp, { once: true });
    let seq = 0;
    try {
      for await (const handle of this.#client.pull(edge, text(this.ctx, "consumer"), registry)) {
        // The executor hands a source's table on in-process and frees nothing: it gets a
        // copy on the heap, and the received object leaves the registry at once.
        let table: Table;
        {
          using lease = registry.open(handle);
          table = tableFromIPC(lease.bytes.slice());
        }
        registry.release(handle.id);
        this.#schema ??= table.schema;
        yield { table, errors: [], position: ++seq };
      }
    } catch (error) {
      throw new ConnectorError(
        "unavailable",
        `edge \`${edge}\` from ${peer} to ${self}: ${(error as Error).message}`,
      );
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", giveUp);
    }
  }

  commit(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#client?.close();
    return Promise.resolve();
  }
}
