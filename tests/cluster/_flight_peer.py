"""The reference Arrow Flight implementation (pyarrow.flight, Arrow C++) as the other side of
Heddle's data plane in tests and benchmarks. pyarrow decides whether two tables are equal,
so an interop test cannot pass by Heddle agreeing with itself.

    _flight_peer.py get URI TICKET EXPECTED.arrows   do_get, compare with the file, release
    _flight_peer.py serve TABLE.arrows [HOST]         serve the file's table for any ticket on
                                                      HOST (default 127.0.0.1); prints the port,
                                                      runs until stdin closes
    _flight_peer.py compare A.arrows B.arrows         exit 0 when the two tables are equal
    _flight_peer.py write OUT.arrows ROWS             writes the interop table (many types)
    _flight_peer.py bench URI TICKET ROUNDS           do_get ROUNDS times, prints bytes and seconds
    _flight_peer.py refused URI TICKET                exit 0 when do_get is refused as
                                                      unauthenticated

With HEDDLE_TOKEN set, calls carry `authorization: Bearer <token>`; with HEDDLE_TLS_DIR set
(ca.pem, node.pem, node.key), grpc+tls:// URIs use mutual TLS with those files.
"""

import datetime
import json
import os
import sys
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight


def read(path):
    with pa.OSFile(path, "rb") as f:
        return pa.ipc.open_stream(f).read_all()


def interop_table(rows):
    """Every common Arrow type, nulls included, as several record batches."""
    ids = pa.array(range(rows), pa.int64())
    batch = pa.record_batch(
        [
            ids,
            pa.array([i * 0.5 if i % 7 else None for i in range(rows)], pa.float64()),
            pa.array([f"name-{i}" if i % 5 else None for i in range(rows)], pa.string()),
            pa.array([i % 3 == 0 for i in range(rows)], pa.bool_()),
            pa.array(
                [datetime.datetime(2026, 1, 1) + datetime.timedelta(seconds=i) for i in range(rows)],
                pa.timestamp("ms"),
            ),
            pa.array([[i, i + 1] if i % 4 else [] for i in range(rows)], pa.list_(pa.int32())),
            pa.array([["red", "green", "blue"][i % 3] for i in range(rows)]).dictionary_encode(),
        ],
        names=["id", "score", "name", "flag", "at", "pair", "colour"],
    )
    return pa.Table.from_batches([batch.slice(0, rows // 2), batch.slice(rows // 2)])


def connect(uri):
    tls = os.environ.get("HEDDLE_TLS_DIR")
    if tls is None:
        return flight.FlightClient(uri)
    files = [open(f"{tls}/{name}", "rb").read() for name in ("ca.pem", "node.pem", "node.key")]
    return flight.FlightClient(uri, tls_root_certs=files[0], cert_chain=files[1], private_key=files[2])


def options():
    token = os.environ.get("HEDDLE_TOKEN")
    headers = [(b"authorization", b"Bearer " + token.encode())] if token else []
    return flight.FlightCallOptions(headers=headers)


class Server(flight.FlightServerBase):
    def __init__(self, table, host):
        super().__init__(f"grpc://{host}:0")
        self.table = table
        self.released = []

    def do_get(self, context, ticket):
        return flight.RecordBatchStream(self.table)

    def do_action(self, context, action):
        self.released.append(action.body.to_pybytes())
        return []


def main():
    mode = sys.argv[1]
    if mode == "get":
        uri, ticket, expected = sys.argv[2], sys.argv[3], read(sys.argv[4])
        client = connect(uri)
        got = client.do_get(flight.Ticket(ticket.encode()), options()).read_all()
        if not got.equals(expected):
            print(f"tables differ:\n{got.schema}\n{expected.schema}\n{got}\n{expected}", file=sys.stderr)
            sys.exit(1)
        body = json.dumps({"ticket": ticket, "consumer": "pyarrow"}).encode()
        list(client.do_action(flight.Action("release", body), options()))
        actions = sorted(a.type for a in client.list_actions(options()))
        print(json.dumps({"rows": got.num_rows, "actions": actions}))
    elif mode == "serve":
        server = Server(read(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1")
        print(server.port, flush=True)
        threading.Thread(target=server.serve, daemon=True).start()
        sys.stdin.read()
        server.shutdown()
    elif mode == "compare":
        a, b = read(sys.argv[2]), read(sys.argv[3])
        if not a.equals(b):
            print(f"tables differ:\n{a}\n{b}", file=sys.stderr)
            sys.exit(1)
    elif mode == "write":
        table = interop_table(int(sys.argv[3]))
        with pa.OSFile(sys.argv[2], "wb") as f, pa.ipc.new_stream(f, table.schema) as w:
            w.write_table(table)
    elif mode == "bench":
        uri, ticket, rounds = sys.argv[2], sys.argv[3], int(sys.argv[4])
        client = flight.FlightClient(uri)
        total, seconds = 0, []
        for _ in range(rounds):
            start = time.perf_counter()
            table = client.do_get(flight.Ticket(ticket.encode()), options()).read_all()
            seconds.append(time.perf_counter() - start)
            total = table.nbytes
            del table
        print(json.dumps({"bytes": total, "seconds": seconds}))
    elif mode == "refused":
        uri, ticket = sys.argv[2], sys.argv[3]
        try:
            connect(uri).do_get(flight.Ticket(ticket.encode()), options()).read_all()
        except flight.FlightUnauthenticatedError as error:
            print(json.dumps({"refused": str(error).splitlines()[0]}))
            return
        sys.exit("do_get was not refused")
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
