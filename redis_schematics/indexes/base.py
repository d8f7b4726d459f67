"""What every index kind shares: entries, atoms, and the hooks the engine calls.

An index turns one field value of one object into *entries* (plain data: "pk is a member
of SET k", "pk has score s in ZSET k", "token t is owned by pk in HASH k"). Writes diff
the entries of the stored object against those of the new one, so that only what changed
is written; ``check_indexes`` compares the entries implied by stored objects with what
Redis holds. A query condition becomes a *step*: a disjunction of *atoms*, each one
membership question to one index key (see ``scripts/run_query.lua``).

The engine never switches on the kind of an index: each kind (a subclass of
:class:`BaseIndex`, one file each) declares the name of its entries (``entry_kind``) and
atoms (``atom_kind``) and implements the hooks below: how its entries are written and
removed, how upkeep reads them back and recognises its keys, how the entries of objects
whose payload is gone are found, and which single command answers a lone atom. A kind is
found by those names (:func:`kind_of_entry`, :func:`kind_of_atom`); a name no kind
declared is a loud ``LookupError``, never a default. Adding a kind is a new file plus its
import in ``indexes/__init__.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from redis_schematics.io import Command, Flow, Scan
from redis_schematics.ops import Guard, Op

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


_BY_ENTRY: dict[str, type[BaseIndex]] = {}
_BY_ATOM: dict[str, type[BaseIndex]] = {}


def kind_of_entry(kind: str) -> type[BaseIndex]:
    """The index kind that writes entries of ``kind``.

    Raises:
        LookupError: no index kind declares it (a bug: never written as something else).
    """
    try:
        return _BY_ENTRY[kind]
    except KeyError:
        msg = f"no index kind writes entries of kind {kind!r} (known: {sorted(_BY_ENTRY)})"
        raise LookupError(msg) from None


def kind_of_atom(kind: str) -> type[BaseIndex]:
    """The index kind that answers atoms of ``kind``.

    Raises:
        LookupError: no index kind declares it.
    """
    try:
        return _BY_ATOM[kind]
    except KeyError:
        msg = f"no index kind answers atoms of kind {kind!r} (known: {sorted(_BY_ATOM)})"
        raise LookupError(msg) from None


@dataclass(frozen=True)
class BaseIndex:
    """Fields and hooks shared by the index kinds; a subclass sets the class variables
    and implements every hook (the defaults raise, so a forgotten one is loud)."""

    field: str
    kind: ClassVar[str] = ""
    #: lookup names this index can answer (walrus ``BaseIndex.operations`` in spirit)
    lookups: ClassVar[frozenset[str]] = frozenset()
    #: the ``Entry.kind`` of its entries, and the ``Atom.kind`` of its atoms
    entry_kind: ClassVar[str] = ""
    atom_kind: ClassVar[str] = ""
    #: Does an entry carry a score, so that one (key, member) with another score is a
    #: "wrong score" rather than a stale plus a missing entry?
    scored: ClassVar[bool] = False
    #: Does an entry claim a value for one owner (a unique claim)?
    claims: ClassVar[bool] = False
    keys: KeySpace | None = dataclasses.field(default=None, compare=False, repr=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, table in (("entry_kind", _BY_ENTRY), ("atom_kind", _BY_ATOM)):
            value = cls.__dict__.get(name)
            if value:
                if value in table and table[value] is not cls:
                    msg = f"{cls.__name__}.{name} {value!r} is already {table[value].__name__}'s"
                    raise TypeError(msg)
                table[value] = cls

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

    def refuses(self, field_type: Any) -> str | None:
        """Why this index cannot serve a field of ``field_type`` (a schematics type), or
        None when it can. Checked when the model class is created."""
        return None

    # -- what an object's value becomes, and what a condition asks -------------------------
    def entries(self, pk: str, value: Any) -> list[Entry]:
        """The entries of an object ``pk`` whose field holds ``value`` (normalized)."""
        raise NotImplementedError

    def step(self, condition: Condition) -> Step | None:
        """The step answering ``condition`` on this index, or None if it cannot."""
        raise NotImplementedError

    # -- writes (classmethods: they read only the entry) -----------------------------------
    @classmethod
    def add(cls, entry: Entry) -> tuple[list[Guard], list[Op]]:
        """Guards and operations writing ``entry``."""
        raise NotImplementedError

    @classmethod
    def remove(cls, entry: Entry) -> list[Op]:
        """Operations removing ``entry``."""
        raise NotImplementedError

    def entries_of_pk(self, pk: str) -> list[Entry]:
        """Entries of ``pk`` that can be removed without knowing its value (an unreadable
        payload): those whose key does not depend on the value."""
        return []

    # -- upkeep -----------------------------------------------------------------------------
    def stored_entries(self) -> Flow[list[Entry]]:
        """Every entry Redis holds for this index (SCAN-family reads, never blocking)."""
        raise NotImplementedError

    def owns(self, key: str) -> bool:
        """Is ``key`` a key of this index (for any value, also one created later)?"""
        raise NotImplementedError

    def orphans(self, pks: Sequence[str]) -> Flow[list[Entry]]:
        """The entries of ``pks`` found without their payloads (Redis expired them)."""
        raise NotImplementedError

    # -- direct reads of a lone atom (no script) --------------------------------------------
    @classmethod
    def count_command(cls, atom: Atom) -> Command:
        """One command whose reply counts the pks ``atom`` selects."""
        raise NotImplementedError

    @classmethod
    def members_scan(cls, atom: Atom, count: int) -> Scan | None:
        """A cursor read (pages of about ``count``, each a short command) listing the pks
        ``atom`` selects, when one exists; None: the query script lists them."""
        return None

    @classmethod
    def first_members(cls, atom: Atom, count: int) -> Command | None:
        """One short command listing at most ``count`` of the pks ``atom`` selects (all of
        them when fewer come back: see :meth:`members_of`); None: there is none."""
        return None

    @classmethod
    def members_of(cls, reply: Any) -> list[Any]:
        """The pks in the reply of :meth:`first_members`."""
        return list(reply)


__all__ = ["Atom", "BaseIndex", "Entry", "Step", "kind_of_atom", "kind_of_entry"]
