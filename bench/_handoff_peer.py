"""What every peer of the handoff benchmark shares (bench/_handoff_vineyard.py,
bench/_handoff_ray.py): the command line, reading the Arrow table the benchmark wrote, the
timed rounds and the one JSON line of medians in milliseconds that bench/handoff.ts reads:

    {"start": .., "put": .., "putCold": .., "handoff": .., "total": .., "rows": .., "checksum": {..}}

- start: the peer's start-up (its store, its consumer process ready), never counted in the
  other numbers but reported, since a benchmark must not hide a cost;
- put: the producer's put of the table; putCold: the first one (the store's memory untouched);
- handoff: the object's reference to the consumer, which maps the table (no value read) and
  replies;
- total: put, then the reference to the consumer, which maps the table and reads every value
  with the checksum the Heddle consumers compute (bench/_handoff_consumer.py).

A peer script only starts its store and consumer and says how to put, ask and release; the
rounds are timed here, the same way for every peer, so that no peer is measured differently.
"""

import json
import statistics
import sys
import time
from typing import Any, Callable

import pyarrow as pa
import pyarrow.ipc as ipc

USAGE = "usage: SCRIPT IPC_FILE RUNS WARM TMP_DIR (WARM untimed rounds first)"


def arguments() -> tuple[str, int, int, str]:
    """The IPC stream file, the timed runs, the untimed warm-up rounds and a scratch folder."""
    if len(sys.argv) != 5:
        raise SystemExit(USAGE)
    return sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]


def read_table(ipc_file: str) -> pa.Table:
    with open(ipc_file, "rb") as f:
        return ipc.open_stream(pa.py_buffer(f.read())).read_all()


def measure(
    table: pa.Table,
    put: Callable[[], Any],
    ask: Callable[[str, Any], dict],
    release: Callable[[Any], None],
    runs: int,
    warm: int,
) -> dict:
    """Times `runs` rounds after `warm` untimed ones. `ask("M", ref)` has the consumer map
    the object and reply `{"rows": n}`; `ask("R", ref)` has it read every value and reply
    the checksum. Returns the medians in milliseconds and the last checksum."""
    samples: dict = {"put": [], "handoff": [], "total": []}
    put_cold = None
    checksum = None
    for run in range(warm + runs):
        t0 = time.perf_counter()
        ref = put()
        put_ms = time.perf_counter() - t0
        t1 = time.perf_counter()
        mapped = ask("M", ref)
        handoff = time.perf_counter() - t1
        t2 = time.perf_counter()
        checksum = ask("R", ref)
        total = put_ms + time.perf_counter() - t2
        if mapped["rows"] != table.num_rows:
            raise SystemExit(f"the consumer saw {mapped['rows']} rows, not {table.num_rows}")
        release(ref)
        del ref
        if run == 0:
            put_cold = put_ms
        if run >= warm:
            samples["put"].append(put_ms)
            samples["handoff"].append(handoff)
            samples["total"].append(total)
    result = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    result.update(putCold=put_cold * 1000, rows=table.num_rows, checksum=checksum)
    return result


def report(result: dict, start_seconds: float) -> None:
    """The one line bench/handoff.ts reads (the last line of stdout)."""
    print(json.dumps({"start": start_seconds * 1000, **result}), flush=True)
