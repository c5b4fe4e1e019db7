/**
 * `Content-Length` framing, the envelope both the Debug Adapter Protocol and the Language
 * Server Protocol put around each JSON message on a byte stream. The debug adapter reads
 * and writes with it, and so do the tests and benchmarks that play the editor. It knows
 * nothing of what the messages mean, and must never lose a message split across chunks.
 */

/** One message framed: the header, a blank line, then the UTF-8 JSON body. */
export function frame(message: unknown): Uint8Array {
  const body = new TextEncoder().encode(JSON.stringify(message));
  const head = new TextEncoder().encode(`Content-Length: ${body.length}\r\n\r\n`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** The messages on a stream, in order, until it ends. A malformed header ends it. */
export async function* framedMessages(
  stream: AsyncIterable<Uint8Array>,
): AsyncGenerator<unknown> {
  let buffer = new Uint8Array(0);
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    const joined = new Uint8Array(buffer.length + chunk.length);
    joined.set(buffer);
    joined.set(chunk, buffer.length);
    buffer = joined;
    while (true) {
      const end = headerEnd(buffer);
      if (end < 0) break;
      const header = decoder.decode(buffer.subarray(0, end));
      const length = /Content-Length:\s*(\d+)/i.exec(header);
      if (!length) return;
      const start = end + 4;
      const size = Number(length[1]);
      if (buffer.length < start + size) break;
      yield JSON.parse(decoder.decode(buffer.subarray(start, start + size)));
      buffer = buffer.slice(start + size);
    }
  }
}

/** The offset of the `\r\n\r\n` that ends a header, or -1. */
function headerEnd(buffer: Uint8Array): number {
  for (let i = 0; i + 3 < buffer.length; i++) {
    if (buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}
