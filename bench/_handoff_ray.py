"""The Ray peer of the handoff benchmark (issue 11, goals 1 and 6): the same Arrow table
(read from the IPC stream file the benchmark wrote) is put into the object store of a
private, single-node Ray started by this process (`ray.put`), and a Ray actor, a separate
worker process, takes it by its reference (`ray.get`, which maps the buffers zero-copy from
the plasma store) and, for the timed total, reads every value with the checksum the Heddle
consumers compute (bench/_handoff_consumer.py). The rounds and the JSON line it prints are
those of every peer (bench/_handoff_peer.py); start is `ray.init`, the actor's start and a
first one-row table through both, which is never counted in put or handoff.

The Ray started here must stay private and quiet: loopback only, no dashboard, no usage
statistics sent anywhere, one CPU, an object store sized from the table, its session files
in a folder of its own that is removed after, and it is shut down before this process exits.

Usage: _handoff_ray.py IPC_FILE RUNS WARM TMP_DIR.
"""

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = str(Path(__file__).resolve().parent)
sys.path.insert(0, BENCH_DIR)
from _handoff_peer import arguments, measure, read_table, report  # noqa: E402

# Ray's smallest object store; below it `ray.init` refuses to start.
MIN_STORE_BYTES = 128 << 20


class Consumer:
    """The actor: a worker process of its own, which gets each table by its reference."""

    def __init__(self, bench_dir: str):
        sys.path.insert(0, bench_dir)
        from _handoff_consumer import checksum_table

        self.checksum_table = checksum_table

    def ready(self, refs: list) -> int:
        import ray

        return ray.get(refs[0]).num_rows

    def serve(self, kind: str, refs: list) -> dict:
        """`M` maps the table only, `R` reads every value. The reference arrives inside a
        list so that Ray does not resolve it before the call: the `ray.get` is the actor's."""
        import ray

        table = ray.get(refs[0])
        reply = self.checksum_table(table) if kind == "R" else {"rows": table.num_rows}
        del table
        return reply


def produce(ipc_file: str, runs: int, warm: int, _scratch: str) -> None:
    # Before Ray is imported: no usage report leaves the machine, and the node's address is
    # the loopback one (Ray's "no cluster" mode) rather than the machine's network address.
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    table = read_table(ipc_file)
    # Not under the benchmark's scratch folder: Ray puts its Unix sockets four levels below
    # this folder, and a socket's path may not exceed 107 bytes.
    with tempfile.TemporaryDirectory(prefix="heddle-ray-") as tmp:
        t0 = time.perf_counter()
        ray.init(
            num_cpus=1,
            object_store_memory=max(MIN_STORE_BYTES, 3 * table.nbytes),
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
            _temp_dir=tmp,
        )
        try:
            consumer = ray.remote(num_cpus=0)(Consumer).remote(BENCH_DIR)
            # A first tiny table each way loads Ray's serialisation code in both processes
            # (about 0.1 to 0.3 s on the first put): a start-up cost, not the put's.
            assert ray.get(consumer.ready.remote([ray.put(table.slice(0, 1))])) == 1
            start = time.perf_counter() - t0

            def ask(kind: str, ref) -> dict:
                return ray.get(consumer.serve.remote(kind, [ref]))

            # Dropping the last reference frees the object: nothing else to release.
            result = measure(table, lambda: ray.put(table), ask, lambda ref: None, runs, warm)
        finally:
            ray.shutdown()
    report(result, start)


if __name__ == "__main__":
    produce(*arguments())
