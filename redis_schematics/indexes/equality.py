"""EqualityIndex: one Redis SET of pks per (field, value)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from redis_schematics.indexes.base import Atom, BaseIndex, Entry, Step
from redis_schematics.io import Command, Flow, Scan
from redis_schematics.lookups import Condition
from redis_schematics.ops import Guard, Op
from redis_schematics.serializers import token
from redis_schematics.util import text

#: keys per SCAN page, members per SSCAN page
PAGE = 500


class EqualityIndex(BaseIndex):
    """A SET per value, e.g. ``IceCream#eq:flavour:vanilla`` = {pk, ...}.

    ``None`` has its own SET, so ``field=None`` is indexed too. Serves ``=``, ``__in``,
    ``__not`` and ``__exclude``. Memory: one set member per object.
    """

    kind: ClassVar[str] = "equality"
    lookups: ClassVar[frozenset[str]] = frozenset({"eq", "not", "in", "exclude"})
    entry_kind: ClassVar[str] = "set"
    atom_kind: ClassVar[str] = "S"

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

    @classmethod
    def add(cls, entry: Entry) -> tuple[list[Guard], list[Op]]:
        return [], [("SADD", entry.key, (entry.member,))]

    @classmethod
    def remove(cls, entry: Entry) -> list[Op]:
        return [("SREM", entry.key, (entry.member,))]

    def _value_keys(self) -> Scan:
        return Scan("SCAN", match=self.ks.equality_pattern(self.field), count=PAGE)

    def stored_entries(self) -> Flow[list[Entry]]:
        found: list[Entry] = []
        for key in (yield from self._value_keys().items()):
            name = text(key)
            for pk in (yield from Scan("SSCAN", name, count=PAGE).items()):
                found.append(Entry("set", name, text(pk)))
        return found

    def owns(self, key: str) -> bool:
        # by name, not by having been seen: a key a writer created after a SCAN is live
        return key.startswith(self.ks.equality(self.field, "")) or key == self.ks.equality(self.field, None)

    def orphans(self, pks: Sequence[str]) -> Flow[list[Entry]]:
        found: list[Entry] = []
        for key in (yield from self._value_keys().items()):
            flags = yield Command(("SMISMEMBER", key, *pks))
            found += [Entry("set", text(key), pk) for pk, flag in zip(pks, flags, strict=True) if flag]
        return found

    @classmethod
    def count_command(cls, atom: Atom) -> Command:
        return Command(("SCARD", atom.key))

    @classmethod
    def members_scan(cls, atom: Atom, count: int) -> Scan | None:
        return Scan("SSCAN", atom.key, count=count)
