"""The Vineyard peer of the handoff benchmark (issue 11, goal 1): the same Arrow table
(read from the IPC stream file the benchmark wrote) is put into a private vineyardd by this
process and taken by another Python process, which maps it zero-copy (`client.get`) and,
for the timed total, reads every value with the checksum the Heddle consumers compute
(bench/_handoff_consumer.py). The rounds and the JSON line it prints are those of every peer
(bench/_handoff_peer.py): start is vineyardd's start-up and the consumer's until it is ready;
the object id reaches the consumer over its stdin.

Usage: _handoff_vineyard.py IPC_FILE RUNS WARM TMP_DIR, or _handoff_vineyard.py --consumer SOCKET.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _handoff_consumer import checksum_table  # noqa: E402
from _handoff_peer import arguments, measure, read_table, report  # noqa: E402


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


def produce(ipc_file: str, runs: int, warm: int, scratch: str) -> None:
    import vineyard
    from vineyard.deploy.local import start_vineyardd

    table = read_table(ipc_file)
    size = max(1 << 30, 3 * table.nbytes)
    with tempfile.TemporaryDirectory(prefix="vineyard-", dir=scratch) as tmp:
        socket_path = f"{tmp}/vineyard.sock"
        t0 = time.perf_counter()
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
                start = time.perf_counter() - t0

                def ask(kind: str, object_id) -> dict:
                    consumer.stdin.write(f"{kind} {int(object_id)}\n")
                    consumer.stdin.flush()
                    return json.loads(consumer.stdout.readline())

                result = measure(table, lambda: client.put(table), ask, client.delete, runs, warm)
            finally:
                consumer.stdin.close()
                consumer.wait()
    report(result, start)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--consumer"]:
        consume(sys.argv[2])
    else:
        produce(*arguments())
