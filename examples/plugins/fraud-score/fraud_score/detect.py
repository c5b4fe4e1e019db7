"""`fraud-score/detect`: scores card transactions and keeps the suspicious ones.

The rule is deliberately simple and explainable (an audit text is generated from it later):
large amounts score higher on a log scale (1,000 scores 0, 1,000,000 scores 0.75), and amounts
that are exact multiples of 1,000 add 0.25, since structured round transfers are a classic
fraud pattern. Rows with a missing, negative or non-finite amount are row errors that go to the
step's handler; they must never be scored as zero and silently dropped.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from heddle_sdk import Output, RowError, step

TRANSACTION = pa.schema([
    pa.field("user_id", pa.int64(), nullable=False),
    pa.field("amount", pa.float64(), nullable=False),
])
SCORED = pa.schema([
    pa.field("user_id", pa.int64(), nullable=False),
    pa.field("amount", pa.float64(), nullable=False),
    pa.field("fraud_score", pa.float64(), nullable=False),
])


def score(amount: pa.Array) -> pa.Array:
    """The fraud score of each (valid, positive) amount, in [0, 1]."""
    magnitude = pc.divide(pc.subtract(pc.log10(pc.max_element_wise(amount, 1.0)), 3.0), 3.0)
    base = pc.multiply(pc.min_element_wise(pc.max_element_wise(magnitude, 0.0), 1.0), 0.75)
    whole_thousands = pc.and_(
        pc.greater_equal(amount, 1000.0),
        pc.equal(pc.subtract(amount, pc.multiply(pc.floor(pc.divide(amount, 1000.0)), 1000.0)), 0.0),
    )
    bonus = pc.if_else(whole_thousands, 0.25, 0.0)
    return pc.min_element_wise(pc.add(base, bonus), 1.0)


@step(
    name="process",
    input=TRANSACTION,
    output=SCORED,
    config={"threshold": {"type": "number", "doc": "Minimum score kept (default 0.5)."}},
    doc="Scores each transaction and keeps the suspicious ones, adding `fraud_score`.",
)
def process(batch: pa.RecordBatch, config: dict) -> Output:
    threshold = float(config.get("threshold", 0.5))
    amount = batch.column("amount")
    valid = pc.fill_null(pc.and_(pc.is_finite(amount), pc.greater_equal(amount, 0.0)), False)
    # Only the (few) failed rows are turned into Python objects.
    failed = pc.indices_nonzero(pc.invert(valid)).to_pylist()
    errors = [
        RowError(row, "amount is missing" if amount[row].as_py() is None
                 else f"amount {amount[row].as_py()} is not a valid amount")
        for row in failed
    ]
    safe = pc.if_else(valid, amount, 0.0)
    scores = score(safe)
    # Rows below the threshold are not errors, just not suspicious: the step drops them, and
    # the failed rows with them, so its output is not aligned with its input.
    keep = pc.and_(valid, pc.greater_equal(scores, threshold))
    scored = pa.RecordBatch.from_arrays([batch.column("user_id"), safe, scores], schema=SCORED)
    return Output(scored.filter(keep), errors, aligned=False)
