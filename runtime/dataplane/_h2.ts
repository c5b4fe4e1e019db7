/**
 * A small HTTP/2 (RFC 9113) for gRPC, on Deno's own sockets, for the Flight data plane.
 * Why not grpc-js's transport: under Deno, grpc-js runs on the `node:http2` compatibility
 * layer, which moved about 100 MB/s on loopback (raw `node:http2`, no gRPC on top) and
 * aborted the whole process (an nghttp2 assertion on GOAWAY) when a client disconnected
 * after a few large streams: a remote peer could kill a worker. Here bodies go from the
 * shared-memory mapping into one staging buffer per write, framed, to the socket.
 *
 * It implements what gRPC needs and nothing more: the connection preface, SETTINGS, HEADERS
 * and CONTINUATION (HPACK from the `hpack` package), DATA with flow control on both levels,
 * WINDOW_UPDATE, PING, RST_STREAM and GOAWAY; no server push, no priorities (ignored). Every
 * length a peer sends is checked; a protocol error closes that connection, never the process.
 */
import { Buffer } from "node:buffer";
// @ts-types="./_hpack.d.ts"
import HPACK from "hpack";
import { connectTls, listenTls, type Socket } from "./_tls.ts";
import {
  bearer,
  type Credentials,
  requireToken,
  TOKEN_HEADER,
  tokenMatches,
  UNAUTHENTICATED_MESSAGE,
} from "../protocol/mod.ts";

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

const DATA = 0;
const HEADERS = 1;
const RST_STREAM = 3;
const SETTINGS = 4;
const PUSH_PROMISE = 5;
const PING = 6;
const GOAWAY = 7;
const WINDOW_UPDATE = 8;
const CONTINUATION = 9;

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

const SETTINGS_INITIAL_WINDOW_SIZE = 4;
const SETTINGS_MAX_FRAME_SIZE = 5;

/** What this side lets a peer send before it must wait for a WINDOW_UPDATE. */
const RECEIVE_WINDOW = 1 << 30;
/** Bytes received before this side gives the credit back (well inside RECEIVE_WINDOW). */
const CREDIT_BATCH = 32 << 20;
/** The largest frame this side accepts (it says so in its SETTINGS). */
const MAX_RECEIVE_FRAME = 1 << 20;
/** Bytes of request body a server keeps per stream (tickets and action bodies are small). */
const MAX_REQUEST_BODY = 16 << 20;
/** Bytes of DATA sent before waiting for the socket to take them. */
const WRITE_CHUNK = 1 << 20;
/** Payload pieces at least this large are written from their source, not gathered. */
const DIRECT_WRITE = 64 << 10;

/** A connection-level protocol error: the connection is closed with GOAWAY. */
class ProtocolError extends Error {}

/** gRPC status codes used here. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** A call a server received: its path, headers and request message. */
export interface ServerCall {
  readonly path: string;
  readonly headers: ReadonlyMap<string, string>;
  /** The request message (the one gRPC message of a unary or server-streaming call). */
  readonly request: Uint8Array;
  /** True once the peer reset the stream or the connection went away. */
  readonly cancelled: boolean;
  /** Sends one gRPC message made of `parts`; resolves when it was handed to the socket. */
  send(parts: Uint8Array[]): Promise<void>;
  /** Ends the call with a status (trailers); idempotent. */
  finish(code: number, message?: string): Promise<void>;
}

interface Frame {
  type: number;
  flags: number;
  stream: number;
  /** A view into the reader's buffer: valid until the next frame is read. */
  payload: Uint8Array;
}

/** Reads frames from a socket into one buffer that grows only for larger frames. */
class FrameReader {
  #buffer = new Uint8Array(1 << 20);
  #start = 0;
  #end = 0;

  constructor(readonly conn: Socket) {}

  async #fill(count: number): Promise<boolean> {
    while (this.#end - this.#start < count) {
      if (this.#buffer.byteLength - this.#start < count) {
        const grown = new Uint8Array(Math.max(this.#buffer.byteLength, count + (1 << 16)));
        grown.set(this.#buffer.subarray(this.#start, this.#end));
        this.#end -= this.#start;
        this.#start = 0;
        this.#buffer = grown;
      } else if (this.#buffer.byteLength - this.#end < 1 << 16 && this.#start > 0) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      const read = await this.conn.read(this.#buffer.subarray(this.#end));
      if (read === null) return false;
      this.#end += read;
    }
    return true;
  }

  async bytes(count: number): Promise<Uint8Array | undefined> {
    if (!await this.#fill(count)) return undefined;
    const view = this.#buffer.subarray(this.#start, this.#start + count);
    this.#start += count;
    return view;
  }

  /** The next frame's 9-byte header, checked against the largest frame this side accepts. */
  async header(): Promise<Omit<Frame, "payload"> & { length: number } | undefined> {
    const head = await this.bytes(9);
    if (head === undefined) return undefined;
    const length = (head[0] << 16) | (head[1] << 8) | head[2];
    const type = head[3];
    const flags = head[4];
    const stream = ((head[5] & 0x7f) << 24 | head[6] << 16 | head[7] << 8 | head[8]) >>> 0;
    if (length > MAX_RECEIVE_FRAME) throw new ProtocolError(`a ${length}-byte frame`);
    return { type, flags, stream, length };
  }

  /**
   * The next `count` bytes as views of what has arrived, in order, without waiting for all
   * of them: DATA payloads are handed on as they come, never gathered or moved first.
   */
  async *pieces(count: number): AsyncGenerator<Uint8Array> {
    while (count > 0) {
      if (this.#start === this.#end) {
        this.#start = this.#end = 0;
        const read = await this.conn.read(this.#buffer);
        if (read === null) throw new ProtocolError("the connection ended inside a frame");
        this.#end = read;
      }
      const take = Math.min(count, this.#end - this.#start);
      const piece = this.#buffer.subarray(this.#start, this.#start + take);
      this.#start += take;
      count -= take;
      yield piece;
    }
  }
}

function frameHeader(
  target: Uint8Array,
  at: number,
  length: number,
  type: number,
  flags: number,
  stream: number,
) {
  target[at] = length >>> 16;
  target[at + 1] = (length >>> 8) & 0xff;
  target[at + 2] = length & 0xff;
  target[at + 3] = type;
  target[at + 4] = flags;
  new DataView(target.buffer, target.byteOffset + at + 5, 4).setUint32(0, stream & 0x7fffffff);
}

function frame(type: number, flags: number, stream: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + payload.byteLength);
  frameHeader(out, 0, payload.byteLength, type, flags, stream);
  out.set(payload, 9);
  return out;
}

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

/** The largest header block (HEADERS and its CONTINUATIONs) this side accepts. */
const MAX_HEADER_BLOCK = 64 << 10;
/** HPACK's dynamic table size (SETTINGS_HEADER_TABLE_SIZE, left at its default). */
const HEADER_TABLE_SIZE = 4096;
/** Entries of HPACK's static table (RFC 7541, appendix A). */
const STATIC_ENTRIES = 61;

/**
 * Checks an HPACK header block's structure (RFC 7541 section 6): every integer fits in
 * four continuation bytes, every string lies inside the block, every index names an entry
 * of the static or dynamic table, and table size updates stay within this side's setting.
 * Returns what is wrong, or undefined.
 */
export function checkHeaderBlock(block: Uint8Array, dynamicEntries: number): string | undefined {
  let at = 0;
  const integer = (prefixBits: number): number | undefined => {
    const mask = (1 << prefixBits) - 1;
    let value = block[at++] & mask;
    if (value < mask) return value;
    for (let shift = 0; shift <= 21; shift += 7) {
      if (at >= block.byteLength) return undefined;
      const byte = block[at++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    return undefined;
  };
  const string = (): boolean => {
    if (at >= block.byteLength) return false;
    const length = integer(7);
    if (length === undefined || at + length > block.byteLength) return false;
    at += length;
    return true;
  };
  let entries = dynamicEntries;
  while (at < block.byteLength) {
    const first = block[at];
    if (first & 0x80) {
      const index = integer(7);
      if (index === undefined || index < 1 || index > STATIC_ENTRIES + entries) {
        return `index ${index} names no table entry`;
      }
    } else if ((first & 0xe0) === 0x20) {
      const size = integer(5);
      if (size === undefined || size > HEADER_TABLE_SIZE) return `table size ${size}`;
    } else {
      const incremental = (first & 0x40) !== 0;
      const index = integer(incremental ? 6 : 4);
      if (index === undefined || index > STATIC_ENTRIES + entries) {
        return `name index ${index} names no table entry`;
      }
      if (index === 0 && !string()) return "a name runs past the block";
      if (!string()) return "a value runs past the block";
      if (incremental) entries++;
    }
  }
  return undefined;
}

/** Strips padding and priority fields from a HEADERS payload. */
function unpad(frame: Frame): Uint8Array {
  let payload = frame.payload;
  if (frame.flags & PADDED) {
    if (payload.byteLength < 1) throw new ProtocolError("padding without a length");
    const padding = payload[0];
    if (padding >= payload.byteLength) throw new ProtocolError("padding longer than the frame");
    payload = payload.subarray(1, payload.byteLength - padding);
  }
  if (frame.type === HEADERS && frame.flags & PRIORITY_FLAG) {
    if (payload.byteLength < 5) throw new ProtocolError("a priority field past the frame");
    payload = payload.subarray(5);
  }
  return payload;
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Percent-encodes grpc-message as the gRPC HTTP/2 protocol requires. */
function encodeMessage(message: string): string {
  return Array.from(
    new TextEncoder().encode(message),
    (byte) =>
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`,
  ).join("");
}

export function decodeMessage(message: string): string {
  try {
    return decodeURIComponent(message);
  } catch {
    return message;
  }
}

interface StreamState {
  id: number;
  /** Bytes this side may still send on the stream. */
  sendWindow: number;
  headerBlock: Uint8Array[];
  headers?: Map<string, string>;
  body: Uint8Array[];
  bodyLength: number;
  /** Bytes received on the stream and not yet credited back. */
  unacked: number;
  closedByPeer: boolean;
  reset: boolean;
  headersSent: boolean;
  finished: boolean;
  /** A stream this side dropped: frames for it are read and discarded. */
  ignored?: boolean;
  /** Client role: the response's parts as they arrive. */
  onHeaders?: (headers: Map<string, string>, endStream: boolean) => void;
  onData?: (payload: Uint8Array, endStream: boolean) => void;
  onReset?: (code: number) => void;
}

/** One HTTP/2 connection, in either role; gRPC semantics live in the callers. */
class Connection {
  readonly reader: FrameReader;
  #hpack = new HPACK();
  #streams = new Map<number, StreamState>();
  #sendWindow = 65_535;
  #peerInitialWindow = 65_535;
  #peerMaxFrame = 16_384;
  #writes: Promise<void> = Promise.resolve();
  #windowWaiters: (() => void)[] = [];
  #continuing: StreamState | undefined;
  #closed = false;
  #nextStream = 1;
  #highestPeerStream = 0;
  /** Bytes received on the connection and not yet credited back. */
  #unacked = 0;
  onStream?: (stream: StreamState) => void;
  onClose?: () => void;

  constructor(readonly conn: Socket, readonly role: "server" | "client") {
    this.reader = new FrameReader(conn);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Writes bytes in order; a failed write closes the connection. */
  write(bytes: Uint8Array): Promise<void> {
    const next = this.#writes.then(async () => {
      if (this.#closed) throw new Error("the connection is closed");
      let at = 0;
      while (at < bytes.byteLength) at += await this.conn.write(bytes.subarray(at));
    });
    this.#writes = next.catch(() => this.close());
    return next;
  }

  async start(): Promise<void> {
    if (this.role === "server") {
      const preface = await this.reader.bytes(PREFACE.byteLength);
      if (preface === undefined || preface.some((byte, i) => byte !== PREFACE[i])) {
        throw new ProtocolError("the client preface is missing");
      }
    }
    const settings = new Uint8Array(12);
    const view = new DataView(settings.buffer);
    view.setUint16(0, SETTINGS_INITIAL_WINDOW_SIZE);
    view.setUint32(2, RECEIVE_WINDOW);
    view.setUint16(6, SETTINGS_MAX_FRAME_SIZE);
    view.setUint32(8, MAX_RECEIVE_FRAME);
    const opening = [
      ...(this.role === "client" ? [PREFACE] : []),
      frame(SETTINGS, 0, 0, settings),
      frame(WINDOW_UPDATE, 0, 0, u32(RECEIVE_WINDOW - 65_535)),
    ];
    await this.write(concat(opening));
  }

  /** Reads frames until the peer goes away; never throws. */
  async run(): Promise<void> {
    try {
      await this.start();
      while (!this.#closed) {
        const next = await this.reader.header();
        if (next === undefined) break;
        if (next.type === DATA) {
          await this.#data(next);
          continue;
        }
        const payload = await this.reader.bytes(next.length);
        if (payload === undefined) break;
        this.#handle({ ...next, payload });
      }
    } catch (error) {
      if (error instanceof ProtocolError && !this.#closed) {
        // Tell the peer why, best effort, then drop the connection.
        const payload = concat([u32(0), u32(1), new TextEncoder().encode(error.message)]);
        await this.write(frame(GOAWAY, 0, 0, payload)).catch(() => {});
      }
    } finally {
      this.close();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // Closed by the peer already.
    }
    for (const stream of this.#streams.values()) {
      stream.reset = true;
      stream.onReset?.(GrpcStatus.UNAVAILABLE);
    }
    this.#wakeWriters();
    this.onClose?.();
  }

  #handle(f: Frame): void {
    if (this.#continuing !== undefined && f.type !== CONTINUATION) {
      throw new ProtocolError("a header block was interrupted");
    }
    switch (f.type) {
      case SETTINGS:
        return this.#settings(f);
      case PING:
        if (!(f.flags & ACK)) this.write(frame(PING, ACK, 0, f.payload.slice())).catch(() => {});
        return;
      case WINDOW_UPDATE: {
        if (f.payload.byteLength !== 4) throw new ProtocolError("a malformed WINDOW_UPDATE");
        const increment = new DataView(f.payload.buffer, f.payload.byteOffset, 4).getUint32(0) &
          0x7fffffff;
        if (f.stream === 0) this.#sendWindow += increment;
        else {
          const stream = this.#streams.get(f.stream);
          if (stream) stream.sendWindow += increment;
        }
        this.#wakeWriters();
        return;
      }
      case HEADERS:
        return this.#headers(f);
      case CONTINUATION: {
        const stream = this.#continuing;
        if (stream === undefined || stream.id !== f.stream) {
          throw new ProtocolError("CONTINUATION without HEADERS");
        }
        stream.headerBlock.push(f.payload.slice());
        if (stream.headerBlock.reduce((n, b) => n + b.byteLength, 0) > MAX_HEADER_BLOCK) {
          throw new ProtocolError(`a header block over ${MAX_HEADER_BLOCK} bytes`);
        }
        if (f.flags & END_HEADERS) this.#endHeaders(stream, false);
        return;
      }
      case RST_STREAM: {
        const stream = this.#streams.get(f.stream);
        if (stream) {
          stream.reset = true;
          this.#streams.delete(f.stream);
          stream.onReset?.(GrpcStatus.CANCELLED);
          this.#wakeWriters();
        }
        return;
      }
      case GOAWAY:
        // No new streams from us; those under way finish, then the peer closes.
        return;
      case PUSH_PROMISE:
        throw new ProtocolError("server push is not enabled");
      default:
        return; // PRIORITY and unknown frame types are ignored, as the protocol requires.
    }
  }

  #settings(f: Frame): void {
    if (f.flags & ACK) return;
    if (f.payload.byteLength % 6 !== 0) throw new ProtocolError("a malformed SETTINGS frame");
    const view = new DataView(f.payload.buffer, f.payload.byteOffset, f.payload.byteLength);
    for (let at = 0; at < f.payload.byteLength; at += 6) {
      const id = view.getUint16(at);
      const value = view.getUint32(at + 2);
      if (id === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > 0x7fffffff) throw new ProtocolError("an initial window beyond 2^31-1");
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const stream of this.#streams.values()) stream.sendWindow += delta;
      } else if (id === SETTINGS_MAX_FRAME_SIZE) {
        if (value < 16_384 || value > 16_777_215) throw new ProtocolError("a bad max frame size");
        this.#peerMaxFrame = value;
      }
    }
    this.write(frame(SETTINGS, ACK, 0, new Uint8Array(0))).catch(() => {});
    this.#wakeWriters();
  }

  #headers(f: Frame): void {
    let stream = this.#streams.get(f.stream);
    if (stream === undefined) {
      const peerOpens = this.role === "server" && f.stream % 2 === 1;
      if (peerOpens && f.stream > this.#highestPeerStream) {
        this.#highestPeerStream = f.stream;
        stream = this.#newStream(f.stream);
      } else if (f.stream < (peerOpens ? this.#highestPeerStream + 1 : this.#nextStream)) {
        // A stream this side already dropped (reset, or failed): its header block must
        // still be decoded to keep HPACK's table in step, then it is ignored.
        stream = { ...this.#newStream(f.stream), ignored: true };
        this.#streams.delete(f.stream);
      } else {
        throw new ProtocolError(`HEADERS on unknown stream ${f.stream}`);
      }
    }
    stream.headerBlock = [unpad(f).slice()];
    if (f.flags & END_HEADERS) this.#endHeaders(stream, (f.flags & END_STREAM) !== 0);
    else {
      this.#continuing = stream;
      if (f.flags & END_STREAM) stream.closedByPeer = true;
    }
  }

  #endHeaders(stream: StreamState, endStream: boolean): void {
    this.#continuing = undefined;
    let fields: [string, string][];
    const block = concat(stream.headerBlock);
    // The hpack package trusts every length and index it reads (a 2^28-byte Huffman string
    // would keep it busy for minutes), so the block's structure is checked here first.
    const problem = checkHeaderBlock(block, this.#hpack.lDynamicTable.length);
    if (problem !== undefined) throw new ProtocolError(`a malformed header block: ${problem}`);
    try {
      // The hpack package works on Buffers (it calls toString on slices).
      fields = this.#hpack.decode(Buffer.from(block.buffer, block.byteOffset, block.byteLength));
    } catch (error) {
      throw new ProtocolError(`a header block HPACK cannot decode (${error})`);
    }
    stream.headerBlock = [];
    if (stream.ignored) return;
    const headers = new Map(fields.map(([name, value]) => [String(name), String(value)]));
    const ended = endStream || stream.closedByPeer;
    stream.closedByPeer = ended;
    if (this.role === "server" && stream.headers === undefined) {
      stream.headers = headers;
      if (ended) this.onStream?.(stream);
    } else {
      stream.onHeaders?.(headers, ended);
      if (ended) this.#streams.delete(stream.id);
    }
  }

  /** A DATA frame, its payload handed on piece by piece as it arrives. */
  async #data(f: Omit<Frame, "payload"> & { length: number }): Promise<void> {
    if (this.#continuing !== undefined) throw new ProtocolError("DATA inside a header block");
    let stream = this.#streams.get(f.stream);
    // Flow control counts the whole frame, padding included. This side reads everything as
    // it arrives, so it gives the credit back, in batches: a window update per frame cost
    // a socket write per frame for nothing (the windows are far larger than a batch).
    this.#unacked += f.length;
    if (stream) stream.unacked += f.length;
    const credits: Uint8Array[] = [];
    if (this.#unacked >= CREDIT_BATCH) {
      credits.push(frame(WINDOW_UPDATE, 0, 0, u32(this.#unacked)));
      this.#unacked = 0;
    }
    if (stream && stream.unacked >= CREDIT_BATCH && !(f.flags & END_STREAM)) {
      credits.push(frame(WINDOW_UPDATE, 0, f.stream, u32(stream.unacked)));
      stream.unacked = 0;
    }
    if (credits.length > 0) this.write(concat(credits)).catch(() => {});
    let padding = 0;
    if (f.flags & PADDED) {
      const pad = await this.reader.bytes(1);
      if (pad === undefined) throw new ProtocolError("the connection ended inside a frame");
      padding = pad[0];
      if (padding >= f.length) throw new ProtocolError("padding longer than the frame");
    }
    const ended = (f.flags & END_STREAM) !== 0;
    for await (const piece of this.reader.pieces(f.length - (padding > 0 ? 1 : 0) - padding)) {
      stream = this.#streams.get(f.stream); // a handler may have reset it meanwhile
      if (stream === undefined) continue;
      if (this.role === "server") {
        stream.bodyLength += piece.byteLength;
        if (stream.bodyLength > MAX_REQUEST_BODY) this.reset(stream, GrpcStatus.RESOURCE_EXHAUSTED);
        else stream.body.push(piece.slice());
      } else stream.onData?.(piece, false);
    }
    for await (const _ of this.reader.pieces(padding)) {
      // Padding is read and dropped.
    }
    stream = this.#streams.get(f.stream);
    if (stream === undefined || !ended) return;
    if (this.role === "server") {
      stream.closedByPeer = true;
      this.onStream?.(stream);
    } else stream.onData?.(new Uint8Array(0), true);
  }

  #newStream(id: number): StreamState {
    const stream: StreamState = {
      id,
      sendWindow: this.#peerInitialWindow,
      headerBlock: [],
      body: [],
      bodyLength: 0,
      unacked: 0,
      closedByPeer: false,
      reset: false,
      headersSent: false,
      finished: false,
    };
    this.#streams.set(id, stream);
    return stream;
  }

  /** Client role: opens a stream. */
  openStream(): StreamState {
    const id = this.#nextStream;
    this.#nextStream += 2;
    return this.#newStream(id);
  }

  forget(stream: StreamState): void {
    this.#streams.delete(stream.id);
  }

  reset(stream: StreamState, code: number): void {
    stream.reset = true;
    this.#streams.delete(stream.id);
    this.write(frame(RST_STREAM, 0, stream.id, u32(code === GrpcStatus.CANCELLED ? 8 : 2)))
      .catch(() => {});
    this.#wakeWriters();
  }

  /** Sends a header block (small: one HEADERS frame). */
  sendHeaders(stream: StreamState, fields: [string, string][], endStream: boolean): Promise<void> {
    const block = new Uint8Array(this.#hpack.encode(fields));
    if (block.byteLength > this.#peerMaxFrame) {
      return Promise.reject(new Error("a header block larger than one frame"));
    }
    return this.write(frame(HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), stream.id, block));
  }

  /**
   * Sends `parts` as DATA frames within both flow-control windows, gathering up to
   * WRITE_CHUNK bytes of frames per socket write: the one copy of a body on send.
   */
  async sendData(stream: StreamState, parts: Uint8Array[], endStream: boolean): Promise<void> {
    let remaining = parts.reduce((n, p) => n + p.byteLength, 0);
    let part = 0;
    let offset = 0;
    if (remaining === 0 && endStream) {
      await this.write(frame(DATA, END_STREAM, stream.id, new Uint8Array(0)));
      return;
    }
    while (remaining > 0) {
      let allowed = Math.min(this.#sendWindow, stream.sendWindow, remaining, WRITE_CHUNK);
      while (allowed <= 0) {
        if (this.#closed || stream.reset) throw new Error("the stream was closed by the peer");
        await new Promise<void>((resolve) => this.#windowWaiters.push(resolve));
        allowed = Math.min(this.#sendWindow, stream.sendWindow, remaining, WRITE_CHUNK);
      }
      if (this.#closed || stream.reset) throw new Error("the stream was closed by the peer");
      // Pieces of a frame's payload: small ones are gathered with the frame headers into
      // one buffer; large ones (a peer that takes big frames) go to the socket as views of
      // their source, so a body is not copied in user space at all.
      const pieces: Uint8Array[] = [];
      let left = allowed;
      while (left > 0) {
        const size = Math.min(left, this.#peerMaxFrame);
        const last = left === size && remaining === allowed && endStream;
        const header = new Uint8Array(9);
        frameHeader(header, 0, size, DATA, last ? END_STREAM : 0, stream.id);
        pieces.push(header);
        let need = size;
        while (need > 0) {
          const source = parts[part];
          const take = Math.min(need, source.byteLength - offset);
          pieces.push(source.subarray(offset, offset + take));
          need -= take;
          offset += take;
          if (offset === source.byteLength) {
            part++;
            offset = 0;
          }
        }
        left -= size;
      }
      this.#sendWindow -= allowed;
      stream.sendWindow -= allowed;
      remaining -= allowed;
      await this.#writePieces(pieces);
    }
  }

  /** Writes pieces in order: runs of small ones as one gathered buffer, large ones as is. */
  async #writePieces(pieces: Uint8Array[]): Promise<void> {
    // Every write's promise is awaited (Promise.all), so a failed one is never unhandled.
    const writes: Promise<void>[] = [];
    let run: Uint8Array[] = [];
    const flush = () => {
      if (run.length > 0) writes.push(this.write(concat(run)));
      run = [];
    };
    for (const piece of pieces) {
      if (piece.byteLength >= DIRECT_WRITE) {
        flush();
        writes.push(this.write(piece));
      } else run.push(piece);
    }
    flush();
    await Promise.all(writes);
  }

  #wakeWriters(): void {
    for (const wake of this.#windowWaiters.splice(0)) wake();
  }
}

/** A gRPC message: the 5-byte prefix (uncompressed) and the message's parts. */
function grpcFrame(parts: Uint8Array[]): Uint8Array[] {
  const length = parts.reduce((n, p) => n + p.byteLength, 0);
  const prefix = new Uint8Array(5);
  new DataView(prefix.buffer).setUint32(1, length);
  return [prefix, ...parts];
}

/** The single gRPC message of a request body. */
function requestMessage(body: Uint8Array): Uint8Array {
  if (body.byteLength < 5) throw new Error("the request has no gRPC message");
  if (body[0] !== 0) throw new Error("compressed requests are not supported");
  const length = new DataView(body.buffer, body.byteOffset, 5).getUint32(1);
  if (5 + length > body.byteLength) throw new Error("the request message is truncated");
  return body.subarray(5, 5 + length);
}

/** A listening gRPC-over-HTTP/2 server. */
export interface H2Server {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves gRPC calls on `hostname:port` (0 picks a port); `handle` must answer every call
 * with `finish`. Every call must carry the credentials' token (runtime/protocol's check):
 * one without it ends with UNAUTHENTICATED before `handle` sees it; with TLS, peers need a
 * certificate of the CA.
 */
export async function serveH2(
  hostname: string,
  port: number,
  security: Credentials,
  handle: (call: ServerCall) => void,
): Promise<H2Server> {
  const connections = new Set<Connection>();
  const token = requireToken(security);
  const admit = (socket: Socket) => {
    const connection = new Connection(socket, "server");
    connections.add(connection);
    connection.onClose = () => connections.delete(connection);
    connection.onStream = (stream) => dispatch(connection, stream, token, handle);
    connection.run();
  };
  let stop: () => void;
  let bound: number;
  let accepting: Promise<void> = Promise.resolve();
  if (security.tls) {
    const listener = await listenTls(hostname, port, security.tls, admit);
    bound = listener.port;
    stop = () => listener.close();
  } else {
    const listener = Deno.listen({ hostname, port });
    bound = (listener.addr as Deno.NetAddr).port;
    stop = () => listener.close();
    accepting = (async () => {
      for await (const conn of listener) {
        conn.setNoDelay(true);
        admit(conn);
      }
    })().catch(() => {});
  }
  return {
    port: bound,
    async close() {
      try {
        stop();
      } catch {
        // Closed already.
      }
      for (const connection of connections) connection.close();
      await accepting;
    },
  };
}

function dispatch(
  connection: Connection,
  stream: StreamState,
  token: string,
  handle: (call: ServerCall) => void,
) {
  const headers = stream.headers ?? new Map();
  const start = async () => {
    if (stream.headersSent) return;
    stream.headersSent = true;
    await connection.sendHeaders(stream, [
      [":status", "200"],
      ["content-type", "application/grpc"],
    ], false);
  };
  let request: Uint8Array = new Uint8Array(0);
  let problem: string | undefined;
  try {
    request = requestMessage(concat(stream.body));
  } catch (error) {
    problem = error instanceof Error ? error.message : String(error);
  }
  stream.body = [];
  const call: ServerCall = {
    path: headers.get(":path") ?? "",
    headers,
    request,
    get cancelled() {
      return stream.reset || connection.closed;
    },
    async send(parts) {
      await start();
      await connection.sendData(stream, grpcFrame(parts), false);
    },
    async finish(code, message = "") {
      if (stream.finished || stream.reset || connection.closed) return;
      stream.finished = true;
      const trailers: [string, string][] = [["grpc-status", String(code)]];
      if (message) trailers.push(["grpc-message", encodeMessage(message)]);
      if (!stream.headersSent) {
        // Trailers-Only: one HEADERS frame carries status and trailers.
        stream.headersSent = true;
        trailers.unshift([":status", "200"], ["content-type", "application/grpc"]);
      }
      await connection.sendHeaders(stream, trailers, true).catch(() => {});
      connection.forget(stream);
    },
  };
  if (headers.get("content-type")?.startsWith("application/grpc") !== true) {
    call.finish(GrpcStatus.INTERNAL, "not a gRPC request");
    return;
  }
  if (!tokenMatches(headers.get(TOKEN_HEADER), token)) {
    call.finish(GrpcStatus.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE);
    return;
  }
  if (problem !== undefined) {
    call.finish(GrpcStatus.INTERNAL, problem);
    return;
  }
  handle(call);
}

/** A call that ended with a non-OK gRPC status (or a transport failure, as UNAVAILABLE). */
export class GrpcError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "GrpcError";
  }
}

/**
 * Receives a response's gRPC messages as they stream in: `start` with the message's length,
 * `bytes` with its pieces in order (views valid only during the call), `end` when complete.
 * A sink that streams can put bytes where they belong without buffering whole messages.
 */
export interface MessageSink {
  start(length: number): void;
  bytes(piece: Uint8Array): void;
  end(): void;
}

/** Messages up to this size get their buffer at once; larger ones grow as bytes arrive. */
const PREALLOCATE = 64 << 20;

/** A sink that hands over each whole message, copied once out of the socket buffer. */
export function wholeMessages(deliver: (message: Uint8Array) => void): MessageSink {
  let message: Uint8Array | undefined;
  let chunks: Uint8Array[] = [];
  let have = 0;
  return {
    start(length) {
      message = length <= PREALLOCATE ? new Uint8Array(length) : undefined;
      chunks = [];
      have = 0;
    },
    bytes(piece) {
      if (message) message.set(piece, have);
      else chunks.push(piece.slice());
      have += piece.byteLength;
    },
    end() {
      deliver(message ?? concat(chunks));
      message = undefined;
      chunks = [];
    },
  };
}

/** Cuts a response's DATA payloads at gRPC message boundaries for a sink. */
class MessageCutter {
  #prefix = new Uint8Array(5);
  #prefixHave = 0;
  #need = 0;
  #have = 0;

  constructor(readonly sink: MessageSink) {}

  get idle(): boolean {
    return this.#prefixHave === 0 && this.#need === 0;
  }

  push(payload: Uint8Array): void {
    let at = 0;
    while (at < payload.byteLength) {
      if (this.#need === 0) {
        const take = Math.min(5 - this.#prefixHave, payload.byteLength - at);
        this.#prefix.set(payload.subarray(at, at + take), this.#prefixHave);
        this.#prefixHave += take;
        at += take;
        if (this.#prefixHave < 5) return;
        this.#prefixHave = 0;
        if (this.#prefix[0] !== 0) throw new GrpcError(GrpcStatus.INTERNAL, "a compressed message");
        this.#need = new DataView(this.#prefix.buffer).getUint32(1);
        this.#have = 0;
        this.sink.start(this.#need);
        if (this.#need === 0) this.sink.end();
        continue;
      }
      const take = Math.min(this.#need - this.#have, payload.byteLength - at);
      this.sink.bytes(payload.subarray(at, at + take));
      this.#have += take;
      at += take;
      if (this.#have === this.#need) {
        this.#need = 0;
        this.sink.end();
      }
    }
  }
}

/** A gRPC client over one HTTP/2 connection to `hostname:port`, reconnecting when it drops. */
export class H2Client {
  #connection: Promise<Connection> | undefined;

  constructor(
    readonly hostname: string,
    readonly port: number,
    readonly security: Credentials = { token: null, tls: null },
  ) {}

  #connect(): Promise<Connection> {
    const current = this.#connection;
    if (current !== undefined) {
      return current.then((c) => c.closed ? this.#reconnect() : c, () => this.#reconnect());
    }
    return this.#reconnect();
  }

  #reconnect(): Promise<Connection> {
    this.#connection = (async () => {
      let socket: Socket;
      if (this.security.tls) socket = await connectTls(this.hostname, this.port, this.security.tls);
      else {
        const conn = await Deno.connect({ hostname: this.hostname, port: this.port });
        conn.setNoDelay(true);
        socket = conn;
      }
      const connection = new Connection(socket, "client");
      connection.run();
      return connection;
    })();
    return this.#connection;
  }

  /**
   * A unary or server-streaming call: sends `request`, streams each response message into
   * `sink`, resolves at an OK status, rejects with a GrpcError (or what the sink threw).
   */
  async call(
    path: string,
    request: Uint8Array,
    sink: MessageSink,
    metadata: [string, string][] = [],
  ): Promise<void> {
    let connection: Connection;
    try {
      connection = await this.#connect();
    } catch (error) {
      throw new GrpcError(GrpcStatus.UNAVAILABLE, `cannot connect: ${(error as Error).message}`);
    }
    const stream = connection.openStream();
    return await new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (error: unknown) => {
        if (failed) return;
        failed = true;
        connection.forget(stream);
        reject(error);
      };
      const cutter = new MessageCutter(sink);
      let started = false;
      stream.onHeaders = (headers, endStream) => {
        if (failed) return;
        if (!started) {
          started = true;
          const status = headers.get(":status");
          if (status !== "200") {
            fail(new GrpcError(GrpcStatus.UNAVAILABLE, `the peer answered HTTP ${status}`));
            return;
          }
        }
        if (!endStream) return;
        const code = Number(headers.get("grpc-status") ?? GrpcStatus.UNKNOWN);
        if (code !== GrpcStatus.OK) {
          fail(new GrpcError(code, decodeMessage(headers.get("grpc-message") ?? "")));
        } else if (!cutter.idle) {
          fail(new GrpcError(GrpcStatus.INTERNAL, "the stream ended inside a message"));
        } else {
          failed = true;
          resolve();
        }
      };
      stream.onData = (payload, endStream) => {
        if (failed) return;
        try {
          cutter.push(payload);
        } catch (error) {
          connection.reset(stream, GrpcStatus.CANCELLED);
          fail(error);
          return;
        }
        if (endStream) {
          fail(new GrpcError(GrpcStatus.INTERNAL, "the stream ended without a gRPC status"));
        }
      };
      stream.onReset = () =>
        fail(new GrpcError(GrpcStatus.UNAVAILABLE, "the peer reset the stream"));
      const headers: [string, string][] = [
        [":method", "POST"],
        [":scheme", "http"],
        [":path", path],
        [":authority", `${this.hostname}:${this.port}`],
        ["content-type", "application/grpc"],
        ["te", "trailers"],
        ...(this.security.token
          ? [[TOKEN_HEADER, bearer(this.security.token)] as [string, string]]
          : []),
        ...metadata,
      ];
      connection.sendHeaders(stream, headers, false)
        .then(() => connection.sendData(stream, grpcFrame([request]), true))
        .catch((error) => fail(new GrpcError(GrpcStatus.UNAVAILABLE, String(error))));
    });
  }

  close(): void {
    this.#connection?.then((c) => c.close(), () => {});
    this.#connection = undefined;
  }
}
