"""The `py-flags` plugin package, the Python step of examples/polyglot.he: Heddle import path
`py-flags/amounts` is the submodule `amounts`. It needs nothing but heddle_sdk and pyarrow.
"""
