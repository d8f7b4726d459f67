"""The Layout protocol: how one model's objects sit in Redis.

A layout only stores and fetches opaque payloads by pk. Everything else (pk inference,
serialization, indexes, membership, expiry, queries) is layout-independent and lives in
``redis_schematics.store``. A layout never talks to Redis on its own for writes: it
describes them as operations and guards that ``scripts/apply_write.lua`` applies
atomically together with the index changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from redis_schematics.keys import KeySpace

#: One write operation: (command, key, args) for ``apply_write.lua``.
Op = tuple[str, str, tuple[Any, ...]]


@dataclass(frozen=True)
class Guard:
    """A condition ``apply_write.lua`` checks before writing anything.

    kind "get"/"hget": the stored payload is still ``expected`` (None = absent);
    kind "uniq": HASH ``key`` field ``field`` is free or owned by ``expected``;
    kind "dead": pk ``field`` in members ZSET ``key`` is (still) past its deadline.
    """

    kind: str
    key: str
    field: str = ""
    expected: Any = None


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

    def read(self, target: Any, pks: Sequence[str]) -> Any:
        """Send one command to ``target`` (a client, or a pipeline that queues it) whose
        reply lists the payloads of ``pks`` in order (None where absent)."""
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
