"""Step definitions: what `@step` records about a function and how one invocation runs it.

A step is a function over Arrow record batches. It is called once per record batch of the input
object, so memory stays bounded by the largest batch, and the row indices it reports are
relative to that batch (this module turns them into indices of the whole object). This module
must never let a step's output reach shared memory without checking it against the declared
row contract.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import pyarrow as pa
import pyarrow.compute as pc

from ._types import field_json, type_text


@dataclass(frozen=True)
class Row:
    """A row contract (docs/manifest.md): which columns a step takes or gives.

    kind "fields": exactly `schema` (or at least it, when `open`); "input-plus": the input row
    with `schema`'s columns appended (the step returns only the appended columns).
    """

    schema: pa.Schema
    kind: Literal["fields", "input-plus"] = "fields"
    open: bool = False

    def to_json(self) -> dict:
        fields = [field_json(f) for f in self.schema]
        if self.kind == "input-plus":
            return {"fields": fields, "include_input": True}
        return {"fields": fields, "open": self.open}


def open_row(schema: pa.Schema) -> Row:
    """An input that needs at least `schema`'s columns and passes any others through."""
    return Row(schema, "fields", True)


def input_plus(schema: pa.Schema) -> Row:
    """An output that is the input row with `schema`'s columns appended."""
    return Row(schema, "input-plus")


@dataclass(frozen=True)
class RowError:
    """A row the step could not process: `row` is its index in the batch the step was given."""

    row: int
    message: str


@dataclass
class Output:
    """What a step returns when some rows failed; `errors` index rows of the input batch.

    By default `batch` is aligned with the input batch (one output row per input row, in
    order) and the SDK removes the rows named in `errors`. A step that filters or expands rows
    passes `aligned=False` and leaves the failed rows out of `batch` itself.
    """

    batch: pa.RecordBatch | pa.Table
    errors: list[RowError] = field(default_factory=list)
    aligned: bool = True


class StepFailure(Exception):
    """Fails the whole invocation with a protocol error code (docs/plugins.md, "Errors")."""

    def __init__(self, code: str, message: str, column: str = "", step_index: int = 0):
        super().__init__(message)
        self.code = code
        self.message = message
        self.column = column
        self.step_index = step_index


@dataclass(frozen=True)
class Step:
    name: str
    module: str
    input: Row
    output: Row
    config: list[dict[str, Any]]
    doc: str
    fn: Callable[..., Any]

    def manifest(self) -> dict:
        return {
            "doc": self.doc, "role": "transform", "config": self.config, "slots": [],
            "input": self.input.to_json(), "output": self.output.to_json(),
        }

    def run(self, batch: pa.RecordBatch, config: dict[str, Any]) -> tuple[pa.RecordBatch, list[RowError], bool]:
        """Checks the input batch, calls the step, and returns its checked output, its errors,
        and whether the output rows are the input rows minus the failed ones, in order (so a
        chain knows which input row each output row came from)."""
        check_columns(batch, self.input, self.name, "input")
        takes_config = len(inspect.signature(self.fn).parameters) >= 2
        result = self.fn(batch, config) if takes_config else self.fn(batch)
        out, errors, aligned = (result.batch, result.errors, result.aligned) \
            if isinstance(result, Output) else (result, [], False)
        out = _as_batch(out, self.name)
        aligned = (aligned and bool(errors)) or self.output.kind == "input-plus"
        if aligned and out.num_rows != batch.num_rows:
            raise StepFailure("BAD_OUTPUT", f"step `{self.name}` returned {out.num_rows} rows for "
                              f"{batch.num_rows} input rows; its output must be aligned with its input")
        check_columns(out, self.output, self.name, "output")
        if self.output.kind == "input-plus":
            out = pa.RecordBatch.from_arrays(
                batch.columns + out.columns, schema=pa.schema(list(batch.schema) + list(self.output.schema)))
        else:
            out = pa.RecordBatch.from_arrays(out.columns, schema=self._declared(out.schema))
        if not errors:
            return out, [], aligned
        failed = {e.row for e in errors}
        outside = [r for r in failed if not 0 <= r < batch.num_rows]
        if outside:
            raise StepFailure("BAD_OUTPUT", f"step `{self.name}` reported an error for row "
                              f"{outside[0]}, which is not in its batch of {batch.num_rows} rows")
        if not aligned:
            return out, sorted(errors, key=lambda e: e.row), False
        keep = pa.array([i not in failed for i in range(out.num_rows)])
        return pc.filter(out, keep), sorted(errors, key=lambda e: e.row), True

    def _declared(self, actual: pa.Schema) -> pa.Schema:
        # Declared columns take the declared nullability; an open row keeps the rest as found.
        declared = {f.name: f for f in self.output.schema}
        return pa.schema([declared.get(f.name, f) for f in actual])


def _as_batch(value: Any, step: str) -> pa.RecordBatch:
    if isinstance(value, pa.RecordBatch):
        return value
    if isinstance(value, pa.Table):
        return value.combine_chunks().to_batches()[0] if value.num_rows else \
            pa.RecordBatch.from_pylist([], schema=value.schema)
    raise StepFailure("BAD_OUTPUT", f"step `{step}` returned {type(value).__name__}, "
                      "not a pyarrow RecordBatch, Table or heddle_sdk.Output")


def check_columns(batch: pa.RecordBatch, row: Row, step: str, side: str) -> None:
    """Raises a StepFailure naming the first declared column that `batch` breaks."""
    code = "BAD_OUTPUT" if side == "output" else "BAD_INPUT"
    names = batch.schema.names
    for want in row.schema:
        if want.name not in names:
            raise StepFailure(code, f"{side} of step `{step}` lacks column `{want.name}`", want.name)
        got = batch.schema.field(want.name)
        if type_text(got.type) != type_text(want.type):
            raise StepFailure(code, f"{side} column `{want.name}` of step `{step}` is "
                              f"{type_text(got.type)}, declared {type_text(want.type)}", want.name)
        # Inputs are not refused for nulls: a step reports such rows as row errors instead of
        # failing the whole batch.
        if side == "output" and not want.nullable and batch.column(want.name).null_count:
            raise StepFailure(code, f"{side} column `{want.name}` of step `{step}` holds nulls "
                              "but is declared not null", want.name)
    closed = not row.open
    extra = [n for n in names if n not in row.schema.names]
    if closed and extra:
        raise StepFailure(code, f"{side} of step `{step}` has undeclared column `{extra[0]}`", extra[0])
    if closed and names != row.schema.names:
        raise StepFailure(code, f"{side} columns of step `{step}` are in the order {names}, "
                          f"declared {row.schema.names}", names[0])
