/**
 * The protobuf wire encoding of `FlightData` (proto/flight.proto), written by hand because
 * it carries the Arrow bodies: protobufjs would copy a body into its own writer and again
 * into the result, and decode it into a fresh buffer. Here encoding writes the few bytes of
 * framing and copies the body once, and decoding returns views into the received message.
 * Decoding never trusts a length: every field must lie inside the message, and unknown
 * fields are skipped by their wire type as protobuf requires.
 */
import { Buffer } from "node:buffer";

/** `FlightDescriptor.DescriptorType`. */
export type DescriptorType = "UNKNOWN" | "PATH" | "CMD";

export interface FlightDescriptor {
  type: DescriptorType;
  cmd: Uint8Array;
  path: string[];
}

/** One Flight message: an Arrow IPC message split into metadata and body. */
export interface FlightData {
  flightDescriptor?: FlightDescriptor;
  /** The IPC message's flatbuffer metadata, without the 8-byte prefix. */
  dataHeader: Uint8Array;
  appMetadata: Uint8Array;
  /** The IPC message's body. */
  dataBody: Uint8Array;
}

/** A malformed protobuf message from the peer. */
export class WireError extends Error {
  override name = "WireError";
}

const DESCRIPTOR_TYPES: DescriptorType[] = ["UNKNOWN", "PATH", "CMD"];
const EMPTY = new Uint8Array(0);

/** Where the varint at `at` ends, or -1 when its last byte has not arrived yet. */
function varintEnd(bytes: Uint8Array, at: number): number {
  for (let i = at; i < bytes.byteLength && i < at + 10; i++) if (bytes[i] < 0x80) return i + 1;
  // Ten bytes without an end is malformed: the reader says so.
  return bytes.byteLength >= at + 10 ? at + 10 : -1;
}

/**
 * Whether a field's tag and what follows it up to its payload have arrived: the length of
 * a length-delimited field, the value of a varint or fixed-size one (any other wire type
 * is refused by the reader).
 */
function fieldStartArrived(head: Uint8Array): boolean {
  const tagEnd = varintEnd(head, 0);
  if (tagEnd < 0) return false;
  const wireType = head[0] & 7;
  if (wireType === 0 || wireType === 2) return varintEnd(head, tagEnd) >= 0;
  if (wireType === 1) return head.byteLength >= tagEnd + 8;
  if (wireType === 5) return head.byteLength >= tagEnd + 4;
  return true;
}

/** Tag bytes: (field number << 3) | wire type 2 (length-delimited), as varints. */
const TAG_DESCRIPTOR = 0x0a;
const TAG_HEADER = 0x12;
const TAG_APP_METADATA = 0x1a;
const TAG_BODY = [0xc2, 0x3e]; // field 1000

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function writeVarint(target: Uint8Array, at: number, value: number): number {
  while (value >= 0x80) {
    target[at++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  target[at++] = value;
  return at;
}

function encodeDescriptor(descriptor: FlightDescriptor): Uint8Array {
  const text = new TextEncoder();
  const paths = descriptor.path.map((p) => text.encode(p));
  const typeCode = DESCRIPTOR_TYPES.indexOf(descriptor.type);
  let size = typeCode > 0 ? 1 + varintSize(typeCode) : 0;
  if (descriptor.cmd.byteLength > 0) {
    size += 1 + varintSize(descriptor.cmd.byteLength) + descriptor.cmd.byteLength;
  }
  for (const p of paths) size += 1 + varintSize(p.byteLength) + p.byteLength;
  const out = new Uint8Array(size);
  let at = 0;
  if (typeCode > 0) {
    out[at++] = 0x08;
    at = writeVarint(out, at, typeCode);
  }
  if (descriptor.cmd.byteLength > 0) at = writeBytes(out, at, 0x12, descriptor.cmd);
  for (const p of paths) at = writeBytes(out, at, 0x1a, p);
  return out;
}

function writeBytes(out: Uint8Array, at: number, tag: number, bytes: Uint8Array): number {
  out[at++] = tag;
  at = writeVarint(out, at, bytes.byteLength);
  out.set(bytes, at);
  return at + bytes.byteLength;
}

function fieldSize(tagBytes: number, length: number): number {
  return tagBytes + varintSize(length) + length;
}

/**
 * Encodes one FlightData as two parts: the protobuf framing with the small fields, and the
 * body itself (a view, not copied), which comes last on the wire because it is field 1000.
 */
export function encodeFlightDataParts(data: FlightData): Uint8Array[] {
  const descriptor = data.flightDescriptor ? encodeDescriptor(data.flightDescriptor) : undefined;
  let size = 0;
  if (descriptor) size += fieldSize(1, descriptor.byteLength);
  if (data.dataHeader.byteLength > 0) size += fieldSize(1, data.dataHeader.byteLength);
  if (data.appMetadata.byteLength > 0) size += fieldSize(1, data.appMetadata.byteLength);
  const body = data.dataBody.byteLength;
  if (body > 0) size += 2 + varintSize(body);
  const head = new Uint8Array(size);
  let at = 0;
  if (descriptor) at = writeBytes(head, at, TAG_DESCRIPTOR, descriptor);
  if (data.dataHeader.byteLength > 0) at = writeBytes(head, at, TAG_HEADER, data.dataHeader);
  if (data.appMetadata.byteLength > 0) {
    at = writeBytes(head, at, TAG_APP_METADATA, data.appMetadata);
  }
  if (body === 0) return [head];
  head[at++] = TAG_BODY[0];
  head[at++] = TAG_BODY[1];
  writeVarint(head, at, body);
  return [head, data.dataBody];
}

/** Encodes one FlightData into one buffer (for grpc-js, which wants a single buffer). */
export function encodeFlightData(data: FlightData): Buffer {
  const parts = encodeFlightDataParts(data);
  const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Reads protobuf fields from a message, checking every length against its end. */
class Reader {
  at = 0;
  constructor(readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.at >= this.bytes.byteLength;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.at >= this.bytes.byteLength) throw new WireError("a varint runs past the message");
      const byte = this.bytes[this.at++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(value)) throw new WireError(`varint ${value} is too large`);
        return value;
      }
      scale *= 128;
    }
    throw new WireError("a varint is longer than 10 bytes");
  }

  /** A length-delimited field's bytes, as a view. */
  bytesField(): Uint8Array {
    const length = this.varint();
    const end = this.at + length;
    if (end > this.bytes.byteLength) {
      throw new WireError(
        `a field declares ${length} bytes, ${this.bytes.byteLength - this.at} remain`,
      );
    }
    const view = this.bytes.subarray(this.at, end);
    this.at = end;
    return view;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.advance(8);
    else if (wireType === 2) this.bytesField();
    else if (wireType === 5) this.advance(4);
    else throw new WireError(`wire type ${wireType} is not supported`);
  }

  advance(count: number): void {
    if (this.at + count > this.bytes.byteLength) throw new WireError("a field runs past the end");
    this.at += count;
  }
}

function decodeDescriptor(bytes: Uint8Array): FlightDescriptor {
  const reader = new Reader(bytes);
  const descriptor: FlightDescriptor = { type: "UNKNOWN", cmd: EMPTY, path: [] };
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    if (field === 1 && tag % 8 === 0) {
      descriptor.type = DESCRIPTOR_TYPES[reader.varint()] ?? "UNKNOWN";
    } else if (field === 2 && tag % 8 === 2) descriptor.cmd = reader.bytesField();
    else if (field === 3 && tag % 8 === 2) {
      descriptor.path.push(new TextDecoder().decode(reader.bytesField()));
    } else reader.skip(tag % 8);
  }
  return descriptor;
}

/** Decodes one FlightData; the byte fields are views into `bytes`. */
export function decodeFlightData(bytes: Uint8Array): FlightData {
  const reader = new Reader(bytes);
  const data: FlightData = { dataHeader: EMPTY, appMetadata: EMPTY, dataBody: EMPTY };
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (wireType !== 2 || ![1, 2, 3, 1000].includes(field)) {
      reader.skip(wireType);
      continue;
    }
    const value = reader.bytesField();
    if (field === 1) data.flightDescriptor = decodeDescriptor(value);
    else if (field === 2) data.dataHeader = value;
    else if (field === 3) data.appMetadata = value;
    else data.dataBody = value;
  }
  return data;
}

/** Bytes of FlightData fields other than the body a streaming reader keeps per message. */
const MAX_HEAD = 64 << 20;

/**
 * Reads FlightData messages as their bytes stream in, without holding a whole message: the
 * small fields are collected, and when the body's tag and length arrive, `onHeader` says
 * where the body goes (a view into its final place, such as a shared-memory segment), and
 * the body's bytes are copied there straight from the socket buffer. Bodies must come after
 * data_header, as field 1000 does in every Arrow implementation's encoding.
 */
export class FlightDataReader {
  #head = new Uint8Array(256);
  #headLength = 0;
  /** Parsed prefix of `#head`. */
  #parsed = 0;
  #header: Uint8Array = EMPTY;
  #appMetadata: Uint8Array = EMPTY;
  #body: Uint8Array | undefined;
  #bodyHave = 0;
  #sawBody = false;

  constructor(
    readonly onHeader: (
      header: Uint8Array,
      appMetadata: Uint8Array,
      bodyLength: number,
    ) => Uint8Array,
  ) {}

  start(_length: number): void {
    this.#headLength = 0;
    this.#parsed = 0;
    this.#header = EMPTY;
    this.#appMetadata = EMPTY;
    this.#body = undefined;
    this.#bodyHave = 0;
    this.#sawBody = false;
  }

  bytes(piece: Uint8Array): void {
    let at = 0;
    while (at < piece.byteLength) {
      if (this.#body !== undefined) {
        const take = Math.min(this.#body.byteLength - this.#bodyHave, piece.byteLength - at);
        this.#body.set(piece.subarray(at, at + take), this.#bodyHave);
        this.#bodyHave += take;
        at += take;
        if (this.#bodyHave === this.#body.byteLength) this.#body = undefined;
        continue;
      }
      // Head bytes: keep them until a whole field (or the body's tag and length) is there.
      const take = this.#sawBody ? piece.byteLength - at : Math.min(piece.byteLength - at, 16);
      this.#keep(piece.subarray(at, at + take));
      at += take;
      this.#parse();
    }
  }

  end(): void {
    if (this.#body !== undefined) throw new WireError("a FlightData message ends inside its body");
    this.#parse();
    if (this.#parsed !== this.#headLength) {
      throw new WireError("a FlightData message ends inside a field");
    }
    if (!this.#sawBody) this.onHeader(this.#header, this.#appMetadata, 0);
  }

  #keep(bytes: Uint8Array): void {
    if (this.#headLength + bytes.byteLength > this.#head.byteLength) {
      if (this.#headLength + bytes.byteLength > MAX_HEAD) {
        throw new WireError(`FlightData fields before the body exceed ${MAX_HEAD} bytes`);
      }
      const grown = new Uint8Array(
        Math.max(this.#head.byteLength * 2, this.#headLength + bytes.byteLength),
      );
      grown.set(this.#head.subarray(0, this.#headLength));
      this.#head = grown;
    }
    this.#head.set(bytes, this.#headLength);
    this.#headLength += bytes.byteLength;
  }

  /** Parses whole fields from the kept head bytes; stops at an incomplete one. */
  #parse(): void {
    while (this.#parsed < this.#headLength && this.#body === undefined) {
      const head = this.#head.subarray(this.#parsed, this.#headLength);
      // A field's tag and its length (or value) must have arrived whole: checked before
      // reading, since a head arrives in pieces and an exception per piece is costly.
      if (!fieldStartArrived(head)) return;
      const reader = new Reader(head);
      const tag = reader.varint();
      const wireType = tag % 8;
      if (wireType !== 2) {
        reader.skip(wireType);
        this.#parsed += reader.at;
        continue;
      }
      const length = reader.varint();
      const field = Math.floor(tag / 8);
      if (field === 1000) {
        if (this.#sawBody) throw new WireError("a FlightData message has two bodies");
        this.#sawBody = true;
        this.#parsed += reader.at;
        const destination = this.onHeader(this.#header, this.#appMetadata, length);
        if (destination.byteLength !== length) {
          throw new WireError(
            `a body destination of ${destination.byteLength} bytes for ${length}`,
          );
        }
        // Bytes of the body already kept in the head go first.
        const early = this.#head.subarray(
          this.#parsed,
          Math.min(this.#headLength, this.#parsed + length),
        );
        destination.set(early);
        this.#bodyHave = early.byteLength;
        this.#parsed += early.byteLength;
        if (this.#bodyHave < length) this.#body = destination;
        continue;
      }
      if (reader.at + length > this.#headLength - this.#parsed) return; // not all there yet
      const value = this.#head.slice(this.#parsed + reader.at, this.#parsed + reader.at + length);
      this.#parsed += reader.at + length;
      if (field === 2) this.#header = value;
      else if (field === 3) this.#appMetadata = value;
      else if (field === 1) {
        if (this.#sawBody) throw new WireError("a descriptor after the body");
      }
    }
  }
}
