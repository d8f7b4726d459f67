"""The Layout protocol: how one model's objects sit in Redis.

A layout only stores and fetches opaque payloads by pk. Everything else (pk inference,
serialization, indexes, membership, expiry, queries) is layout-independent and lives in
``redis_schematics.store``. A layout never talks to Redis on its own for writes: it
describes them as operations and guards that ``scripts/apply_write.lua`` applies
atomically together with the index changes.

Layouts that store each field apart (:class:`FieldLayout`) also own the codec between a
primitive dict and what they store, and allow partial writes (:class:`Fields`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from redis_schematics.keys import KeySpace

#: One write operation: (command, key, args) for ``apply_write.lua``.
Op = tuple[str, str, tuple[Any, ...]]


@dataclass(frozen=True)
class Guard:
    """A condition ``apply_write.lua`` checks before writing anything.

    kind "get"/"hget": the stored payload is still ``expected`` (None = absent);
    kind "hash": the state of the object hash ``key`` is still ``expected``; or, when
    ``field`` lists hash field names (cells), just the cells of those fields;
    kind "cols": the state of a pk in the column hashes ``key`` + ``more_keys`` is still
    ``expected``; ``field`` lists the pk, then the numbers of the columns compared when
    not all of them (states and cells: see :class:`FieldLayout`);
    kind "uniq": HASH ``key`` field ``field`` is free or owned by ``expected``;
    kind "dead": pk ``field`` in members ZSET ``key`` is (still) past its deadline.
    """

    kind: str
    key: str
    field: str = ""
    expected: Any = None
    #: further keys the check reads (kind "cols")
    more_keys: tuple[str, ...] = ()


class Layout(Protocol):
    """A storage strategy for payloads. Implementations: one file each in this package."""

    name: ClassVar[str]

    def __init__(self, keys: KeySpace) -> None: ...

    @property
    def keys(self) -> KeySpace:
        """The model's key space."""
        ...

    def object_key(self, pk: str) -> str:
        """The name users see as ``obj.key`` (a key, or a hash field)."""
        ...

    def read(self, target: Any, pks: Sequence[str], fields: Sequence[str] | None = None) -> Any:
        """Send one command to ``target`` (a client, or a pipeline that queues it) whose
        reply lists the payloads of ``pks`` in order (None where absent).

        ``fields`` (primitive names) asks for just those fields: a layout that stores
        fields apart then reads only them, and its payloads are *partial* (only
        ``decode(payload, fields)`` reads them; no guard compares them). A layout that
        stores one document per object ignores it and returns whole payloads.
        """
        ...

    def guard(self, pk: str, expected: Any) -> Guard:
        """A guard asserting that the stored payload of ``pk`` is ``expected``."""
        ...

    def put_ops(self, pk: str, payload: Any, ttl_ms: int | None) -> list[Op]:
        """Operations storing ``payload`` for ``pk`` (alive at least ``ttl_ms``)."""
        ...

    def delete_ops(self, pk: str) -> list[Op]:
        """Operations removing the payload of ``pk``."""
        ...

    def stored_pks(self, client: Any, batch: int) -> Iterator[list[str]]:
        """Every pk with a stored payload, found without the members set (SCAN/HSCAN).

        Used by ``rebuild_indexes`` to adopt data written by redis-schematics 0.3.x.
        """
        ...


@dataclass(frozen=True)
class Fields:
    """The write payload of a :class:`FieldLayout`: primitive field name -> stored text.

    ``None`` removes the stored field (the primitive has no such key). A whole write
    (``partial=False``) replaces the object: fields it does not name are removed. A
    partial write (``obj.set(only=...)``) touches the fields it names and nothing else.
    """

    values: Mapping[str, str | bytes | None]
    partial: bool = False

    def only(self, names: Iterable[str]) -> Fields:
        """The partial write of ``names`` (primitive names) out of this whole write."""
        return Fields({n: self.values.get(n) for n in names}, partial=True)


class FieldLayout(Layout, Protocol):
    """A layout that stores each field apart (a hash field or a hash per field).

    It owns the codec: ``encode`` turns a primitive dict into :class:`Fields` for
    ``put_ops``, ``decode`` turns what ``read`` returned back into a primitive dict.
    ``read`` returns, for each pk, the object's *state*: one string that
    ``apply_write.lua`` recomputes for its "hash"/"cols" guard, so a payload is still
    one opaque value compared by a guard, and a failed guard reports the current state
    exactly as ``read`` would. A state is a run of *cells*, ``<byte length>:<bytes>``
    or ``-`` for no value: the (field, value) pairs of a hash sorted by field, or one
    cell per column.

    A partial write guards only the fields it writes (``guard(..., fields=...)``), so
    writers of different fields of one object never make each other retry.
    """

    @classmethod
    def for_model(cls, keys: KeySpace, model: Any) -> FieldLayout:
        """The layout of ``model`` (a schematics model class) under ``keys``."""
        ...

    def encode(self, primitive: Mapping[str, Any]) -> Fields:
        """The whole write of an object whose ``to_primitive()`` is ``primitive``."""
        ...

    def decode(self, payload: Any, fields: Sequence[str] | None = None) -> dict[str, Any]:
        """The primitive dict of a state returned by ``read`` (bytes or str); with
        ``fields``, of a partial state that ``read(..., fields)`` returned."""
        ...

    def guard(self, pk: str, expected: Any, fields: Sequence[str] | None = None) -> Guard:
        """A guard asserting that the stored state of ``pk`` is ``expected`` (a state or
        None); with ``fields`` (primitive names), only that the object exists and those
        fields are as in ``expected``."""
        ...

    def meta_keys(self) -> tuple[str, ...]:
        """Keys under ``Prefix#`` the layout itself uses (``check_indexes`` keeps them)."""
        ...
