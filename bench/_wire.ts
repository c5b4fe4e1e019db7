/**
 * The framing between the handoff benchmark's producer and its consumer processes over a
 * Unix socket: one kind byte, a 64-bit little-endian payload length, the payload; replies
 * are one JSON line. bench/_handoff_consumer.py speaks the same framing. It must never
 * buffer a payload twice: the reader fills one exactly sized array.
 */

/**
 * `M`: a handle, map only; `R`: a handle, map and read every value; `B`: Arrow IPC bytes,
 * decode only; `A`: Arrow IPC bytes, decode and read every value.
 */
export type FrameKind = "M" | "R" | "B" | "A";

export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

export async function readFull(conn: Deno.Conn, target: Uint8Array): Promise<boolean> {
  for (let off = 0; off < target.length;) {
    const n = await conn.read(target.subarray(off));
    if (n === null) return false;
    off += n;
  }
  return true;
}

export async function sendFrame(conn: Deno.Conn, kind: FrameKind, payload: Uint8Array) {
  const header = new Uint8Array(9);
  header[0] = kind.charCodeAt(0);
  new DataView(header.buffer).setBigUint64(1, BigInt(payload.length), true);
  await writeAll(conn, header);
  await writeAll(conn, payload);
}

/** The next frame, or null at end of stream. */
export async function readFrame(
  conn: Deno.Conn,
): Promise<{ kind: FrameKind; payload: Uint8Array } | null> {
  const header = new Uint8Array(9);
  if (!await readFull(conn, header)) return null;
  const length = Number(new DataView(header.buffer).getBigUint64(1, true));
  const payload = new Uint8Array(length);
  if (!await readFull(conn, payload)) return null;
  return { kind: String.fromCharCode(header[0]) as FrameKind, payload };
}

/** Reads one reply line (replies are small JSON objects ending in a newline). */
export async function readLine(conn: Deno.Conn): Promise<string> {
  const chunks: number[] = [];
  const one = new Uint8Array(4096);
  while (true) {
    const n = await conn.read(one);
    if (n === null) throw new Error("the consumer closed the socket before replying");
    for (let i = 0; i < n; i++) {
      if (one[i] === 10) return new TextDecoder().decode(new Uint8Array(chunks));
      chunks.push(one[i]);
    }
  }
}
