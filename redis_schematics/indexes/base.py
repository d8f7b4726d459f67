"""What every index kind shares: entries, atoms and the Index protocol.

An index turns one field value of one object into *entries* (plain data: "pk is a member
of SET k", "pk has score s in ZSET k", "token t is owned by pk in HASH k"). Writes diff
the entries of the stored object against those of the new one, so that only what changed
is written; ``check_indexes`` compares the entries implied by stored objects with what
Redis holds. A query condition becomes a *step*: a disjunction of *atoms*, each one
membership question to one index key (see ``scripts/run_query.lua``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from redis_schematics.keys import KeySpace
    from redis_schematics.lookups import Condition


@dataclass(frozen=True)
class Entry:
    """One fact an index stores about one object.

    kind "set": ``member`` (a pk) is in SET ``key``;
    kind "zset": ``member`` (a pk) has ``score`` in ZSET ``key``;
    kind "unique": HASH ``key`` maps ``member`` (a value token) to ``owner`` (a pk).
    """

    kind: str
    key: str
    member: str
    score: float | None = None
    owner: str | None = None


@dataclass(frozen=True)
class Atom:
    """One membership question about a pk: in SET ``key`` ("S"), or score in [lo, hi] ("Z")."""

    kind: str
    key: str
    lo: str = ""
    hi: str = ""
    negated: bool = False


@dataclass(frozen=True)
class Step:
    """An indexed condition: true when any atom holds (then negated if ``negated``).

    ``exact`` is False when the index may let through rows that do not satisfy the
    condition (a bound a double cannot hold); rows are always re-checked, but an inexact
    step cannot be counted or paged on the server.
    """

    index: str
    condition: Condition
    atoms: tuple[Atom, ...]
    negated: bool = False
    exact: bool = True
    #: further conditions folded into this step (both bounds of one range)
    also: tuple[Condition, ...] = ()

    def describe(self) -> str:
        return " and ".join(str(c) for c in (self.condition, *self.also))


@dataclass(frozen=True)
class BaseIndex:
    """Fields and behaviour shared by the index kinds. Subclasses set ``kind``/``lookups``."""

    field: str
    kind: ClassVar[str] = ""
    #: lookup names this index can answer (walrus ``BaseIndex.operations`` in spirit)
    lookups: ClassVar[frozenset[str]] = frozenset()
    keys: KeySpace | None = dataclasses.field(default=None, compare=False, repr=False)

    def bound(self, keys: KeySpace) -> Any:
        """A copy of this index attached to a model's key space."""
        return type(self)(self.field, keys=keys)

    @property
    def ks(self) -> KeySpace:
        if self.keys is None:  # pragma: no cover - indexes are bound at class creation
            msg = f"{type(self).__name__}({self.field!r}) is not attached to a model"
            raise RuntimeError(msg)
        return self.keys

    def describe(self) -> str:
        return f"{type(self).__name__}({self.field!r})"
