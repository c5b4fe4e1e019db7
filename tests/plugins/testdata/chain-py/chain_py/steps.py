"""`chain-py/steps`: two small steps over `n` for the operator-fusion tests. `add_one` appends
`plus = n + 1`, `square` appends `squared = plus * plus`; each rejects the rows whose `n` is
in its config's `fail_n`, and `square` raises on `raise_n`, so a test can tell which step of a
chain failed and which row of the original input it failed on. Never used outside tests.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from heddle_sdk import Output, RowError, input_plus, open_row, step


def _rejected(batch: pa.RecordBatch, config: dict) -> list[RowError]:
    fail = set(config.get("fail_n") or [])
    return [RowError(i, f"n = {n} fails on purpose")
            for i, n in enumerate(batch.column("n").to_pylist()) if n in fail]


@step(name="add_one", input=open_row(pa.schema([pa.field("n", pa.int64())])),
      output=input_plus(pa.schema([pa.field("plus", pa.int64())])),
      config={"fail_n": {"type": "list", "doc": "Values of `n` whose rows fail."}})
def add_one(batch: pa.RecordBatch, config: dict) -> Output:
    """Appends `plus = n + 1`."""
    plus = pc.add(batch.column("n"), 1)
    return Output(pa.RecordBatch.from_arrays([plus], names=["plus"]), _rejected(batch, config))


@step(name="square", input=open_row(pa.schema([pa.field("plus", pa.int64())])),
      output=input_plus(pa.schema([pa.field("squared", pa.int64())])),
      config={"fail_n": {"type": "list", "doc": "Values of `n` whose rows fail."},
              "raise_n": {"type": "list", "doc": "Values of `n` that make the batch raise."}})
def square(batch: pa.RecordBatch, config: dict) -> Output:
    """Appends `squared = plus * plus`."""
    raised = [n for n in batch.column("n").to_pylist() if n in set(config.get("raise_n") or [])]
    if raised:
        raise ValueError(f"n = {raised[0]} raises on purpose")
    plus = batch.column("plus")
    squared = pc.multiply(plus, plus)
    return Output(pa.RecordBatch.from_arrays([squared], names=["squared"]),
                  _rejected(batch, config))
