"""Quix's `State`, as far as the pipeline's plain steps use it, on a dict."""

from __future__ import annotations

from typing import Any


class DictState:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value
