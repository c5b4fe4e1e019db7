"""Started by the worker as `python3 -m fraud_score` (the manifest's entry)."""

from heddle_sdk import serve

serve("fraud_score")
