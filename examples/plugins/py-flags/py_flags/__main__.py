"""Started by the worker as `python3 -m py_flags` (the manifest's entry)."""

from heddle_sdk import serve

serve("py_flags")
