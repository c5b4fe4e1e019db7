/**
 * Checks the framing of an Arrow IPC stream before apache-arrow reads it. apache-arrow
 * trusts lengths it reads from the flatbuffer metadata: a corrupted vector length makes it
 * loop billions of times and run the process out of memory, which no `try` can catch. So
 * this walks every message's prefix, body length and the flatbuffer tables apache-arrow
 * visits (Message, Schema, Field, DictionaryEncoding, RecordBatch, DictionaryBatch, the
 * type tables), checking that every table, vector and string lies inside the metadata.
 * It must stay a pure bounds check over the bytes: no allocation that grows with a length
 * read from the input, and no recursion deeper than `MAX_DEPTH`.
 */

/** Why the framing is bad: "truncated" when something runs past the end, else "corrupt". */
export interface FramingProblem {
  kind: "truncated" | "corrupt";
  detail: string;
}

const CONTINUATION = -1;
const MAX_DEPTH = 64;

const HEADER_SCHEMA = 1;
const HEADER_DICTIONARY_BATCH = 2;
const HEADER_RECORD_BATCH = 3;

/** Flatbuffer `Type` union members whose tables hold more than scalars. */
const TYPE_TIMESTAMP = 10;
const TYPE_UNION = 14;

class Bad extends Error {}

/** Bounds-checked reading of flatbuffer tables, vectors and strings in [start, end). */
class Flatbuffer {
  constructor(readonly view: DataView, readonly start: number, readonly end: number) {}

  need(at: number, width: number, what: string): void {
    if (at < this.start || width < 0 || at + width > this.end) {
      throw new Bad(`${what} lies outside the message metadata`);
    }
  }

  u8(at: number, what: string): number {
    this.need(at, 1, what);
    return this.view.getUint8(at);
  }

  i64(at: number, what: string): bigint {
    this.need(at, 8, what);
    return this.view.getBigInt64(at, true);
  }

  /** Follows the unsigned offset stored at `at`. */
  deref(at: number, what: string): number {
    this.need(at, 4, what);
    const target = at + this.view.getUint32(at, true);
    this.need(target, 0, what);
    return target;
  }

  /** Checks the table at `at` (its vtable and inline fields); returns a field locator. */
  table(at: number, what: string): (field: number) => number {
    this.need(at, 4, what);
    const vtable = at - this.view.getInt32(at, true);
    this.need(vtable, 4, `the vtable of ${what}`);
    const vtableSize = this.view.getUint16(vtable, true);
    const objectSize = this.view.getUint16(vtable + 2, true);
    if (vtableSize < 4 || vtableSize % 2 !== 0) throw new Bad(`the vtable of ${what} is malformed`);
    this.need(vtable, vtableSize, `the vtable of ${what}`);
    this.need(at, objectSize, what);
    return (field) => {
      const slot = 4 + 2 * field;
      if (slot + 2 > vtableSize) return 0;
      const offset = this.view.getUint16(vtable + slot, true);
      if (offset !== 0 && offset >= objectSize) {
        throw new Bad(`field ${field} of ${what} lies outside its table`);
      }
      return offset === 0 ? 0 : at + offset;
    };
  }

  /** A referenced vector: checks its elements fit; returns where they start and how many. */
  vector(at: number, elementSize: number, what: string): { first: number; count: number } {
    const start = this.deref(at, what);
    this.need(start, 4, what);
    const count = this.view.getUint32(start, true);
    this.need(start + 4, count * elementSize, `${what} (${count} elements)`);
    return { first: start + 4, count };
  }

  /** A referenced table, or undefined when the field is absent. */
  child(field: number, what: string): ((field: number) => number) | undefined {
    return field === 0 ? undefined : this.table(this.deref(field, what), what);
  }

  /** Checks each table of a vector of tables. */
  tables(field: number, what: string, each: (table: (field: number) => number) => void): void {
    if (field === 0) return;
    const { first, count } = this.vector(field, 4, what);
    for (let i = 0; i < count; i++) each(this.table(this.deref(first + 4 * i, what), what));
  }
}

function checkKeyValues(fb: Flatbuffer, field: number): void {
  fb.tables(field, "custom metadata", (pair) => {
    for (const part of [0, 1]) if (pair(part) !== 0) fb.vector(pair(part), 1, "a metadata string");
  });
}

function checkField(fb: Flatbuffer, field: (index: number) => number, depth: number): void {
  if (depth > MAX_DEPTH) throw new Bad(`fields nest deeper than ${MAX_DEPTH}`);
  if (field(0) !== 0) fb.vector(field(0), 1, "a field name");
  const typeType = field(2) === 0 ? 0 : fb.u8(field(2), "a field's type tag");
  const type = fb.child(field(3), "a field type");
  if (type !== undefined && typeType === TYPE_TIMESTAMP && type(1) !== 0) {
    fb.vector(type(1), 1, "a timezone");
  }
  if (type !== undefined && typeType === TYPE_UNION && type(1) !== 0) {
    fb.vector(type(1), 4, "union type ids");
  }
  const dictionary = fb.child(field(4), "a dictionary encoding");
  if (dictionary !== undefined) fb.child(dictionary(1), "a dictionary index type");
  fb.tables(field(5), "field children", (child) => checkField(fb, child, depth + 1));
  checkKeyValues(fb, field(6));
}

function checkRecordBatch(fb: Flatbuffer, batch: (field: number) => number): bigint {
  const length = batch(0) === 0 ? 0n : fb.i64(batch(0), "the batch length");
  if (batch(1) !== 0) fb.vector(batch(1), 16, "field nodes");
  if (batch(2) !== 0) fb.vector(batch(2), 16, "buffers");
  fb.child(batch(3), "compression");
  if (batch(4) !== 0) fb.vector(batch(4), 8, "variadic buffer counts");
  return length;
}

/** What one message's metadata says, once checked. */
export interface MessageInfo {
  /** 1 schema, 2 dictionary batch, 3 record batch. */
  headerType: number;
  /** Bytes of body that follow the metadata. */
  bodyLength: number;
  /** Rows of a record batch (0 for other messages). */
  rows: number;
}

/** Checks one `Message` flatbuffer; returns its header type, body length and rows. */
function checkMessage(fb: Flatbuffer): MessageInfo {
  const message = fb.table(fb.deref(fb.start, "the message root"), "the message");
  const headerType = message(1) === 0 ? 0 : fb.u8(message(1), "the header type");
  const bodyLength = message(3) === 0 ? 0n : fb.i64(message(3), "the body length");
  if (bodyLength < 0n || bodyLength > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new Bad(`body length ${bodyLength} is impossible`);
  }
  const header = fb.child(message(2), "the message header");
  if (header === undefined) throw new Bad("the message has no header");
  let rows = 0n;
  if (headerType === HEADER_SCHEMA) {
    fb.tables(header(1), "schema fields", (field) => checkField(fb, field, 0));
    checkKeyValues(fb, header(2));
    if (header(3) !== 0) fb.vector(header(3), 8, "schema features");
  } else if (headerType === HEADER_RECORD_BATCH) {
    rows = checkRecordBatch(fb, header);
    if (rows < 0n || rows > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new Bad(`batch length ${rows} is impossible`);
    }
  } else if (headerType === HEADER_DICTIONARY_BATCH) {
    const data = fb.child(header(1), "dictionary data");
    if (data !== undefined) checkRecordBatch(fb, data);
  } else {
    throw new Bad(`message type ${headerType} is not a schema, batch or dictionary`);
  }
  checkKeyValues(fb, message(4));
  return { headerType, bodyLength: Number(bodyLength), rows: Number(rows) };
}

/**
 * Checks the flatbuffer metadata of one message on its own (for transports that carry
 * messages one at a time, as Arrow Flight does): a problem, or what the metadata declares.
 */
export function checkMessageMetadata(metadata: Uint8Array): MessageInfo | FramingProblem {
  const view = new DataView(metadata.buffer, metadata.byteOffset, metadata.byteLength);
  try {
    return checkMessage(new Flatbuffer(view, 0, metadata.byteLength));
  } catch (error) {
    return { kind: "corrupt", detail: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Walks the stream's messages: each one's prefix, metadata and body must lie inside
 * `bytes`, the first must be a schema, and nothing may follow the end-of-stream marker.
 */
export function checkFraming(bytes: Uint8Array): FramingProblem | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const truncated = (detail: string): FramingProblem => ({ kind: "truncated", detail });
  const corrupt = (detail: string): FramingProblem => ({ kind: "corrupt", detail });
  let at = 0;
  for (let index = 0; at < bytes.byteLength; index++) {
    if (at + 8 > bytes.byteLength) {
      return truncated(`message ${index} at byte ${at} has no complete 8-byte prefix`);
    }
    if (view.getInt32(at, true) !== CONTINUATION) {
      return corrupt(`message ${index} at byte ${at} does not start with 0xFFFFFFFF`);
    }
    const metadataLength = view.getInt32(at + 4, true);
    if (metadataLength === 0) {
      if (index === 0) return corrupt("the stream holds no schema message");
      if (at + 8 !== bytes.byteLength) {
        return corrupt(`${bytes.byteLength - at - 8} bytes follow the end-of-stream marker`);
      }
      return undefined;
    }
    const metadataStart = at + 8;
    if (metadataLength < 0 || metadataStart + metadataLength > bytes.byteLength) {
      return truncated(
        `message ${index} declares ${metadataLength} metadata bytes, ` +
          `${bytes.byteLength - metadataStart} remain`,
      );
    }
    let header: MessageInfo;
    try {
      header = checkMessage(new Flatbuffer(view, metadataStart, metadataStart + metadataLength));
    } catch (error) {
      // Bad carries the reason; anything else (a RangeError) means the same: bad metadata.
      return corrupt(`message ${index}: ${error instanceof Error ? error.message : error}`);
    }
    if (index === 0 && header.headerType !== HEADER_SCHEMA) {
      return corrupt(`the first message is of type ${header.headerType}, not a schema`);
    }
    const bodyStart = metadataStart + metadataLength;
    if (bodyStart + header.bodyLength > bytes.byteLength) {
      return truncated(
        `message ${index} declares a ${header.bodyLength}-byte body, ` +
          `${bytes.byteLength - bodyStart} bytes remain`,
      );
    }
    at = bodyStart + header.bodyLength;
  }
  return at === 0 ? truncated("the stream is empty") : undefined;
}
