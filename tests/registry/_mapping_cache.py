"""Reads registry handles through the Python SDK's MappedInput for
tests/registry/python_cache.test.ts: one JSON command per stdin line, one JSON reply per
stdout line. `read` maps a handle (with its segmentId, so through the mapping cache), sums
column `x` and reports the mapping's base address; `sweep` lets go of removed files' mappings
at once instead of within the sweeper's second; both report how many mappings are cached.
"""

import json
import sys
from pathlib import Path

import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk" / "python"))
from heddle_sdk._shm import MappedInput, segments  # noqa: E402

for line in sys.stdin:
    command = json.loads(line)
    reply = {}
    if command["op"] == "read":
        h = command["handle"]
        mapped = MappedInput(h["segment"], h["offset"], h["length"], h.get("segmentId", ""))
        try:
            table = mapped.reader().read_all()
            reply = {"sum": pc.sum(table.column("x")).as_py(), "base": mapped.buffer.address - h["offset"]}
            del table
        finally:
            mapped.close()
    elif command["op"] == "sweep":
        segments.sweep()
    reply["cached"] = segments.mapped()
    print(json.dumps(reply), flush=True)
