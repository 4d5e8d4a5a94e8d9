"""The drain benchmark behind `make bench`: the shipped pipeline against a bare consumer loop.

`python -m bench --help`; the method and the latest figures are in `docs/benchmarks.md`.
"""
