/**
 * Between an Arrow IPC stream (what the registry stores) and Flight messages (what goes on
 * the wire). Splitting hands out views of the stream's metadata and bodies, so serving an
 * object reads straight from its shared-memory mapping. Assembling checks every arriving
 * message with the registry's own framing check before keeping it, and lays the messages
 * out again as an IPC stream with 8-byte aligned bodies, so the registry can adopt it and
 * read it in place. Nothing here trusts a length the peer sent.
 */
import { RecordBatchReader } from "apache-arrow";
import { checkMessageMetadata, schemaFingerprint } from "../registry/mod.ts";
import { DataPlaneError } from "./_errors.ts";

const HEADER_SCHEMA = 1;
const HEADER_RECORD_BATCH = 3;
const CONTINUATION = 0xffffffff;

/** One IPC message: its flatbuffer metadata and its body, views over the stream. */
export interface IpcMessage {
  metadata: Uint8Array;
  body: Uint8Array;
}

/** The messages of a stream the registry already validated, end-of-stream marker excluded. */
export function splitStream(bytes: Uint8Array): IpcMessage[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const messages: IpcMessage[] = [];
  let at = 0;
  while (at + 8 <= bytes.byteLength) {
    const metadataLength = view.getInt32(at + 4, true);
    if (metadataLength === 0) break;
    const metadata = bytes.subarray(at + 8, at + 8 + metadataLength);
    const info = checkMessageMetadata(metadata);
    if ("kind" in info) throw new DataPlaneError("corrupt", `stored message: ${info.detail}`);
    const bodyStart = at + 8 + metadataLength;
    messages.push({ metadata, body: bytes.subarray(bodyStart, bodyStart + info.bodyLength) });
    at = bodyStart + info.bodyLength;
  }
  return messages;
}

/** The encapsulated schema message (prefix and metadata), as SchemaResult and FlightInfo carry. */
export function encapsulate(metadata: Uint8Array): Uint8Array {
  const padded = pad8(metadata.byteLength);
  const out = new Uint8Array(8 + padded);
  const view = new DataView(out.buffer);
  view.setUint32(0, CONTINUATION, true);
  view.setInt32(4, padded, true);
  out.set(metadata, 8);
  return out;
}

function pad8(n: number): number {
  return (n + 7) & ~7;
}

/** What an assembled stream holds: enough to build a registry handle. */
export interface Assembled {
  byteLength: number;
  rows: number;
  schemaFingerprint: string;
  /** Writes the stream (messages, end-of-stream marker) to the start of `target`. */
  writeInto(target: Uint8Array): void;
}

/**
 * Lays out the Flight messages of one stream as an Arrow IPC stream. `begin` checks each
 * message's header as it arrives (framing, a schema first, no second schema, the body as
 * long as the header declares) and says where its body goes; `finish` completes the stream.
 * With a `target` (memory of the stream's announced size, a new segment), headers and bodies
 * are written into it as they arrive; without, they are kept until `writeInto`. `where`
 * names the peer in messages.
 */
export class StreamAssembler {
  #messages: IpcMessage[] = [];
  #count = 0;
  #byteLength = 8; // the end-of-stream marker
  #rows = 0;
  #fingerprint: string | undefined;

  constructor(readonly where: string, readonly target?: Uint8Array) {}

  /** Checks one message's metadata; returns the memory its `bodyLength`-byte body goes to. */
  begin(metadata: Uint8Array, bodyLength: number): Uint8Array {
    const index = this.#count;
    if (metadata.byteLength === 0) {
      // Flight allows messages that carry only app_metadata; they hold no Arrow data.
      if (bodyLength === 0) return new Uint8Array(0);
      throw this.#corrupt(`message ${index} has a body but no header`);
    }
    const info = checkMessageMetadata(metadata);
    if ("kind" in info) throw this.#corrupt(`message ${index}: ${info.detail}`);
    if (index === 0 && info.headerType !== HEADER_SCHEMA) {
      throw this.#corrupt(`the first message is of type ${info.headerType}, not a schema`);
    }
    if (index > 0 && info.headerType === HEADER_SCHEMA) {
      throw this.#corrupt(`message ${index} is a second schema`);
    }
    if (bodyLength !== info.bodyLength) {
      throw new DataPlaneError(
        bodyLength < info.bodyLength ? "truncated" : "corrupt",
        `${this.where} sent message ${index} with a ${bodyLength}-byte body; ` +
          `its header declares ${info.bodyLength}`,
      );
    }
    if (index === 0) this.#fingerprint = readFingerprint(metadata, this.where);
    if (info.headerType === HEADER_RECORD_BATCH) this.#rows += info.rows;
    this.#count++;
    // Bodies are not padded: the next message starts where the declared body ends (Arrow
    // writers keep body lengths multiples of 8, so bodies stay aligned).
    const at = this.#byteLength - 8;
    this.#byteLength += 8 + pad8(metadata.byteLength) + bodyLength;
    if (this.target === undefined) {
      const body = new Uint8Array(bodyLength);
      this.#messages.push({ metadata: metadata.slice(), body });
      return body;
    }
    if (this.#byteLength > this.target.byteLength) {
      throw this.#corrupt(`the stream grows past the ${this.target.byteLength} bytes announced`);
    }
    const bodyStart = writeMessageHead(this.target, at, metadata);
    return this.target.subarray(bodyStart, bodyStart + bodyLength);
  }

  finish(): Assembled {
    if (this.#fingerprint === undefined) {
      throw new DataPlaneError("truncated", `${this.where} ended the stream before its schema`);
    }
    if (this.target !== undefined) {
      if (this.#byteLength !== this.target.byteLength) {
        throw new DataPlaneError(
          "truncated",
          `${this.where} sent ${this.#byteLength} bytes of stream, ${this.target.byteLength} announced`,
        );
      }
      writeEnd(this.target, this.#byteLength - 8);
    }
    const messages = this.#messages;
    return {
      byteLength: this.#byteLength,
      rows: this.#rows,
      schemaFingerprint: this.#fingerprint,
      writeInto(target) {
        let at = 0;
        for (const { metadata, body } of messages) {
          at = writeMessageHead(target, at, metadata);
          target.set(body, at);
          at += body.byteLength;
        }
        writeEnd(target, at);
      },
    };
  }

  #corrupt(detail: string): DataPlaneError {
    return new DataPlaneError("corrupt", `${this.where} sent a bad Arrow message: ${detail}`);
  }
}

/** Writes a message's prefix and padded metadata at `at`; returns where its body starts. */
function writeMessageHead(target: Uint8Array, at: number, metadata: Uint8Array): number {
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  const padded = pad8(metadata.byteLength);
  view.setUint32(at, CONTINUATION, true);
  view.setInt32(at + 4, padded, true);
  target.set(metadata, at + 8);
  target.fill(0, at + 8 + metadata.byteLength, at + 8 + padded);
  return at + 8 + padded;
}

function writeEnd(target: Uint8Array, at: number): void {
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  view.setUint32(at, CONTINUATION, true);
  view.setInt32(at + 4, 0, true);
}

/** The fingerprint of a schema message, read by apache-arrow after the framing check. */
function readFingerprint(metadata: Uint8Array, where: string): string {
  const schemaOnly = new Uint8Array(8 + pad8(metadata.byteLength) + 8);
  schemaOnly.set(encapsulate(metadata));
  new DataView(schemaOnly.buffer).setUint32(schemaOnly.byteLength - 8, CONTINUATION, true);
  try {
    const reader = RecordBatchReader.from(schemaOnly);
    reader.open();
    return schemaFingerprint(reader.schema);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new DataPlaneError(
      "corrupt",
      `${where} sent a schema apache-arrow cannot read: ${detail}`,
    );
  }
}
