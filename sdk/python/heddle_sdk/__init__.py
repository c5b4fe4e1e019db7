"""Heddle's Python SDK: write workflow steps as functions over Arrow record batches.

A plugin is a Python package; its `__main__.py` is two lines, and each submodule declares steps:

    # fraud_score/__main__.py
    from heddle_sdk import serve
    serve("fraud_score")

    # fraud_score/detect.py  (Heddle import path "fraud-score/detect")
    @step(name="process", input=pa.schema([...]), output=input_plus(pa.schema([...])))
    def process(batch, config): ...

`python -m heddle_sdk manifest fraud_score` prints the manifest the compiler reads. Step inputs
are read zero-copy out of shared memory. This package must never send row data over its socket:
only handles (docs/plugins.md).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import pyarrow as pa

from ._package import build_manifest, register, wire_steps
from ._step import Output, Row, RowError, Step, StepFailure, input_plus, open_row

__all__ = [
    "step", "serve", "build_manifest", "Output", "Row", "RowError", "StepFailure",
    "input_plus", "open_row",
]


def step(
    *,
    name: str,
    input: pa.Schema | Row,
    output: pa.Schema | Row,
    config: dict[str, Any] | None = None,
    doc: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declares a step. `config` maps each key to a manifest config type ("string", "int",
    "number", "bool", "duration", "list", "object", or {"enum": [...]}) or to a dict with
    `type`, `required` and `doc`. The function takes `(batch)` or `(batch, config)` and
    returns a RecordBatch, a one-batch Table, or an `Output` with row errors."""

    def declare(fn: Callable[..., Any]) -> Callable[..., Any]:
        register(Step(
            name=name, module=fn.__module__, input=_row(input), output=_row(output),
            config=[_config_field(k, v) for k, v in (config or {}).items()],
            doc=doc or (fn.__doc__ or "").strip(), fn=fn,
        ))
        return fn

    return declare


def serve(pypackage: str) -> None:
    """Serves the steps of `pypackage` on the worker's socket until told to stop."""
    from ._server import serve_steps  # grpc is only needed by a running plugin

    search_dir = os.getcwd()
    manifest = json.dumps(build_manifest(pypackage, search_dir))
    serve_steps(wire_steps(pypackage, search_dir), manifest)


def _row(value: pa.Schema | Row) -> Row:
    return value if isinstance(value, Row) else Row(value)


def _config_field(key: str, spec: Any) -> dict[str, Any]:
    if isinstance(spec, dict) and "type" in spec:
        return {"key": key, "type": spec["type"], "required": bool(spec.get("required", False)),
                "doc": str(spec.get("doc", ""))}
    return {"key": key, "type": spec, "required": False, "doc": ""}
