"""The Python consumer process of the handoff benchmark, twin of _handoff_consumer.ts: it
serves JSON rows over HTTP, Heddle handles over a Unix socket (mapped zero-copy with the
Python SDK's own MappedInput) and Arrow IPC bytes over the same socket, and replies with the
checksum of every value it read (bench/_transactions.ts defines it). It must never reply
with anything it did not compute from the received data. Each frame's buffers are dropped
after its reply is sent, so that freeing them (a 1 GB socket payload takes tens of
milliseconds to return to the OS) is never charged to the next measurement.
"""

import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sdk" / "python"))
from heddle_sdk._shm import MappedInput  # noqa: E402

MASK = 0xFFFFFFFF


def _as(type_: pa.DataType, buf: pa.Buffer, offset: int, length: int) -> pa.Array:
    """A zero-copy view of `length` values of `type_` starting at element `offset` of `buf`."""
    width = type_.bit_width // 8
    return pa.Array.from_buffers(type_, length, [None, buf.slice(offset * width, length * width)])


def _sum(values: pa.Array) -> int:
    total = pc.sum(values).as_py()
    return int(total or 0)


def checksum_table(table: pa.Table) -> dict:
    ints = 0
    amount = 0.0
    text_bytes = 0
    text_sum = 0
    for batch in table.to_batches():
        for name in ("tx_id", "ts"):
            col = batch.column(name)
            # Every 32-bit word of the int64 column, as the TypeScript consumer reads it.
            ints += _sum(_as(pa.uint32(), col.buffers()[1], col.offset * 2, len(col) * 2))
        ints += _sum(batch.column("user_id"))
        amount += float(pc.sum(batch.column("amount")).as_py() or 0.0)
        m = batch.column("merchant")
        _, offsets_buf, data_buf = m.buffers()
        # Vineyard hands strings back as large_string (64-bit offsets).
        width = pa.int64() if pa.types.is_large_string(m.type) else pa.int32()
        offsets = _as(width, offsets_buf, m.offset, len(m) + 1)
        start, end = offsets[0].as_py(), offsets[-1].as_py()
        text_bytes += end - start
        text_sum += _sum(_as(pa.uint8(), data_buf, start, end - start))
    return {
        "rows": table.num_rows,
        "ints": ints & MASK,
        "amount": amount,
        "textBytes": text_bytes,
        "textSum": text_sum & MASK,
    }


def checksum_rows(rows: list) -> dict:
    ints = 0
    amount = 0.0
    text_bytes = 0
    text_sum = 0
    for r in rows:
        ints += r["tx_id"] + (r["tx_id"] >> 32) + r["ts"] + (r["ts"] >> 32) + r["user_id"]
        amount += r["amount"]
        b = r["merchant"].encode()
        text_bytes += len(b)
        text_sum += sum(b)
    # tx_id and ts contribute their low word (value mod 2^32) and their high word.
    return {
        "rows": len(rows),
        "ints": ints & MASK,
        "amount": amount,
        "textBytes": text_bytes,
        "textSum": text_sum & MASK,
    }


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: without this, Nagle plus delayed ACKs add
    # 40 ms to every reply, which would be a flaw of the harness, not of JSON.
    disable_nagle_algorithm = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        rows = json.loads(body)
        read = self.path.endswith("read=1")
        reply = json.dumps(checksum_rows(rows) if read else {"rows": len(rows)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def read_full(conn: socket.socket, n: int):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = conn.recv_into(view[got:])
        if k == 0:
            return None
        got += k
    return buf


def serve_handle(kind: str, payload: bytearray) -> dict:
    """Maps a handle (and with `R` reads every value), timing each part in this process."""
    h = json.loads(payload)
    t0 = time.perf_counter()  # the handle has arrived: the transport's decoding is done
    mapped = MappedInput(h["segment"], h["offset"], h["length"], h.get("segmentId", ""))
    try:
        table = mapped.reader().read_all()
        t1 = time.perf_counter()
        reply = checksum_table(table) if kind == "R" else {"rows": table.num_rows}
        t2 = time.perf_counter()
        del table
    finally:
        mapped.close()
    reply["mapMs"] = (t1 - t0) * 1000
    reply["readMs"] = (t2 - t1) * 1000
    return reply


def serve_socket(conn: socket.socket) -> None:
    while True:
        header = read_full(conn, 9)
        if header is None:
            return
        kind = chr(header[0])
        (length,) = struct.unpack("<Q", bytes(header[1:]))
        payload = read_full(conn, length)
        t0 = time.perf_counter()
        if kind in ("A", "B"):
            table = ipc.open_stream(pa.py_buffer(payload)).read_all()
            reply = checksum_table(table) if kind == "A" else {"rows": table.num_rows}
            del table
        else:
            reply = serve_handle(kind, payload)
        # Everything from the frame's arrival to the reply, unmapping included.
        reply["serveMs"] = (time.perf_counter() - t0) * 1000
        conn.sendall((json.dumps(reply) + "\n").encode())
        del payload


def main() -> None:
    http = ThreadingHTTPServer(("127.0.0.1", 0), JsonHandler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sys.argv[1])
    server.listen()
    print(json.dumps({"http": http.server_address[1]}), flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve_socket, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
