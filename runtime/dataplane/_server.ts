/**
 * The producer side of the data plane: a worker's registry objects served over Arrow Flight.
 * An object is fetchable only once it is published for named remote consumers; `DoGet`
 * streams it from its shared-memory mapping (schema first, then its batches, bodies never
 * re-encoded), and the object stays in the registry until every named consumer sent the
 * `release` action, which is how the registry's consumer counts reach across hosts. An edge
 * bounds how many of its objects are in flight (published, not yet released by all) so a
 * slow remote consumer holds its producer back instead of filling the producer's memory.
 */
import { Buffer } from "node:buffer";
import { type ObjectHandle, type Registry, RegistryError } from "../registry/mod.ts";
import { encodeFlightDataParts } from "./_codec.ts";
import { DataPlaneError, type DataPlaneErrorCode } from "./_errors.ts";
import { GrpcStatus, serveH2, type ServerCall } from "./_h2.ts";
import { flightService } from "./_service.ts";
import type { Credentials } from "../protocol/mod.ts";
import { encapsulate, splitStream } from "./_stream.ts";

const EMPTY = new Uint8Array(0);

/** The actions a Heddle Flight server understands (ListActions reports them). */
export const ACTIONS = {
  release: 'Acknowledges a ticket: body {"ticket", "consumer"}; the object is freed ' +
    "once every consumer it was published for released it.",
  next: 'Waits for the next object of an edge: body {"edge", "consumer"}; answers ' +
    '{"ticket", "rows", "bytes"} or {"end": true} once the edge is closed and drained.',
} as const;

/** What `next` answers for one object. */
export interface NextObject {
  ticket: string;
  rows: number;
  bytes: number;
}

interface Publication {
  handle: ObjectHandle;
  /** Consumers that have not released the object yet. */
  pending: Set<string>;
  onReleased?: () => void;
}

/** Counters of what the server moved, for tests and benchmarks. */
export interface DataPlaneStats {
  /** Body and header bytes sent in DoGet streams. */
  bytesSent: number;
  /** DoGet streams completed. */
  streamsServed: number;
  /** Objects published and not yet released by every consumer. */
  published: number;
}

/**
 * The objects a worker offers to other hosts. Publishing hands the publication one registry
 * consumer count per named consumer; each consumer's release gives one back.
 */
export class DataPlane {
  readonly registry: Registry;
  #publications = new Map<string, Publication>();
  #edges = new Map<string, FlightEdge>();
  /** Consumers asking for an edge its producer has not opened yet, by edge id. */
  #edgeWaiters = new Map<string, (() => void)[]>();
  #stats = { bytesSent: 0, streamsServed: 0 };

  constructor(registry: Registry) {
    this.registry = registry;
  }

  /**
   * Makes an object fetchable by `consumers` (names, unique). The object must hold one
   * registry consumer count for each of them; the ticket is the object's id.
   */
  publish(handle: ObjectHandle, consumers: string[], onReleased?: () => void): string {
    if (consumers.length === 0 || new Set(consumers).size !== consumers.length) {
      throw new DataPlaneError(
        "invalid",
        "an object is published for one or more distinct consumers",
      );
    }
    if (this.#publications.has(handle.id)) {
      throw new DataPlaneError("invalid", `object \`${handle.id}\` is already published`);
    }
    this.#publications.set(handle.id, { handle, pending: new Set(consumers), onReleased });
    return handle.id;
  }

  /** One consumer is done with a ticket. Releasing twice is harmless; an unknown consumer is not. */
  release(ticket: string, consumer: string): void {
    const publication = this.#publications.get(ticket);
    if (publication === undefined) {
      throw new DataPlaneError("not-found", `no published object \`${ticket}\``);
    }
    if (!publication.pending.delete(consumer)) {
      throw new DataPlaneError(
        "not-found",
        `object \`${ticket}\` is not published for consumer \`${consumer}\``,
      );
    }
    this.registry.release(ticket);
    if (publication.pending.size === 0) {
      this.#publications.delete(ticket);
      publication.onReleased?.();
    }
  }

  /** An edge: a sequence of objects for fixed consumers, at most `capacity` in flight. */
  edge(id: string, consumers: string[], capacity = 4): FlightEdge {
    if (this.#edges.has(id)) throw new DataPlaneError("invalid", `edge \`${id}\` already exists`);
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new DataPlaneError("invalid", `edge capacity must be at least 1, got ${capacity}`);
    }
    const edge = new FlightEdge(this, id, consumers, capacity, () => this.#edges.delete(id));
    this.#edges.set(id, edge);
    for (const wake of this.#edgeWaiters.get(id) ?? []) wake();
    this.#edgeWaiters.delete(id);
    return edge;
  }

  /**
   * The edge `id`, waiting up to `EDGE_WAIT_MS` for its producer to open it: the parts of a
   * run start on their workers in any order, so a consumer may ask first.
   */
  async #edgeNamed(id: string, cancelled: () => boolean): Promise<FlightEdge> {
    const deadline = Date.now() + EDGE_WAIT_MS;
    while (!this.#edges.has(id) && Date.now() < deadline && !cancelled()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(1000, deadline - Date.now()));
        const waiters = this.#edgeWaiters.get(id) ?? [];
        waiters.push(() => (clearTimeout(timer), resolve()));
        this.#edgeWaiters.set(id, waiters);
      });
    }
    const edge = this.#edges.get(id);
    if (edge === undefined) throw new DataPlaneError("not-found", `no edge \`${id}\``);
    return edge;
  }

  /** Takes back every count an object still holds for consumers that never released it. */
  withdraw(ticket: string): void {
    const publication = this.#publications.get(ticket);
    if (publication === undefined) return;
    for (const consumer of [...publication.pending]) this.release(ticket, consumer);
  }

  stats(): DataPlaneStats {
    return { ...this.#stats, published: this.#publications.size };
  }

  /** Gives back every count still held by unreleased publications (the worker shuts down). */
  close(): void {
    for (const edge of this.#edges.values()) edge.close();
    for (const [id, publication] of this.#publications) {
      for (const _ of publication.pending) {
        try {
          this.registry.release(id);
        } catch {
          // A closed registry freed it already.
        }
      }
    }
    this.#publications.clear();
  }

  /** Answers one Flight call; every path ends the call with a status. */
  handle(call: ServerCall): void {
    const name = call.path.startsWith(SERVICE_PATH) ? call.path.slice(SERVICE_PATH.length) : "";
    const method = flightService()[name];
    if (method === undefined) {
      call.finish(GrpcStatus.UNIMPLEMENTED, `unknown method ${call.path}`);
      return;
    }
    let request: unknown;
    try {
      request = method.requestDeserialize(Buffer.from(call.request));
    } catch (error) {
      call.finish(GrpcStatus.INVALID_ARGUMENT, `a malformed request: ${error}`);
      return;
    }
    const reply = (value: unknown) => call.send([method.responseSerialize(value)]);
    this.#answer(name, request, call, reply).then(
      () => call.finish(GrpcStatus.OK),
      (error) => {
        const { code, message } = toStatus(error);
        return call.finish(code, message);
      },
    );
  }

  async #answer(
    name: string,
    request: unknown,
    call: ServerCall,
    reply: (value: unknown) => Promise<void>,
  ): Promise<void> {
    switch (name) {
      case "DoGet":
        return await this.#serve(call, request as { ticket: Uint8Array });
      case "DoAction":
        for (const body of await this.#action(request as ActionRequest, call)) {
          await reply({ body });
        }
        return;
      case "ListActions":
        for (const [type, description] of Object.entries(ACTIONS)) {
          await reply({ type, description });
        }
        return;
      case "ListFlights":
        for (const id of [...this.#publications.keys()]) {
          if (this.#publications.has(id)) await reply(this.#info(id));
        }
        return;
      case "GetFlightInfo":
        return await reply(this.#info(ticketOf(request as Descriptor)));
      case "GetSchema":
        return await reply({ schema: this.#schema(ticketOf(request as Descriptor)) });
      default:
        // Handshake, DoPut, DoExchange and PollFlightInfo: streams from the client or
        // long-running queries, which a worker's data plane has no use for.
        throw new DataPlaneError(
          "unimplemented",
          `Heddle's Flight server does not implement ${name}`,
        );
    }
  }

  #publication(ticket: string): Publication {
    const publication = this.#publications.get(ticket);
    if (publication === undefined) {
      throw new DataPlaneError("not-found", `no published object \`${ticket}\``);
    }
    return publication;
  }

  #schema(ticket: string): Uint8Array {
    this.#publication(ticket);
    using lease = this.registry.open(ticket);
    const [schema] = splitStream(lease.bytes);
    return encapsulate(schema.metadata).slice();
  }

  #info(ticket: string) {
    const { handle } = this.#publication(ticket);
    return {
      schema: this.#schema(ticket),
      flightDescriptor: { type: "PATH", path: [ticket], cmd: EMPTY },
      endpoint: [{ ticket: { ticket: Buffer.from(ticket) }, location: [], appMetadata: EMPTY }],
      totalRecords: handle.rows,
      totalBytes: handle.length,
      ordered: true,
      appMetadata: EMPTY,
    };
  }

  async #serve(call: ServerCall, request: { ticket: Uint8Array }) {
    const ticket = new TextDecoder().decode(request.ticket);
    this.#publication(ticket);
    // The lease pins the mapping (and keeps the object from spilling) while it streams;
    // each send resolves once its bytes were copied out of the mapping into the socket.
    using lease = this.registry.open(ticket);
    for (const message of splitStream(lease.bytes)) {
      if (call.cancelled) return;
      await call.send(encodeFlightDataParts({
        dataHeader: message.metadata,
        appMetadata: EMPTY,
        dataBody: message.body,
      }));
      this.#stats.bytesSent += message.metadata.byteLength + message.body.byteLength;
    }
    this.#stats.streamsServed++;
  }

  async #action(action: ActionRequest, call: ServerCall): Promise<Uint8Array[]> {
    const { type, body } = action;
    const request = parseBody(body);
    const text = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
    if (type === "release") {
      this.release(field(request, "ticket"), field(request, "consumer"));
      return [];
    }
    if (type === "next") {
      const edge = await this.#edgeNamed(field(request, "edge"), () => call.cancelled);
      const next = await edge.next(field(request, "consumer"), () => call.cancelled);
      return [text(next ?? { end: true })];
    }
    throw new DataPlaneError(
      "invalid",
      `unknown action \`${type}\` (known: ${Object.keys(ACTIONS).join(", ")})`,
    );
  }
}

/**
 * A stream of objects from one producer stage to fixed remote consumers. `send` waits while
 * `capacity` objects are in flight; each consumer takes objects in order with the `next`
 * action and acknowledges them with `release`.
 */
export class FlightEdge {
  #sequence: ObjectHandle[] = [];
  /** Index in `#sequence` of its first element (released entries are trimmed). */
  #base = 0;
  #cursors: Map<string, number>;
  #inFlight = 0;
  #closed = false;
  /** Consumers that were told the edge ended. */
  #ended = new Set<string>();
  #wakeConsumers: (() => void)[] = [];
  /** Why the producer gave up on the edge; consumers get it instead of the next object. */
  #failure: string | null = null;
  #wakeProducer: (() => void)[] = [];
  /** Tickets published on this edge and not yet released by every consumer. */
  #published = new Set<string>();

  constructor(
    readonly plane: DataPlane,
    readonly id: string,
    readonly consumers: string[],
    readonly capacity: number,
    readonly onDrained: () => void,
  ) {
    this.#cursors = new Map(consumers.map((c) => [c, 0]));
  }

  /** Objects published on this edge and not yet released by every consumer. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Publishes the next object for every consumer (it must hold one registry consumer count
   * per edge consumer), waiting first while the edge is at capacity. An aborted `signal`
   * ends a wait for room (a `failed` error): the caller still holds `handle`'s counts.
   */
  async send(handle: ObjectHandle, signal?: AbortSignal): Promise<void> {
    if (this.#closed) throw new DataPlaneError("invalid", `edge \`${this.id}\` is closed`);
    const wake = () => this.#wake(this.#wakeProducer);
    signal?.addEventListener("abort", wake, { once: true });
    try {
      while (this.#inFlight >= this.capacity && !this.#closed && !signal?.aborted) {
        await new Promise<void>((resolve) => this.#wakeProducer.push(resolve));
      }
    } finally {
      signal?.removeEventListener("abort", wake);
    }
    if (this.#closed) throw new DataPlaneError("invalid", `edge \`${this.id}\` is closed`);
    if (signal?.aborted && this.#inFlight >= this.capacity) {
      throw new DataPlaneError("failed", `edge \`${this.id}\`: gave up waiting for room`);
    }
    this.#inFlight++;
    this.#published.add(handle.id);
    this.plane.publish(handle, this.consumers, () => {
      this.#inFlight--;
      this.#published.delete(handle.id);
      this.#wake(this.#wakeProducer);
      this.#checkDrained();
    });
    this.#sequence.push(handle);
    this.#wake(this.#wakeConsumers);
  }

  /** No more objects; consumers get `end` once they took everything sent. */
  close(): void {
    this.#closed = true;
    this.#wake(this.#wakeConsumers);
    this.#checkDrained();
  }

  /**
   * The producer failed or was cut short: consumers get a `failed` error instead of more
   * objects (or an end), and every object in flight is withdrawn.
   */
  fail(reason: string): void {
    if (this.#closed) return;
    this.#failure = reason;
    this.#closed = true;
    // Everything in flight, also what a consumer fetched and never released (its host
    // froze or died): nobody will take it now.
    for (const ticket of [...this.#published]) this.plane.withdraw(ticket);
    this.#sequence = [];
    this.#wake(this.#wakeConsumers);
    this.#wake(this.#wakeProducer);
    this.onDrained();
  }

  /** The next object for `consumer`, or undefined at the end; waits for one to be sent. */
  async next(consumer: string, cancelled: () => boolean): Promise<NextObject | undefined> {
    const cursor = this.#cursors.get(consumer);
    if (cursor === undefined) {
      throw new DataPlaneError("not-found", `edge \`${this.id}\` has no consumer \`${consumer}\``);
    }
    while (cursor - this.#base >= this.#sequence.length && !this.#closed && !cancelled()) {
      await new Promise<void>((resolve) => this.#wakeConsumers.push(resolve));
    }
    if (cancelled()) return undefined;
    if (this.#failure !== null) {
      throw new DataPlaneError("failed", `edge \`${this.id}\` failed: ${this.#failure}`);
    }
    const handle = this.#sequence[cursor - this.#base];
    if (handle === undefined) {
      // Closed and drained for this consumer: it got its `end`.
      this.#ended.add(consumer);
      this.#checkDrained();
      return undefined;
    }
    this.#cursors.set(consumer, cursor + 1);
    this.#trim();
    return { ticket: handle.id, rows: handle.rows, bytes: handle.length };
  }

  /** Forgets objects every consumer has taken (their publications track the rest). */
  #trim(): void {
    const slowest = Math.min(...this.#cursors.values());
    while (this.#base < slowest && this.#sequence.length > 0) {
      this.#sequence.shift();
      this.#base++;
    }
  }

  #checkDrained(): void {
    // The edge goes once nothing is in flight and every consumer got its `end`.
    if (this.#closed && this.#inFlight === 0 && this.#ended.size === this.consumers.length) {
      this.onDrained();
    }
  }

  #wake(waiters: (() => void)[]): void {
    for (const wake of waiters.splice(0)) wake();
  }
}

type Descriptor = { type: string; cmd: Uint8Array; path: string[] };
type ActionRequest = { type: string; body: Uint8Array };

const SERVICE_PATH = "/arrow.flight.protocol.FlightService/";
/** How long a consumer's `next` waits for a producer to open the edge it names. */
const EDGE_WAIT_MS = 60_000;

function ticketOf(descriptor: Descriptor): string {
  if (descriptor.path?.length === 1) return descriptor.path[0];
  if (descriptor.cmd?.byteLength > 0) return new TextDecoder().decode(descriptor.cmd);
  throw new DataPlaneError("invalid", "a descriptor names one object: a one-element path or a cmd");
}

function parseBody(body: Uint8Array): Record<string, unknown> {
  try {
    const value = JSON.parse(new TextDecoder().decode(body));
    if (typeof value === "object" && value !== null) return value;
  } catch {
    // Reported below.
  }
  throw new DataPlaneError("invalid", "an action body must be a JSON object");
}

function field(request: Record<string, unknown>, name: string): string {
  const value = request[name];
  if (typeof value !== "string" || value === "") {
    throw new DataPlaneError("invalid", `the action body needs a string \`${name}\``);
  }
  return value;
}

const codes: Partial<Record<DataPlaneErrorCode, number>> = {
  "not-found": GrpcStatus.NOT_FOUND,
  "invalid": GrpcStatus.INVALID_ARGUMENT,
  "unauthenticated": GrpcStatus.UNAUTHENTICATED,
  "unimplemented": GrpcStatus.UNIMPLEMENTED,
};

function toStatus(error: unknown): { code: number; message: string } {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof DataPlaneError) {
    return { code: codes[error.code] ?? GrpcStatus.INTERNAL, message };
  }
  if (error instanceof RegistryError && error.code === "unknown-object") {
    return { code: GrpcStatus.NOT_FOUND, message };
  }
  return { code: GrpcStatus.INTERNAL, message };
}

/** A listening Flight server; `address` has the port resolved. */
export interface FlightListening {
  address: string;
  close(): Promise<void>;
}

/**
 * Serves `plane` over Flight at `address` (`host:port`, port 0 picks one), to callers with
 * the node's credentials (its control channel's: the token every call must carry, and TLS
 * when given); there is no way to serve it without a token.
 */
export async function serveFlight(
  plane: DataPlane,
  address: string,
  credentials: Credentials,
): Promise<FlightListening> {
  const colon = address.lastIndexOf(":");
  const hostname = address.slice(0, colon).replace(/^\[|\]$/g, "");
  const server = await serveH2(
    hostname,
    Number(address.slice(colon + 1)),
    credentials,
    (call) => plane.handle(call),
  );
  return {
    address: `${address.slice(0, colon)}:${server.port}`,
    close: () => server.close(),
  };
}
