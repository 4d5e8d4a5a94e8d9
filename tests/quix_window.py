"""Quix Streams' own tumbling window on a real RocksDB store, driven without Kafka.

The first stage's window is the one piece of the pipeline whose behaviour is Quix's, not
ours: which windows a record closes, and in which order they come back. This harness runs
that code itself (`FixedTimeWindow.process_window` of the pinned Quix version, closing by
partition as the pipeline does) on a store partition of its own, and ends a checkpoint
(prepare and flush, as Quix's checkpoint does) wherever a test says. The order in which
closed windows come back depends on those checkpoints (see docs/two-stages.md), so tests of
the merge against this window see the orders the processor sees.

It builds Quix objects by their constructors and sets the closing strategy the way
`.final(closing_strategy="partition")` does, so it is pinned to Quix's version like the
pipeline's own uses of Quix internals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quixstreams.dataframe.windows.aggregations import Reduce
from quixstreams.dataframe.windows.time_based import (
    ClosingStrategy,
    FixedTimeWindowSingleAggregation,
)
from quixstreams.state.rocksdb.windowed.partition import WindowedRocksDBStorePartition
from quixstreams.state.rocksdb.windowed.transaction import WindowedRocksDBPartitionTransaction

from login_stream.aggregation import count_record, start_interval

KEY = b"all"


class QuixWindow:
    """One partition's tumbling window with the pipeline's reducer, closing by partition."""

    def __init__(self, path: Path, duration_ms: int, grace_ms: int) -> None:
        self._window = FixedTimeWindowSingleAggregation(
            aggregators={"value": Reduce(reducer=count_record, initializer=start_interval)},
            collectors={},
            duration_ms=duration_ms,
            grace_ms=grace_ms,
            name="login-interval",
            # Only used to build a dataframe chain, which this harness does not.
            dataframe=None,
        )
        self._window._closing_strategy = ClosingStrategy.PARTITION
        self._store = WindowedRocksDBStorePartition(str(path))
        self._transaction: WindowedRocksDBPartitionTransaction = self._store.begin()
        # Records Quix itself refused as late: the pipeline must never let one through.
        self.dropped = 0

    def process(self, record: dict[str, Any], timestamp_ms: int) -> list[dict[str, Any]]:
        """Put one record in the window; returns the windows it closed, in Quix's order."""
        before = self._window._on_expired_window

        def count_drop(*_args: Any, **_kwargs: Any) -> None:
            self.dropped += 1

        self._window._on_expired_window = count_drop  # type: ignore[method-assign]
        try:
            _updated, expired = self._window.process_window(
                record,
                KEY,
                timestamp_ms,
                None,
                self._transaction,  # type: ignore[arg-type]  # Quix's own annotation is narrower
            )
            return [result for _key, result in expired]
        finally:
            self._window._on_expired_window = before  # type: ignore[method-assign]

    def latest_time(self) -> int | None:
        """The latest record time the window has stored for the key, as the processor's
        placing step reads it (`quix_internals.window_time`)."""
        return self._transaction.as_state(prefix=KEY).get_latest_timestamp() or None

    def checkpoint(self) -> None:
        """End the current transaction as a Quix checkpoint does, and start the next."""
        self._transaction.prepare()
        self._transaction.flush()
        self._transaction = self._store.begin()

    def close(self) -> None:
        self._store.close()  # type: ignore[no-untyped-call]
