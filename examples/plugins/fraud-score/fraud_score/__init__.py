"""The `fraud-score` plugin package: Heddle import path `fraud-score/detect` is the submodule
`detect`. It exists as the Python half of the seed program and must never need anything but
heddle_sdk and pyarrow.
"""
