"""UniqueIndex: value -> pk, refusing a second owner atomically."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from redis_schematics.indexes.base import Atom, BaseIndex, Entry, Step
from redis_schematics.io import Command, Flow, Scan
from redis_schematics.lookups import Condition
from redis_schematics.ops import Guard, Op
from redis_schematics.serializers import token
from redis_schematics.util import text

#: fields per HSCAN page
PAGE = 500


class UniqueIndex(BaseIndex):
    """A HASH ``User#unique:email`` mapping each value to the pk that owns it.

    A write whose value is owned by another pk fails with ``UniqueViolation`` and writes
    nothing (checked inside the write script). ``None`` is never claimed, so many objects
    may have ``None``. Serves ``=``, ``__in``, ``__not`` and ``__exclude`` (with a value).
    """

    kind: ClassVar[str] = "unique"
    lookups: ClassVar[frozenset[str]] = frozenset({"eq", "not", "in", "exclude"})
    entry_kind: ClassVar[str] = "unique"
    atom_kind: ClassVar[str] = "U"
    claims: ClassVar[bool] = True

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

    @classmethod
    def add(cls, entry: Entry) -> tuple[list[Guard], list[Op]]:
        # the claim is guarded: the value must be free or already ours
        guard = Guard("uniq", entry.key, entry.member, entry.owner)
        return [guard], [("HSET", entry.key, (entry.member, entry.owner))]

    @classmethod
    def remove(cls, entry: Entry) -> list[Op]:
        # released only while we still own it (another object may have taken it since)
        return [("UNIQ-", entry.key, (entry.member, entry.owner))]

    def stored_entries(self) -> Flow[list[Entry]]:
        pairs = yield from Scan("HSCAN", self.key, count=PAGE).items()
        return [Entry("unique", self.key, text(t), owner=text(owner)) for t, owner in pairs]

    def owns(self, key: str) -> bool:
        return key == self.key

    def orphans(self, pks: Sequence[str]) -> Flow[list[Entry]]:
        wanted = set(pks)
        claims = yield from self.stored_entries()
        return [e for e in claims if e.owner in wanted]

    @classmethod
    def count_command(cls, atom: Atom) -> Command:
        return Command(("HEXISTS", atom.key, atom.lo))

    @classmethod
    def first_members(cls, atom: Atom, count: int) -> Command | None:
        return Command(("HGET", atom.key, atom.lo))

    @classmethod
    def members_of(cls, reply: Any) -> list[Any]:
        return [] if reply is None else [reply]
