"""The in-memory oracle: ``dict[pk, primitive]`` and its own reading of SPEC §1.

Nothing here calls redis_schematics: a query is answered by converting each value with
the schematics field's ``to_native`` and comparing in plain Python, so the library's
matching code (lookups.py, query.py, the Lua scripts) is checked, not reused.

Rules (SPEC §1): naive datetimes are UTC; ``None`` matches only ``=None`` and
``__in=[None, ...]`` and never a range; ``__not``/``__exclude`` are the exact negations
of ``=``/``__in``. Order: order fields with ``None`` first ascending (last descending),
then pk ascending.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

UTC = dt.timezone.utc


def comparable(field_type: Any, value: Any) -> Any:
    """A primitive or query value as the native the oracle compares (datetimes in UTC)."""
    if value is None:
        return None
    native = field_type.to_native(value)
    if isinstance(native, dt.datetime):
        if native.tzinfo is None or native.utcoffset() is None:
            return native.replace(tzinfo=UTC)
        return native.astimezone(UTC)
    return native


def _equal(actual: Any, value: Any) -> bool:
    if actual is None or value is None:
        return actual is None and value is None
    return bool(actual == value)


def holds(op: str, actual: Any, value: Any) -> bool:
    """Does a stored (comparable) value satisfy ``op value``?"""
    if op == "eq":
        return _equal(actual, value)
    if op == "not":
        return not _equal(actual, value)
    if op == "in":
        return any(_equal(actual, v) for v in value)
    if op == "exclude":
        return not any(_equal(actual, v) for v in value)
    if actual is None or value is None:
        return False
    if op == "gt":
        return bool(actual > value)
    if op == "gte":
        return bool(actual >= value)
    if op == "lt":
        return bool(actual < value)
    if op == "lte":
        return bool(actual <= value)
    raise AssertionError(op)


class Oracle:
    """What every model should hold: pk -> primitive (``to_primitive()`` of the object)."""

    def __init__(self, fields: Mapping[str, Any], unique: Sequence[str]) -> None:
        self.fields = fields  # schematics field instances, used for to_native only
        self.unique = tuple(unique)
        self.data: dict[str, dict[str, Any]] = {}

    def value(self, pk: str, name: str) -> Any:
        return comparable(self.fields[name], self.data[pk].get(name))

    # -- queries ------------------------------------------------------------------------
    def matches(self, conditions: Iterable[tuple[str, str, Any]]) -> list[str]:
        """pks satisfying every condition, sorted."""
        conds = []
        for name, op, raw in conditions:
            if op in ("in", "exclude"):
                value: Any = [comparable(self.fields[name], v) for v in raw]
            else:
                value = comparable(self.fields[name], raw)
            conds.append((name, op, value))
        return sorted(pk for pk in self.data if all(holds(op, self.value(pk, n), v) for n, op, v in conds))

    def ordered(self, pks: Iterable[str], order: Sequence[str]) -> list[str]:
        """``pks`` in the order of ``order_by(*order)``."""
        spec = [(o.lstrip("-"), o.startswith("-")) for o in order]

        def cmp(a: str, b: str) -> int:
            for name, desc in spec:
                x, y = self.value(a, name), self.value(b, name)
                if x is None and y is None:
                    c = 0
                elif x is None:
                    c = -1
                elif y is None:
                    c = 1
                else:
                    c = (x > y) - (x < y)
                if c:
                    return -c if desc else c
            return (a > b) - (a < b)

        return sorted(pks, key=functools.cmp_to_key(cmp))

    # -- writes -------------------------------------------------------------------------
    def violation(self, objs: Sequence[tuple[str, dict[str, Any]]]) -> bool:
        """Would storing ``objs`` (one atomic write, the last per pk wins) leave two
        objects with one value of a unique field? (A value may pass from one object to
        another within the write.)"""
        after = dict(self.data)
        after.update(objs)
        for name in self.unique:
            seen: set[Any] = set()
            for prim in after.values():
                v = comparable(self.fields[name], prim.get(name))
                if v is None:
                    continue
                if v in seen:
                    return True
                seen.add(v)
        return False
