"""UniqueIndex: value -> pk, refusing a second owner atomically."""

from __future__ import annotations

from typing import Any, ClassVar

from redis_schematics.indexes.base import Atom, BaseIndex, Entry, Step
from redis_schematics.lookups import Condition
from redis_schematics.serializers import token


class UniqueIndex(BaseIndex):
    """A HASH ``User#unique:email`` mapping each value to the pk that owns it.

    A write whose value is owned by another pk fails with ``UniqueViolation`` and writes
    nothing (checked inside the write script). ``None`` is never claimed, so many objects
    may have ``None``. Serves ``=``, ``__in``, ``__not`` and ``__exclude`` (with a value).
    """

    kind: ClassVar[str] = "unique"
    lookups: ClassVar[frozenset[str]] = frozenset({"eq", "not", "in", "exclude"})

    @property
    def key(self) -> str:
        return self.ks.unique(self.field)

    def entries(self, pk: str, value: Any) -> list[Entry]:
        if value is None:
            return []
        return [Entry("unique", self.key, token(value), owner=pk)]

    def step(self, condition: Condition) -> Step | None:
        name = condition.lookup.lookup_name
        values = condition.value if condition.lookup.many else (condition.value,)
        if name not in self.lookups or any(v is None for v in values):
            return None  # None is not claimed: another index or the scan answers it
        atoms = tuple(Atom("U", self.key, token(v)) for v in dict.fromkeys(values))
        return Step(self.describe(), condition, atoms, negated=condition.lookup.negates is not None)
