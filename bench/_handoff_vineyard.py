"""The Vineyard peer of the handoff benchmark (issue 11, goal 1): the same Arrow table
(read from the IPC stream file the benchmark wrote) is put into a private vineyardd by this
process and taken by another Python process, which maps it zero-copy (`client.get`) and,
for the timed total, reads every value with the checksum the Heddle consumers compute
(bench/_handoff_consumer.py). Prints one JSON line of medians in milliseconds:

    {"put": .., "putCold": .., "handoff": .., "total": .., "rows": .., "checksum": {..}}

- put: `client.put(table)`; putCold: the first one (vineyardd's memory not touched yet);
- handoff: the object id to the consumer, `client.get`, the reply (no value read);
- total: put, then the id to the consumer, `client.get` and reading every value.

Usage: _handoff_vineyard.py IPC_FILE RUNS WARM (untimed first rounds), or _handoff_vineyard.py --consumer SOCKET.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _handoff_consumer import checksum_table  # noqa: E402


def consume(socket_path: str) -> None:
    """Answers each `KIND OBJECT_ID` line of stdin: `M` maps only, `R` reads every value."""
    import vineyard

    client = vineyard.connect(socket_path)
    print("ready", flush=True)
    for line in sys.stdin:
        kind, object_id = line.split()
        table = client.get(vineyard.ObjectID(int(object_id)))
        reply = checksum_table(table) if kind == "R" else {"rows": table.num_rows}
        del table
        print(json.dumps(reply), flush=True)


def median(values: list) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def produce(ipc_file: str, runs: int, warm: int) -> None:
    import subprocess

    import vineyard
    from vineyard.deploy.local import start_vineyardd

    with open(ipc_file, "rb") as f:
        table = ipc.open_stream(pa.py_buffer(f.read())).read_all()
    size = max(1 << 30, 3 * table.nbytes)
    with tempfile.TemporaryDirectory(prefix="heddle-bench-vineyard-") as tmp:
        socket_path = f"{tmp}/vineyard.sock"
        with start_vineyardd(meta="local", size=str(size), socket=socket_path, rpc=False):
            client = vineyard.connect(socket_path)
            consumer = subprocess.Popen(
                [sys.executable, __file__, "--consumer", socket_path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert consumer.stdout.readline().strip() == "ready"

                def ask(kind: str, object_id) -> dict:
                    consumer.stdin.write(f"{kind} {int(object_id)}\n")
                    consumer.stdin.flush()
                    return json.loads(consumer.stdout.readline())

                samples = {"put": [], "handoff": [], "total": []}
                put_cold = None
                checksum = None
                for run in range(warm + runs):
                    t0 = time.perf_counter()
                    object_id = client.put(table)
                    put = time.perf_counter() - t0
                    t1 = time.perf_counter()
                    mapped = ask("M", object_id)
                    handoff = time.perf_counter() - t1
                    t2 = time.perf_counter()
                    checksum = ask("R", object_id)
                    total = put + time.perf_counter() - t2
                    if mapped["rows"] != table.num_rows:
                        raise SystemExit(f"vineyard consumer saw {mapped['rows']} rows")
                    client.delete(object_id)
                    if run == 0:
                        put_cold = put
                    if run < warm:
                        continue
                    samples["put"].append(put)
                    samples["handoff"].append(handoff)
                    samples["total"].append(total)
            finally:
                consumer.stdin.close()
                consumer.wait()
    result = {k: median(v) * 1000 for k, v in samples.items()}
    result.update(putCold=put_cold * 1000, rows=table.num_rows, checksum=checksum)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--consumer":
        consume(sys.argv[2])
    else:
        produce(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
