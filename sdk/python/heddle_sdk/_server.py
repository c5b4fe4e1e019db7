"""The plugin process: a gRPC server on the Unix socket the worker named, running steps over
objects in shared memory. Only handles cross the socket (proto/plugin.proto).

It must never let a user error escape as a gRPC failure: every failure of an invocation is an
InvokeResponse with a StepError, so the worker can tell a failing step from a dying plugin.
"""

from __future__ import annotations

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
        try:
            handle, errors = self._invoke(request)
            return pb.InvokeResponse(ok=pb.InvokeOk(
                output=handle,
                row_errors=[pb.RowError(row=row, message=msg) for row, msg in errors],
            ))
        except StepFailure as failure:
            return pb.InvokeResponse(error=pb.StepError(
                code=failure.code, message=failure.message, column=failure.column))
        except Exception as error:  # user code: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            return pb.InvokeResponse(error=pb.StepError(
                code="USER_CODE", message=f"{type(error).__name__}: {error}"))

    def _invoke(self, request):
        step = self._steps.get(request.step)
        if step is None:
            known = ", ".join(f"`{name}`" for name in sorted(self._steps)) or "none"
            raise StepFailure("UNKNOWN_STEP", f"no step `{request.step}` here (known: {known})")
        try:
            config = json.loads(request.config_json or "{}")
        except json.JSONDecodeError as error:
            raise StepFailure("BAD_CONFIG", f"config of `{request.step}` is not JSON: {error}")
        handle = request.input
        try:
            mapped = MappedInput(handle.segment, handle.offset, handle.length)
        except (OSError, ValueError) as error:
            raise StepFailure("BAD_INPUT", f"cannot map input `{handle.segment}`: {error}")
        try:
            out_batches, errors = self._run(step, config, mapped, handle)
        finally:
            mapped.close()
        schema, batches = out_batches
        written = write_output(request.output_segment, schema, batches)
        return self._pb.ObjectHandle(
            id=request.output_segment.lstrip("/"), segment=request.output_segment, offset=0,
            length=written.length, schema_fingerprint=schema_fingerprint(schema),
            rows=written.rows,
        ), errors

    def _run(self, step: Step, config, mapped: MappedInput, handle):
        reader = mapped.reader()
        found = schema_fingerprint(reader.schema)
        if found != handle.schema_fingerprint:
            raise StepFailure("BAD_INPUT", f"input `{handle.segment}` has schema fingerprint "
                              f"{found}, the handle says {handle.schema_fingerprint}")
        out, errors, start = [], [], 0
        for batch in reader:
            result, row_errors = step.run(batch, config)
            if out and not result.schema.equals(out[0].schema):
                raise StepFailure("BAD_OUTPUT", f"step `{step.name}` returned batches with "
                                  "different schemas for one input object")
            out.append(result)
            errors.extend((start + e.row, e.message) for e in row_errors)
            start += batch.num_rows
        if not out:  # an input object with no batches still has a schema to answer with
            empty = pa.RecordBatch.from_pylist([], schema=reader.schema)
            result, _ = step.run(empty, config)
            return (result.schema, []), errors
        return (out[0].schema, out), errors


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
