"""EqualityIndex: one Redis SET of pks per (field, value)."""

from __future__ import annotations

from typing import Any, ClassVar

from redis_schematics.indexes.base import Atom, BaseIndex, Entry, Step
from redis_schematics.lookups import Condition
from redis_schematics.serializers import token


class EqualityIndex(BaseIndex):
    """A SET per value, e.g. ``IceCream#eq:flavour:vanilla`` = {pk, ...}.

    ``None`` has its own SET, so ``field=None`` is indexed too. Serves ``=``, ``__in``,
    ``__not`` and ``__exclude``. Memory: one set member per object.
    """

    kind: ClassVar[str] = "equality"
    lookups: ClassVar[frozenset[str]] = frozenset({"eq", "not", "in", "exclude"})

    def key_for(self, value: Any) -> str:
        return self.ks.equality(self.field, None if value is None else token(value))

    def entries(self, pk: str, value: Any) -> list[Entry]:
        return [Entry("set", self.key_for(value), pk)]

    def step(self, condition: Condition) -> Step | None:
        name = condition.lookup.lookup_name
        if name not in self.lookups:
            return None
        values = condition.value if condition.lookup.many else (condition.value,)
        atoms = tuple(Atom("S", self.key_for(v)) for v in dict.fromkeys(values))
        return Step(self.describe(), condition, atoms, negated=condition.lookup.negates is not None)
