"""The plugin process: a gRPC server on the Unix socket the worker named, running steps over
objects in shared memory. Only handles cross the socket (proto/plugin.proto).

It must never let a user error escape as a gRPC failure: every failure of an invocation is an
InvokeResponse with a StepError, so the worker can tell a failing step from a dying plugin.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import threading
import traceback
from concurrent import futures

import grpc
import pyarrow as pa

from . import _proto
from ._fingerprint import schema_fingerprint
from ._shm import MappedInput, write_output
from ._step import Step, StepFailure

SDK = "heddle-sdk-python/0.1.0"


class _Servicer:
    def __init__(self, steps: dict[str, Step], manifest_json: str):
        self._steps = steps
        self._manifest_json = manifest_json
        self._pb, _ = _proto.load()

    def Describe(self, request, context):
        return self._pb.DescribeResponse(manifest_json=self._manifest_json, sdk=SDK)

    def Health(self, request, context):
        return self._pb.HealthResponse(status="SERVING", pid=os.getpid())

    def Invoke(self, request, context):
        pb = self._pb
        chain = [(request.step, request.config_json)] + [(s.step, s.config_json) for s in request.then]
        try:
            handle, errors = self._invoke(request, chain)
            return pb.InvokeResponse(ok=pb.InvokeOk(
                output=handle,
                row_errors=[pb.RowError(row=row, message=msg, step_index=index)
                            for row, msg, index in errors],
                steps_run=len(chain),
            ))
        except StepFailure as failure:
            return pb.InvokeResponse(error=pb.StepError(
                code=failure.code, message=_named(chain, failure.step_index, failure.message),
                column=failure.column, step_index=failure.step_index))
        except _ChainError as failed:  # user code: report it, keep serving
            error = failed.__cause__
            traceback.print_exception(error, file=sys.stderr)
            return pb.InvokeResponse(error=pb.StepError(
                code="USER_CODE", step_index=failed.index,
                message=_named(chain, failed.index, f"{type(error).__name__}: {error}")))
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            return pb.InvokeResponse(error=pb.StepError(
                code="USER_CODE", message=f"{type(error).__name__}: {error}"))

    def _invoke(self, request, chain):
        steps = []
        for index, (name, config_json) in enumerate(chain):
            step = self._steps.get(name)
            if step is None:
                known = ", ".join(f"`{n}`" for n in sorted(self._steps)) or "none"
                raise StepFailure("UNKNOWN_STEP", f"no step `{name}` here (known: {known})",
                                  step_index=index)
            try:
                steps.append((step, json.loads(config_json or "{}")))
            except json.JSONDecodeError as error:
                raise StepFailure("BAD_CONFIG", f"config of `{name}` is not JSON: {error}",
                                  step_index=index)
        handle = request.input
        try:
            mapped = MappedInput(handle.segment, handle.offset, handle.length, handle.segment_id)
        except (OSError, ValueError) as error:
            raise StepFailure("BAD_INPUT", f"cannot map input `{handle.segment}`: {error}")
        try:
            out_batches, errors = self._run(steps, mapped, handle)
        finally:
            mapped.close()
        schema, batches = out_batches
        try:
            written = write_output(request.output_segment, schema, batches)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            raise StepFailure("NO_SPACE", f"no space left in /dev/shm for output "
                              f"`{request.output_segment}`: {error.strerror}",
                              step_index=len(chain) - 1)
        return self._pb.ObjectHandle(
            id=request.output_segment.lstrip("/"), segment=request.output_segment, offset=0,
            length=written.length, schema_fingerprint=schema_fingerprint(schema),
            rows=written.rows,
        ), errors

    def _run(self, steps, mapped: MappedInput, handle):
        reader = mapped.reader()
        found = schema_fingerprint(reader.schema)
        if found != handle.schema_fingerprint:
            raise StepFailure("BAD_INPUT", f"input `{handle.segment}` has schema fingerprint "
                              f"{found}, the handle says {handle.schema_fingerprint}")
        out, errors, start = [], [], 0
        for batch in reader:
            result, row_errors = _run_chain(steps, batch)
            if out and not result.schema.equals(out[0].schema):
                raise StepFailure("BAD_OUTPUT", f"step `{steps[-1][0].name}` returned batches "
                                  "with different schemas for one input object",
                                  step_index=len(steps) - 1)
            out.append(result)
            errors.extend((start + row, message, index) for row, message, index in row_errors)
            start += batch.num_rows
        if not out:  # an input object with no batches still has a schema to answer with
            empty = pa.RecordBatch.from_pylist([], schema=reader.schema)
            result, _ = _run_chain(steps, empty)
            return (result.schema, []), errors
        return (out[0].schema, out), errors


class _ChainError(Exception):
    """A step's own exception, with the index of that step in the chain."""

    def __init__(self, index: int):
        super().__init__(index)
        self.index = index


def _named(chain, index: int, message: str) -> str:
    return f"step `{chain[index][0]}`: {message}" if len(chain) > 1 else message


def _run_chain(steps, batch: pa.RecordBatch):
    """Runs `batch` through every step; row errors are (row of `batch`, message, step index),
    so the worker quarantines the rows it sent, whichever step rejected them."""
    origins: list[int] | None = list(range(batch.num_rows))
    errors: list[tuple[int, str, int]] = []
    current = batch
    for index, (step, config) in enumerate(steps):
        try:
            current_out, row_errors, aligned = step.run(current, config)
        except StepFailure as failure:
            failure.step_index = index
            raise
        except Exception as error:
            raise _ChainError(index) from error
        if origins is None and batch.num_rows == 1:
            origins = [0] * current.num_rows  # every row of a one-row input came from it
        if row_errors and origins is None:
            raise StepFailure("ROW_ORIGIN_LOST", f"step `{step.name}` rejected rows of a batch "
                              "whose rows an earlier step of the chain did not keep aligned with "
                              "the input", step_index=index)
        errors.extend((origins[e.row], e.message, index) for e in row_errors)
        if aligned and origins is not None:
            failed = {e.row for e in row_errors}
            origins = [o for i, o in enumerate(origins) if i not in failed]
        else:
            origins = None
        current = current_out
    return current, errors


def serve_steps(steps: dict[str, Step], manifest_json: str) -> None:
    """Serves until SIGTERM/SIGINT or until the worker (HEDDLE_WORKER_PID) is gone."""
    socket = os.environ.get("HEDDLE_PLUGIN_SOCKET")
    if not socket:
        sys.exit("heddle_sdk: HEDDLE_PLUGIN_SOCKET is not set; plugins are started by a worker")
    _, pb_grpc = _proto.load()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_PluginServicer_to_server(_Servicer(steps, manifest_json), server)
    server.add_insecure_port(f"unix://{socket}")
    server.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker = int(os.environ.get("HEDDLE_WORKER_PID", "0"))
    while not stop.wait(1.0):
        if worker and not _alive(worker):
            break  # an orphaned plugin would hold its socket and memory forever
    server.stop(grace=2).wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


__all__ = ["serve_steps"]
