"""The Python consumer process of the handoff benchmark, twin of _handoff_consumer.ts: it
serves JSON rows over HTTP, Heddle handles over a Unix socket (mapped zero-copy with the
Python SDK's own MappedInput) and Arrow IPC bytes over the same socket, and replies with the
checksum of every value it read (bench/_transactions.ts defines it). It must never reply
with anything it did not compute from the received data.
"""

import json
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sdk" / "python"))
from heddle_sdk._shm import MappedInput  # noqa: E402

MASK = 0xFFFFFFFF


def checksum_table(table: pa.Table) -> dict:
    ints = 0
    amount = 0.0
    text_bytes = 0
    text_sum = 0
    for batch in table.to_batches():
        for name in ("tx_id", "ts"):
            words = batch.column(name).to_numpy(zero_copy_only=True).view(np.uint32)
            ints += int(words.sum(dtype=np.uint64))
        ints += int(batch.column("user_id").to_numpy(zero_copy_only=True).sum(dtype=np.uint64))
        amount += float(batch.column("amount").to_numpy(zero_copy_only=True).sum())
        m = batch.column("merchant")
        _, offsets_buf, data_buf = m.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=np.int32)[m.offset : m.offset + len(m) + 1]
        data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
        text_bytes += int(offsets[-1] - offsets[0])
        text_sum += int(data.sum(dtype=np.uint64))
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

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        reply = json.dumps(checksum_rows(json.loads(body))).encode()
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


def serve_socket(conn: socket.socket) -> None:
    while True:
        header = read_full(conn, 9)
        if header is None:
            return
        kind = chr(header[0])
        (length,) = struct.unpack("<Q", bytes(header[1:]))
        payload = read_full(conn, length)
        if kind == "A":
            reply = checksum_table(ipc.open_stream(pa.py_buffer(payload)).read_all())
        else:
            h = json.loads(payload)
            mapped = MappedInput(h["segment"], h["offset"], h["length"])
            table = mapped.reader().read_all()
            reply = checksum_table(table) if kind == "R" else {"rows": table.num_rows}
            del table
            mapped.close()
        conn.sendall((json.dumps(reply) + "\n").encode())


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


main()
