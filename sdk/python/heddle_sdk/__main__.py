"""`python -m heddle_sdk manifest PYPACKAGE [--out FILE]`: writes a plugin package's manifest
(docs/manifest.md) from its step declarations. Run it in the plugin directory; it imports the
step modules but never runs a step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ._package import build_manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m heddle_sdk")
    sub = parser.add_subparsers(dest="command", required=True)
    manifest = sub.add_parser("manifest", help="print or write the plugin's manifest")
    manifest.add_argument("pypackage", help="the plugin's Python package, e.g. fraud_score")
    manifest.add_argument("--out", help="write here instead of standard output")
    args = parser.parse_args(argv)
    text = json.dumps(build_manifest(args.pypackage, os.getcwd()), indent=2) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
