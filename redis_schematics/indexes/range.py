"""RangeIndex: one Redis ZSET per field, scored by the value."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from schematics.types import DateTimeType, DateType, NumberType

from redis_schematics.exceptions import InvalidModel
from redis_schematics.indexes.base import Atom, BaseIndex, Entry, Step
from redis_schematics.io import Command, Flow, Scan
from redis_schematics.lookups import Condition
from redis_schematics.ops import Guard, Op
from redis_schematics.serializers import format_score, score, score_is_exact
from redis_schematics.util import text

#: members per ZSCAN page
PAGE = 500

_ALL = ("-inf", "+inf")
#: the field types a RangeIndex orders (and the default index kind of such fields)
RANGE_TYPES = (NumberType, DateType, DateTimeType)


class RangeIndex(BaseIndex):
    """A ZSET ``IceCream#range:best_before`` of pk -> score (see ``serializers.score``).

    Serves ``=``, ``__gt/__gte/__lt/__lte``, ``__in``, their negations and ``order_by``.
    ``None`` values are left out of the ZSET; ``field=None`` is "pk not in the ZSET".
    Values a double cannot hold exactly get inclusive bounds and are re-checked.
    """

    kind: ClassVar[str] = "range"
    lookups: ClassVar[frozenset[str]] = frozenset({"eq", "not", "in", "exclude", "gt", "gte", "lt", "lte"})
    entry_kind: ClassVar[str] = "zset"
    atom_kind: ClassVar[str] = "Z"
    scored: ClassVar[bool] = True

    @property
    def key(self) -> str:
        return self.ks.range(self.field)

    def refuses(self, field_type: Any) -> str | None:
        if isinstance(field_type, RANGE_TYPES):
            return None
        name = type(field_type).__name__
        return (
            f"RangeIndex cannot serve {self.field} ({name}); it needs a number, date or "
            "datetime field. Use EqualityIndex."
        )

    def entries(self, pk: str, value: Any) -> list[Entry]:
        if value is None:
            return []
        s = score(value)
        if math.isnan(s):
            msg = (
                f"{self.ks.prefix} {pk!r}: {self.field} is NaN, which a RangeIndex cannot "
                "order; nothing was written. Store None or a number."
            )
            raise InvalidModel(msg)
        return [Entry("zset", self.key, pk, s)]

    def _point(self, value: Any) -> tuple[Atom | None, bool]:
        """Atom for ``field == value`` and whether it is exact."""
        if value is None:
            return Atom("Z", self.key, *_ALL, negated=True), True
        s = score(value)
        if math.isnan(s):
            return None, True  # NaN equals nothing
        bound = format_score(s)
        return Atom("Z", self.key, bound, bound), score_is_exact(value)

    def _range(self, name: str, value: Any) -> tuple[Atom | None, bool]:
        if value is None or math.isnan(score(value)):
            return None, True  # nothing is greater or smaller than None (or NaN)
        exact = score_is_exact(value)
        bound = format_score(score(value))
        # A value a double cannot hold shares its score with neighbours: keep the bound
        # inclusive (a superset) and let the re-check decide.
        strict = "(" + bound if exact else bound
        lo, hi = {
            "gt": (strict, "+inf"),
            "gte": (bound, "+inf"),
            "lt": ("-inf", strict),
            "lte": ("-inf", bound),
        }[name]
        return Atom("Z", self.key, lo, hi), exact

    def step(self, condition: Condition) -> Step | None:
        name = condition.lookup.lookup_name
        if name not in self.lookups:
            return None
        if condition.lookup.ordered:
            atom, exact = self._range(name, condition.value)
            atoms: tuple[Atom, ...] = (atom,) if atom else ()
            return Step(self.describe(), condition, atoms, exact=exact)
        values = condition.value if condition.lookup.many else (condition.value,)
        points = [self._point(v) for v in values]
        exact = all(e for _, e in points)
        negated = condition.lookup.negates is not None
        # An inexact point catches a superset; excluding it on the server would drop the
        # neighbours sharing its score. Only exact points are excluded there; the re-check
        # removes the rows equal to an inexact one.
        atoms = tuple(dict.fromkeys(a for a, e in points if a is not None and (e or not negated)))
        return Step(self.describe(), condition, atoms, negated=negated, exact=exact)

    @classmethod
    def add(cls, entry: Entry) -> tuple[list[Guard], list[Op]]:
        return [], [("ZADD", entry.key, (entry.score, entry.member))]

    @classmethod
    def remove(cls, entry: Entry) -> list[Op]:
        return [("ZREM", entry.key, (entry.member,))]

    def entries_of_pk(self, pk: str) -> list[Entry]:
        return [Entry("zset", self.key, pk)]  # ZREM needs no score

    def stored_entries(self) -> Flow[list[Entry]]:
        pairs = yield from Scan("ZSCAN", self.key, count=PAGE).items()
        return [Entry("zset", self.key, text(pk), float(sc)) for pk, sc in pairs]

    def owns(self, key: str) -> bool:
        return key == self.key

    def orphans(self, pks: Sequence[str]) -> Flow[list[Entry]]:
        scores = yield Command(("ZMSCORE", self.key, *pks))
        return [
            Entry("zset", self.key, pk, float(s)) for pk, s in zip(pks, scores, strict=True) if s is not None
        ]

    @classmethod
    def count_command(cls, atom: Atom) -> Command:
        return Command(("ZCOUNT", atom.key, atom.lo, atom.hi))

    @classmethod
    def first_members(cls, atom: Atom, count: int) -> Command | None:
        return Command(("ZRANGE", atom.key, atom.lo, atom.hi, "BYSCORE", "LIMIT", 0, count))


def _bound(bound: str) -> tuple[float, bool]:
    """A ZRANGE bound as (value, exclusive)."""
    if bound.startswith("("):
        return float(bound[1:]), True
    return float(bound), False


def _text(value: float, exclusive: bool) -> str:
    return ("(" if exclusive else "") + format_score(value)


def merge_ranges(steps: list[Step]) -> Step:
    """One step for several range conditions on one RangeIndex: ``a <= x < b`` becomes a
    single ZRANGE window, so the server reads the window, not everything above ``a``."""
    first = steps[0]
    if any(not s.atoms for s in steps):  # one condition can never hold: nor can all
        return replace(first, atoms=(), also=tuple(s.condition for s in steps[1:]))
    lo, lo_x = -math.inf, False
    hi, hi_x = math.inf, False
    for step in steps:
        atom = step.atoms[0]
        v, x = _bound(atom.lo)
        if v > lo or (v == lo and x):
            lo, lo_x = v, x
        v, x = _bound(atom.hi)
        if v < hi or (v == hi and x):
            hi, hi_x = v, x
    atom = Atom("Z", first.atoms[0].key, _text(lo, lo_x), _text(hi, hi_x))
    exact = all(s.exact for s in steps)
    return replace(first, atoms=(atom,), exact=exact, also=tuple(s.condition for s in steps[1:]))
