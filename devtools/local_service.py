"""What the local servers of tests and demos (`LocalBroker`, `LocalCluster`, `LocalPostgres`)
share: each is a context manager that starts on entry and stops on exit."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class LocalService(ABC):
    """`with service:` starts it and stops it again, also when its start fails part-way: a
    server that runs but never answered, or the first brokers of a cluster whose third did not
    start, would otherwise outlive the test that started them."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()
