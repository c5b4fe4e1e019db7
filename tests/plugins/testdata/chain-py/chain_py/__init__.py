"""`chain-py`: a Python test plugin whose two steps are chained by operator fusion in tests."""
