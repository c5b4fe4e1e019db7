"""Loads the gRPC stubs for proto/plugin.proto, generating them on first use.

Why generate instead of committing them: protobuf's Python gencode is pinned to the protoc that
produced it (it refuses to load under an older runtime, and the grpc stub imports its message
module by a top-level name that breaks inside a package). grpcio-tools bundles a protoc that
matches the protobuf runtime it depends on, so stubs generated here always load. They are
cached per proto content hash, so a changed protocol file can never be served by stale stubs.
This module must never fall back to a different protocol file than the worker's.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

_cached: tuple[ModuleType, ModuleType] | None = None


def proto_path() -> Path:
    """The worker's protocol file (HEDDLE_PROTO_PATH, always set by the worker), else the
    source tree's, for tools such as `python -m heddle_sdk manifest` run by hand."""
    env = os.environ.get("HEDDLE_PROTO_PATH")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "proto" / "plugin.proto"


def load() -> tuple[ModuleType, ModuleType]:
    """Returns (plugin_pb2, plugin_pb2_grpc)."""
    global _cached
    if _cached is not None:
        return _cached
    source = proto_path()
    text = source.read_bytes()
    digest = hashlib.sha256(text).hexdigest()[:16]
    cache_root = Path(os.environ.get("HEDDLE_CACHE_DIR", Path.home() / ".cache" / "heddle"))
    out = cache_root / "pb" / digest
    if not (out / "plugin_pb2_grpc.py").exists():
        _generate(text, out)
    sys.path.insert(0, str(out))
    try:
        pb2 = importlib.import_module("plugin_pb2")
        pb2_grpc = importlib.import_module("plugin_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    _cached = (pb2, pb2_grpc)
    return _cached


def _generate(text: bytes, out: Path) -> None:
    from grpc_tools import protoc  # imported lazily: only needed on a cold cache

    out.parent.mkdir(parents=True, exist_ok=True)
    # Generate into a private directory and rename, so that concurrent plugin processes never
    # import a half-written stub.
    work = Path(tempfile.mkdtemp(dir=out.parent))
    try:
        (work / "plugin.proto").write_bytes(text)
        include = str(Path(protoc.__file__).parent / "_proto")
        code = protoc.main([
            "grpc_tools.protoc", f"-I{work}", f"-I{include}",
            f"--python_out={work}", f"--grpc_python_out={work}", str(work / "plugin.proto"),
        ])
        if code != 0:
            raise RuntimeError(f"protoc failed ({code}) on {work / 'plugin.proto'}")
        try:
            work.rename(out)
        except OSError:
            if not (out / "plugin_pb2_grpc.py").exists():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
