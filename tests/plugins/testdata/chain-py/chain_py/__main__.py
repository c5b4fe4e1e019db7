"""Started by the worker as `python3 -m chain_py` (the manifest's entry)."""

from heddle_sdk import serve

serve("chain_py")
