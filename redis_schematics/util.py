"""Small helpers shared by several modules."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def text(value: Any) -> str:
    """A reply from a client with or without ``decode_responses`` as ``str``."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def unique(items: Iterable[T]) -> Iterator[T]:
    """``items`` without repeats (SCAN-family commands may return an element twice)."""
    seen: set[T] = set()
    for item in items:
        if item not in seen:
            seen.add(item)
            yield item
