"""The drain benchmark behind `make bench`: the pipeline as shipped against the bare consumer
loop and, on request, the Quix floor. `python -m bench --help`; method in docs/benchmarks.md."""


class BenchError(Exception):
    """The run cannot go on (a contestant failed, the summaries differ); the message says why."""
