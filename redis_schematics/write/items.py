"""The objects of a write: :class:`Item`, the :class:`Owner` protocol it refers to, and
:func:`diff`, the guards and operations turning one set of index entries into another."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from redis_schematics.indexes import Entry, kind_of_entry
from redis_schematics.io import AsyncDriver, Flow, SyncDriver
from redis_schematics.keys import KeySpace
from redis_schematics.ops import Guard, Op
from redis_schematics.records import Merge, Records

if TYPE_CHECKING:
    from redis_schematics.exceptions import UniqueViolation
    from redis_schematics.schema import Schema
    from redis_schematics.write.batch import Batch


class Owner(Protocol):
    """What a write needs of the model an item belongs to (the engine provides it)."""

    name: str
    expiring: bool
    records: Records
    keys: KeySpace
    #: what Redis holds complete for the model (``Prefix#meta``)
    schema: Schema

    def read(self, pks: Sequence[str], fields: Sequence[str] | None = None) -> Flow[list[tuple[Any, bool]]]:
        """Stored payloads of ``pks`` and whether each is alive."""
        ...

    def purge_pks(self, pks: Sequence[str]) -> Flow[int]:
        """Remove those of ``pks`` past their deadline; how many went."""
        ...

    def add_to(self, batch: Batch, item: Item) -> None:
        """Add the guards and operations of ``item`` to ``batch``."""
        ...

    def sync(self) -> SyncDriver:
        """The driver of the model's sync client."""
        ...

    def aio(self) -> AsyncDriver:
        """The driver of the model's async client."""
        ...

    def unique_violation(self, item: Item, guard: Guard, owner: Any) -> UniqueViolation:
        """The error for ``item`` claiming a value ``owner`` holds."""
        ...


@dataclass
class Item:
    """One object in a write: what is stored now (``expected``) and what should be."""

    owner: Owner  # the model it belongs to (a transaction mixes models)
    pk: str
    payload: Any  # new payload; None = delete
    entries: frozenset[Entry] = frozenset()
    expected: Any = None  # stored payload as last read; None = absent
    old: frozenset[Entry] = frozenset()
    extra: tuple[Guard, ...] = ()
    dropped: bool = False  # left alone: renewed (purge) or no longer matching (delete)
    alive: bool = True  # visible when read (not past its deadline)
    keep_if: Callable[[Any], bool] | None = None  # deletes: re-check a changed object
    #: partial writes (``set(only=...)``): what to write given what is stored
    merge: Merge | None = None
    #: the fields the guard compares (a partial write of a layout storing fields apart)
    guarded: tuple[str, ...] | None = None

    def saw(self, payload: Any) -> None:
        """Record that ``payload`` (None: nothing) is what is stored now."""
        self.expected = payload
        self.old = self.owner.records.stored_entries(self.pk, payload)
        self.alive = payload is not None


def diff(old: frozenset[Entry], new: frozenset[Entry]) -> tuple[list[Guard], list[Op]]:
    """Guards and operations that turn index entries ``old`` into ``new`` (each kind
    writes its own entries: ``BaseIndex.add`` / ``remove``)."""
    guards: list[Guard] = []
    ops: list[Op] = []
    for e in new - old:
        g, o = kind_of_entry(e.kind).add(e)
        guards += g
        ops += o
    kept = {(e.kind, e.key, e.member) for e in new}
    for e in old - new:
        if (e.kind, e.key, e.member) in kept:
            continue  # a zset score or unique owner overwritten above
        ops += kind_of_entry(e.kind).remove(e)
    return guards, ops
