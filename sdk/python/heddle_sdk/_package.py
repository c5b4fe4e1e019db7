"""A plugin package as Python sees it: a Python package (say `fraud_score`) whose submodules
declare steps. Submodule `fraud_score.detect` is Heddle import path `fraud-score/detect`: the
Heddle package name is the Python package's `HEDDLE_PACKAGE`, or its name with `_` as `-`.
Both the manifest and the server are built from this one walk, so they can never disagree.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from ._step import Step

_REGISTRY: dict[str, dict[str, Step]] = {}


def register(step: Step) -> None:
    _REGISTRY.setdefault(step.module, {})[step.name] = step


def load_package(pypackage: str, search_dir: str | None = None) -> tuple[str, dict[str, dict[str, Step]]]:
    """Imports `pypackage` and all its submodules; returns (Heddle package name, steps by
    import path and step name)."""
    if search_dir and search_dir not in sys.path:
        sys.path.insert(0, search_dir)
    root = importlib.import_module(pypackage)
    name = getattr(root, "HEDDLE_PACKAGE", pypackage.split(".")[-1].replace("_", "-"))
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=f"{pypackage}."):
        if not info.name.rsplit(".", 1)[-1].startswith(("_", "test")):
            importlib.import_module(info.name)
    modules = {}
    for module, steps in sorted(_REGISTRY.items()):
        if module == pypackage or module.startswith(f"{pypackage}."):
            relative = module[len(pypackage) + 1:] or pypackage.split(".")[-1]
            modules[f"{name}/{relative.replace('.', '/')}"] = dict(steps)
    return name, modules


def build_manifest(pypackage: str, search_dir: str | None = None) -> dict:
    """The manifest (docs/manifest.md) of a plugin package."""
    name, modules = load_package(pypackage, search_dir)
    return {
        "heddle_manifest": 1,
        "package": name,
        "runtime": "python",
        "entry": ["python3", "-m", pypackage],
        "modules": {
            path: {"resources": {}, "steps": {n: s.manifest() for n, s in sorted(steps.items())}}
            for path, steps in modules.items()
        },
    }


def wire_steps(pypackage: str, search_dir: str | None = None) -> dict[str, Step]:
    """Steps by wire name `<import path>.<step>` (proto/plugin.proto, InvokeRequest.step)."""
    _, modules = load_package(pypackage, search_dir)
    return {f"{path}.{n}": s for path, steps in modules.items() for n, s in steps.items()}


__all__ = ["build_manifest", "load_package", "register", "wire_steps"]
