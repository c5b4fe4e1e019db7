"""`py-flags/amounts`: flags large card payments, vectorised with pyarrow.compute over the
shared-memory columns (no row is turned into a Python object)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from heddle_sdk import input_plus, open_row, step


@step(
    name="large",
    input=open_row(pa.schema([pa.field("amount_cents", pa.int64())])),
    output=input_plus(pa.schema([pa.field("is_large", pa.bool_())])),
    config={"cents": {"type": "int", "doc": "From this amount in cents on (default 100000)."}},
    doc="Appends `is_large`: whether `amount_cents` is at least `cents` (null stays null).",
)
def large(batch: pa.RecordBatch, config: dict) -> pa.RecordBatch:
    limit = int(config.get("cents", 100_000))
    flags = pc.greater_equal(batch.column("amount_cents"), pa.scalar(limit, pa.int64()))
    return pa.RecordBatch.from_arrays([flags], names=["is_large"])
