"""The Layout protocol: how one model's objects sit in Redis.

A layout stores and fetches payloads by pk and owns the codec between a primitive dict
and its payload. Everything else (pk inference, indexes, membership, expiry, queries) is
layout-independent and lives above it. A layout never talks to Redis itself: a read is a
request (``redis_schematics.io``) the engine sends, a write is operations and guards
(``redis_schematics.ops``) that ``scripts/apply_write.lua`` applies atomically together
with the index changes.

What differs between layouts is declared as capabilities (each a question), so the
engine never tests which layout it has:

* ``writes_fields``: can a write change some fields of a stored object and leave the
  others (``set(only=...)`` writes just those)? If not, a partial write rewrites the
  whole payload with those fields replaced;
* ``ttl_scope``: does Redis' own TTL expire each object's key ("object") or one key for
  the whole model ("model")? Visibility follows the members set either way;
* ``meta_keys()``: which keys under ``Prefix#`` does the layout itself own?
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from redis_schematics.io import Command, Flow, RunScript
from redis_schematics.keys import KeySpace
from redis_schematics.ops import Guard, Op

#: what a layout's ``read`` sends: one command or one script call
Read = Command | RunScript


class Layout(Protocol):
    """A storage strategy for payloads. Implementations: one file each in this package."""

    name: ClassVar[str]
    #: Can a write change some fields of a stored object and leave the others?
    writes_fields: ClassVar[bool]
    #: Does Redis' TTL expire each object's key ("object") or the model's keys ("model")?
    ttl_scope: ClassVar[str]

    @classmethod
    def for_model(
        cls, keys: KeySpace, model: Any, serializer: Callable[[Any], Any], deserializer: Callable[[Any], Any]
    ) -> Layout:
        """The layout of ``model`` (a schematics model class) under ``keys``, writing
        documents with ``serializer`` and reading them with ``deserializer``."""
        ...

    @property
    def keys(self) -> KeySpace:
        """The model's key space."""
        ...

    def object_key(self, pk: str) -> str:
        """The name users see as ``obj.key`` (a key, or a hash field)."""
        ...

    def read(self, pks: Sequence[str], fields: Sequence[str] | None = None) -> Read:
        """The request whose reply lists the payloads of ``pks`` in order (None where
        absent).

        ``fields`` (primitive names) asks for just those fields: a layout that stores
        fields apart then reads only them, and its payloads are *partial* (only
        ``decode(payload, fields)`` reads them; no guard compares them). A layout that
        stores one document per object ignores it and returns whole payloads.
        """
        ...

    def encode(self, primitive: Mapping[str, Any]) -> Any:
        """The payload of a whole object whose ``to_primitive()`` is ``primitive``."""
        ...

    def decode(self, payload: Any, fields: Sequence[str] | None = None) -> Any:
        """The primitive dict of a payload ``read`` returned; with ``fields``, of a
        partial read, just those keys. May return a non-dict for a corrupt payload."""
        ...

    def partial(self, payload: Any, names: Iterable[str]) -> Any:
        """The write of just the fields ``names`` (primitive names) out of the whole
        write ``payload`` (only asked when ``writes_fields``)."""
        ...

    def guard(self, pk: str, expected: Any, fields: Sequence[str] | None = None) -> Guard:
        """A guard asserting that the stored payload of ``pk`` is ``expected`` (None =
        absent); with ``fields`` (a partial write of a ``writes_fields`` layout), only
        that the object exists and those fields are as in ``expected``."""
        ...

    def put_ops(self, pk: str, payload: Any, ttl_ms: int | None) -> list[Op]:
        """Operations storing ``payload`` for ``pk`` (alive at least ``ttl_ms``)."""
        ...

    def delete_ops(self, pk: str) -> list[Op]:
        """Operations removing the payload of ``pk``."""
        ...

    def stored_pks(self, batch: int) -> Flow[list[str]]:
        """Every pk with a stored payload, found without the members set (SCAN/HSCAN,
        ``batch`` per page). Used to adopt data written by redis-schematics 0.3.x."""
        ...

    def meta_keys(self) -> tuple[str, ...]:
        """Keys under ``Prefix#`` the layout itself uses (``check_indexes`` keeps them)."""
        ...

    def legacy_objects(self) -> Flow[bool]:
        """Is any object stored the way redis-schematics 0.3.x stored it (so that the
        members set may not list every object)? False at once for what 0.3.x could not
        write (hash-tagged key spaces, the layouts it did not have). Asked once per
        model and Redis, when its ``Prefix#meta`` hash is created (``schema.py``)."""
        ...


@dataclass(frozen=True)
class DocumentLayout:
    """What the layouts storing one document per object (Simple, Hash) share: the
    payload is the model's ``__serializer__`` output, the guard compares it whole."""

    keys: KeySpace
    serializer: Callable[[Any], Any]
    deserializer: Callable[[Any], Any]
    writes_fields: ClassVar[bool] = False

    @classmethod
    def for_model(
        cls, keys: KeySpace, model: Any, serializer: Callable[[Any], Any], deserializer: Callable[[Any], Any]
    ) -> Any:
        return cls(keys, serializer, deserializer)

    def object_key(self, pk: str) -> str:
        return self.keys.object(pk)

    def encode(self, primitive: Mapping[str, Any]) -> Any:
        return self.serializer(primitive)

    def decode(self, payload: Any, fields: Sequence[str] | None = None) -> Any:
        data = self.deserializer(payload)
        if fields is None or not isinstance(data, dict):
            return data
        return {name: data[name] for name in fields if name in data}

    def partial(self, payload: Any, names: Iterable[str]) -> Any:  # pragma: no cover - never asked
        msg = f"{type(self).__name__} rewrites whole documents"
        raise NotImplementedError(msg)

    def meta_keys(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class Fields:
    """The write payload of a layout that stores fields apart: primitive field name ->
    stored text.

    ``None`` removes the stored field (the primitive has no such key). A whole write
    (``partial=False``) replaces the object: fields it does not name are removed. A
    partial write (``obj.set(only=...)``) touches the fields it names and nothing else.
    """

    values: Mapping[str, str | bytes | None]
    partial: bool = False

    def only(self, names: Iterable[str]) -> Fields:
        """The partial write of ``names`` (primitive names) out of this whole write."""
        return Fields({n: self.values.get(n) for n in names}, partial=True)
