/**
 * TLS for the data plane's HTTP/2, with the same material and checks as the control
 * channel's transport (runtime/protocol `TlsMaterial` and `peerName`): the node's
 * certificate and key, and a CA that peers must be signed by, on both sides (mutual TLS).
 * `node:tls` rather than Deno's own TLS because Deno's listener cannot ask for and verify
 * client certificates. Sockets are adapted to the small `Socket` interface `_h2.ts` reads from.
 */
import { Buffer } from "node:buffer";
import * as tls from "node:tls";
import { peerName, type TlsMaterial } from "../protocol/mod.ts";

/** What `_h2.ts` needs of a connection (Deno.Conn has it too). */
export interface Socket {
  read(target: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

/** Adapts a node socket (events) to `Socket` (pull reads, awaited writes). */
export function adapt(socket: tls.TLSSocket): Socket {
  const chunks: Uint8Array[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    // Reads drain the queue; while they lag, stop the socket so memory stays bounded.
    if (chunks.length > 64) socket.pause();
    notify();
  });
  socket.on("end", () => {
    ended = true;
    notify();
  });
  socket.on("close", () => {
    ended = true;
    notify();
  });
  socket.on("error", (error) => {
    failure = error;
    notify();
  });
  return {
    async read(target) {
      while (chunks.length === 0) {
        if (failure) throw failure;
        if (ended) return null;
        await new Promise<void>((resolve) => wake = resolve);
      }
      const chunk = chunks[0];
      const count = Math.min(chunk.byteLength, target.byteLength);
      target.set(chunk.subarray(0, count));
      if (count === chunk.byteLength) chunks.shift();
      else chunks[0] = chunk.subarray(count);
      if (chunks.length <= 16 && socket.isPaused()) socket.resume();
      return count;
    },
    write(bytes) {
      return new Promise((resolve, reject) =>
        socket.write(bytes, (error) => error ? reject(error) : resolve(bytes.byteLength))
      );
    },
    close() {
      socket.destroy();
    },
  };
}

/** A TLS listener that requires client certificates signed by `files.ca`. */
export function listenTls(
  hostname: string,
  port: number,
  files: TlsMaterial,
  onSocket: (socket: Socket) => void,
): Promise<{ port: number; close(): void }> {
  const server = tls.createServer({
    cert: Buffer.from(files.cert),
    key: Buffer.from(files.key),
    ca: Buffer.from(files.ca),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ["h2"],
  }, (socket) => {
    socket.setNoDelay(true);
    onSocket(adapt(socket));
  });
  // A handshake that fails (no certificate, wrong CA) only ends that connection.
  server.on("tlsClientError", () => {});
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      // Later errors (a failed accept) must not become an uncaught 'error' event.
      server.on("error", () => {});
      const address = server.address() as { port: number };
      resolve({ port: address.port, close: () => server.close() });
    });
  });
}

/** Connects with this node's certificate and checks the peer's against `files.ca`. */
export function connectTls(hostname: string, port: number, files: TlsMaterial): Promise<Socket> {
  const peer = peerName(hostname);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: hostname,
      port,
      cert: Buffer.from(files.cert),
      key: Buffer.from(files.key),
      ca: Buffer.from(files.ca),
      ALPNProtocols: ["h2"],
      servername: peer.servername,
      checkServerIdentity: (_name, cert) => peer.check(cert),
    }, () => {
      socket.setNoDelay(true);
      resolve(adapt(socket));
    });
    socket.once("error", reject);
  });
}
