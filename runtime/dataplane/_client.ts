/**
 * The consumer side of the data plane: pulls a Flight stream from a peer (a Heddle worker or
 * any Arrow Flight server) into the local registry. Every message is checked as it arrives
 * (the registry's framing check, schema first, body lengths), the stream is laid out once in
 * a new shared-memory segment, and the registry adopts it only after its full validation, so
 * a peer's bytes are treated exactly like a plugin's. Errors name the peer's address.
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import {
  createSegment,
  type ObjectHandle,
  type Registry,
  RegistryError,
  removeSegment,
  segmentName,
} from "../registry/mod.ts";
import type { FlightData } from "./_codec.ts";
import { DataPlaneError, type DataPlaneErrorCode } from "./_errors.ts";
import type { NextObject } from "./_server.ts";
import { CHANNEL_OPTIONS, flightService } from "./_service.ts";
import { StreamAssembler } from "./_stream.ts";

let nextSerial = 1;

export interface GetOptions {
  /** Local consumers of the adopted object (its registry consumer count), default 1. */
  consumers?: number;
  /** The schema fingerprint the consumer expects; anything else is `schema-mismatch`. */
  schemaFingerprint?: string;
}

/** Counters of what the client moved. */
export interface ClientStats {
  /** Header and body bytes received in DoGet streams. */
  bytesReceived: number;
  /** Objects adopted into the local registry. */
  objects: number;
}

// deno-lint-ignore no-explicit-any
type Stub = any;

const Client = grpc.makeGenericClientConstructor(flightService(), "FlightService");

/** A Flight client bound to one peer. */
export class FlightClient {
  readonly address: string;
  #stub: Stub;
  #stats: ClientStats = { bytesReceived: 0, objects: 0 };

  constructor(address: string) {
    this.address = address;
    this.#stub = new Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  }

  /** Fetches the stream of `ticket` with DoGet and adopts it into `registry`. */
  get(ticket: string | Uint8Array, registry: Registry, options: GetOptions = {}) {
    const bytes = typeof ticket === "string" ? Buffer.from(ticket) : ticket;
    const name = typeof ticket === "string" ? ticket : `${bytes.byteLength}-byte ticket`;
    const assembler = new StreamAssembler(`Flight peer ${this.address} (ticket \`${name}\`)`);
    return new Promise<ObjectHandle>((resolve, reject) => {
      const stream = this.#stub.DoGet({ ticket: bytes });
      let failed = false;
      stream.on("data", (message: FlightData) => {
        if (failed) return;
        try {
          assembler.add(message.dataHeader, message.dataBody);
          this.#stats.bytesReceived += message.dataHeader.byteLength + message.dataBody.byteLength;
        } catch (error) {
          failed = true;
          stream.cancel();
          reject(error);
        }
      });
      stream.on("error", (error: grpc.ServiceError) => {
        if (!failed && error.code !== grpc.status.CANCELLED) reject(this.#error(error));
        failed = true;
      });
      stream.on("end", () => {
        if (failed) return;
        try {
          resolve(this.#adopt(assembler, registry, options));
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  /** Runs an action; resolves with the bodies of its results. */
  action(type: string, body: unknown): Promise<Uint8Array[]> {
    const encoded = Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const results: Uint8Array[] = [];
      const stream = this.#stub.DoAction({ type, body: encoded });
      stream.on("data", (result: { body: Uint8Array }) => results.push(result.body));
      stream.on("error", (error: grpc.ServiceError) => reject(this.#error(error)));
      stream.on("end", () => resolve(results));
    });
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
      const handle = await this.get(next.ticket, registry, options);
      await this.release(next.ticket, consumer);
      yield handle;
    }
  }

  stats(): ClientStats {
    return { ...this.#stats };
  }

  close(): void {
    this.#stub.close();
  }

  #adopt(assembler: StreamAssembler, registry: Registry, options: GetOptions): ObjectHandle {
    const stream = assembler.finish();
    if (options.schemaFingerprint && stream.schemaFingerprint !== options.schemaFingerprint) {
      throw new DataPlaneError(
        "schema-mismatch",
        `${assembler.where} sent schema ${stream.schemaFingerprint}, ` +
          `expected ${options.schemaFingerprint}`,
      );
    }
    const name = segmentName(registry.ownerPid, nextSerial++, {
      tag: "flight",
      prefix: registry.prefix,
    });
    const segment = createSegment(name, stream.byteLength);
    try {
      stream.writeInto(segment.bytes);
    } catch (error) {
      segment.release();
      removeSegment(name);
      throw error;
    }
    segment.release();
    const handle: ObjectHandle = {
      id: name.slice(1),
      segment: name,
      offset: 0,
      length: stream.byteLength,
      schemaFingerprint: stream.schemaFingerprint,
      rows: stream.rows,
    };
    try {
      // Adoption validates the whole stream again (apache-arrow, buffer sizes, row count).
      const adopted = registry.adopt(handle, options.consumers ?? 1);
      this.#stats.objects++;
      return adopted;
    } catch (error) {
      removeSegment(name);
      if (error instanceof RegistryError) {
        throw new DataPlaneError(
          error.code === "truncated" ? "truncated" : "corrupt",
          `${assembler.where}: ${error.message}`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  #error(error: grpc.ServiceError): DataPlaneError {
    const code: DataPlaneErrorCode = error.code === grpc.status.UNAVAILABLE
      ? "unavailable"
      : error.code === grpc.status.UNAUTHENTICATED
      ? "unauthenticated"
      : error.code === grpc.status.NOT_FOUND
      ? "not-found"
      : error.code === grpc.status.INVALID_ARGUMENT
      ? "invalid"
      : "failed";
    return new DataPlaneError(
      code,
      `Flight peer ${this.address}: ${error.details || error.message}`,
      { cause: error },
    );
  }
}
