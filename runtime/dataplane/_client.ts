/**
 * The consumer side of the data plane: pulls a Flight stream from a peer (a Heddle worker or
 * any Arrow Flight server) into the local registry. Every message is checked as it arrives
 * (the registry's framing check, schema first, body lengths), the stream is laid out once in
 * a new shared-memory segment, and the registry adopts it only after its full validation, so
 * a peer's bytes are treated exactly like a plugin's. Errors name the peer's address.
 */
import { Buffer } from "node:buffer";
import {
  type MappedSegment,
  type ObjectHandle,
  type Registry,
  RegistryError,
  removeSegment,
} from "../registry/mod.ts";
import { FlightDataReader, WireError } from "./_codec.ts";
import { DataPlaneError, type DataPlaneErrorCode } from "./_errors.ts";
import { GrpcError, GrpcStatus, H2Client, type MessageSink, wholeMessages } from "./_h2.ts";
import type { NextObject } from "./_server.ts";
import type { Credentials } from "../protocol/mod.ts";
import { flightService } from "./_service.ts";
import { StreamAssembler } from "./_stream.ts";

/**
 * A segment for a received stream, from the registry's pool when one fits (pages touched
 * before: no allocation, zeroing or faults for each object), named so the registry's
 * janitor knows its owner.
 */
function newSegment(registry: Registry, size: number): MappedSegment {
  if (!Number.isSafeInteger(size) || size < 16) {
    throw new DataPlaneError("invalid", `a stream of ${size} bytes cannot hold an Arrow schema`);
  }
  return registry.writableSegment(size, "flight");
}

export interface GetOptions {
  /** Local consumers of the adopted object (its registry consumer count), default 1. */
  consumers?: number;
  /** The schema fingerprint the consumer expects; anything else is `schema-mismatch`. */
  schemaFingerprint?: string;
  /**
   * The stream's size in bytes when the producer announced it (a Heddle edge's `next`
   * does): the stream is then written straight into its segment as it arrives, instead of
   * being kept in memory and copied in at the end. A stream of another size is refused.
   */
  bytes?: number;
}

/** Counters of what the client moved. */
export interface ClientStats {
  /** Header and body bytes received in DoGet streams. */
  bytesReceived: number;
  /** Objects adopted into the local registry. */
  objects: number;
}

const SERVICE_PATH = "/arrow.flight.protocol.FlightService/";

/** A Flight client bound to one peer (`host:port`), over one HTTP/2 connection. */
export class FlightClient {
  readonly address: string;
  #h2: H2Client;
  #stats: ClientStats = { bytesReceived: 0, objects: 0 };

  /** `credentials`: the node's token and TLS material, as the peer's server requires. */
  constructor(address: string, credentials: Credentials = { token: null, tls: null }) {
    this.address = address;
    const colon = address.lastIndexOf(":");
    const port = Number(address.slice(colon + 1));
    if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
      throw new DataPlaneError("invalid", `\`${address}\` is not a host:port Flight address`);
    }
    this.#h2 = new H2Client(address.slice(0, colon).replace(/^\[|\]$/g, ""), port, credentials);
  }

  /** Fetches the stream of `ticket` with DoGet and adopts it into `registry`. */
  async get(
    ticket: string | Uint8Array,
    registry: Registry,
    options: GetOptions = {},
  ): Promise<ObjectHandle> {
    const bytes = typeof ticket === "string" ? Buffer.from(ticket) : ticket;
    const name = typeof ticket === "string" ? ticket : `${bytes.byteLength}-byte ticket`;
    const where = `Flight peer ${this.address} (ticket \`${name}\`)`;
    const segment = options.bytes === undefined ? undefined : newSegment(registry, options.bytes);
    try {
      const assembler = new StreamAssembler(where, segment?.bytes.subarray(0, options.bytes));
      const reader = new FlightDataReader((header, _appMetadata, bodyLength) => {
        this.#stats.bytesReceived += header.byteLength + bodyLength;
        return assembler.begin(header, bodyLength);
      });
      await this.#call("DoGet", { ticket: bytes }, reader);
      const stream = assembler.finish();
      if (options.schemaFingerprint && stream.schemaFingerprint !== options.schemaFingerprint) {
        throw new DataPlaneError(
          "schema-mismatch",
          `${where} sent schema ${stream.schemaFingerprint}, expected ${options.schemaFingerprint}`,
        );
      }
      let written = segment;
      if (written === undefined) {
        written = newSegment(registry, stream.byteLength);
        try {
          stream.writeInto(written.bytes);
        } catch (error) {
          written.release();
          removeSegment(written.location);
          throw error;
        }
      }
      return this.#adopt(where, registry, options, {
        id: written.location.slice(1),
        segment: written.location,
        offset: 0,
        length: stream.byteLength,
        schemaFingerprint: stream.schemaFingerprint,
        rows: stream.rows,
      }, written);
    } catch (error) {
      if (segment !== undefined) {
        segment.release();
        removeSegment(segment.location);
      }
      if (error instanceof WireError) {
        throw new DataPlaneError(
          "corrupt",
          `${where} sent a malformed FlightData: ${error.message}`,
        );
      }
      throw error;
    }
  }

  /** Runs an action; resolves with the bodies of its results. */
  async action(type: string, body: unknown): Promise<Uint8Array[]> {
    const results: Uint8Array[] = [];
    const encoded = Buffer.from(JSON.stringify(body));
    const method = flightService().DoAction;
    await this.#call(
      "DoAction",
      { type, body: encoded },
      wholeMessages((message) => {
        results.push(
          (method.responseDeserialize(Buffer.from(message)) as { body: Uint8Array }).body,
        );
      }),
    );
    return results;
  }

  /** The actions the peer lists (ListActions). */
  async listActions(): Promise<{ type: string; description: string }[]> {
    const actions: { type: string; description: string }[] = [];
    const method = flightService().ListActions;
    await this.#call(
      "ListActions",
      {},
      wholeMessages((message) => {
        actions.push(method.responseDeserialize(Buffer.from(message)) as (typeof actions)[number]);
      }),
    );
    return actions;
  }

  /** One call; protocol and peer errors become DataPlaneErrors naming the peer. */
  async #call(name: string, request: unknown, sink: MessageSink) {
    const method = flightService()[name];
    try {
      await this.#h2.call(SERVICE_PATH + name, method.requestSerialize(request), sink);
    } catch (error) {
      if (error instanceof GrpcError) throw this.#error(error);
      throw error;
    }
  }

  /** Tells the producer that `consumer` holds its own copy of `ticket`. */
  async release(ticket: string, consumer: string): Promise<void> {
    await this.action("release", { ticket, consumer });
  }

  /**
   * The objects of a remote edge, in order, each adopted into `registry` and released at the
   * producer before it is yielded. Pulls the next object only when asked, so a consumer
   * that stops asking holds the producer back (its edge's capacity fills up).
   */
  async *pull(
    edge: string,
    consumer: string,
    registry: Registry,
    options: GetOptions = {},
  ): AsyncGenerator<ObjectHandle> {
    while (true) {
      const [answer] = await this.action("next", { edge, consumer });
      const next = JSON.parse(new TextDecoder().decode(answer)) as NextObject | { end: true };
      if ("end" in next) return;
      const handle = await this.get(next.ticket, registry, { ...options, bytes: next.bytes });
      await this.release(next.ticket, consumer);
      yield handle;
    }
  }

  stats(): ClientStats {
    return { ...this.#stats };
  }

  close(): void {
    this.#h2.close();
  }

  /** Adopts a written segment; the registry validates the whole stream again. */
  #adopt(
    where: string,
    registry: Registry,
    options: GetOptions,
    handle: ObjectHandle,
    writer: MappedSegment,
  ) {
    try {
      const adopted = registry.adopt(handle, options.consumers ?? 1, writer);
      this.#stats.objects++;
      return adopted;
    } catch (error) {
      removeSegment(handle.segment);
      if (error instanceof RegistryError) {
        throw new DataPlaneError(
          error.code === "truncated" ? "truncated" : "corrupt",
          `${where}: ${error.message}`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  #error(error: GrpcError): DataPlaneError {
    const code: DataPlaneErrorCode = error.code === GrpcStatus.UNAVAILABLE
      ? "unavailable"
      : error.code === GrpcStatus.UNAUTHENTICATED
      ? "unauthenticated"
      : error.code === GrpcStatus.NOT_FOUND
      ? "not-found"
      : error.code === GrpcStatus.INVALID_ARGUMENT
      ? "invalid"
      : error.code === GrpcStatus.UNIMPLEMENTED
      ? "unimplemented"
      : "failed";
    return new DataPlaneError(code, `Flight peer ${this.address}: ${error.message}`, {
      cause: error,
    });
  }
}
