"""The layout-independent engine behind every model method.

A :class:`Store` is built once per model class from its dunder settings. It owns the key
space, the layout, the bound indexes and the (de)serializer, and implements reads,
atomic writes (object + membership + index entries, one ``apply_write.lua`` call),
expiry clean-up and index upkeep. Models and queries call it; nothing here knows which
layout is in use.

Expiry: a model with ``__expire__`` keeps, in its members ZSET, each object's deadline
(server time). An object past its deadline is never returned or counted, whatever the
layout. Its payload stays (up to one more ``__expire__``, when the model has indexes)
so that its index entries can be found and removed: lazily when a query meets it, or
by :meth:`Store.purge_expired`. Every key a write touches lives at least as long as the
objects it lists, so an idle model disappears from Redis on its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import random
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, cast

from redis.commands.core import Script
from schematics.exceptions import BaseError
from schematics.types import BaseType, DateTimeType, DateType, NumberType, StringType

from redis_schematics import serializers
from redis_schematics.exceptions import (
    ConcurrentModification,
    ConfigurationError,
    CorruptPayload,
    InvalidModel,
    InvalidPrimaryKey,
    NotFound,
    PartiallyLoaded,
    UniqueViolation,
    UnknownField,
    WriteConflict,
)
from redis_schematics.hydration import dumper_for, loader_for, snapshot, value_in
from redis_schematics.indexes import (
    BaseIndex,
    Entry,
    EqualityIndex,
    Index,
    RangeIndex,
    UniqueIndex,
)
from redis_schematics.keys import KeySpace
from redis_schematics.layouts.base import FieldLayout, Fields, Guard, Layout, Op
from redis_schematics.lookups import COMPOUND_TYPES
from redis_schematics.util import batched, chunked, text, unique
from redis_schematics.validation import compile_validator

#: objects per script call / per MGET when loading or writing many
CHUNK = 500
#: attempts of one compare-and-set write before WriteConflict. From the third on, each
#: waits a jittered 0-50 ms and re-reads the objects (see commit), so a writer gives up
#: after ~1 s (at most ~2.2 s) of losing every attempt. 20 attempts without the re-read
#: were not enough for 8 threads hammering 40 keys on a loaded 2-core machine
#: (tests/integration/test_concurrency.py; with both, the worst write took 8 attempts)
MAX_ATTEMPTS = 50
#: what apply_write.lua reads as "absent" in a guard
ABSENT = "\0"
#: the instance attribute naming the fields an ``only=`` read loaded (absent: all of them)
LOADED = "_rs_loaded"
#: a key missing from a primitive dict
_ABSENT_KEY = object()
RANGE_TYPES = (NumberType, DateType, DateTimeType)

_SOURCES: dict[str, str] = {}
_SCRIPTS: weakref.WeakKeyDictionary[Any, dict[str, Script]] = weakref.WeakKeyDictionary()


def script(client: Any, name: str) -> Script:
    """The registered ``scripts/<name>.lua`` for ``client`` (EVALSHA, loaded on demand)."""
    try:
        per_client = _SCRIPTS[client]
    except (KeyError, TypeError):
        per_client = {}
        # a client that refuses weak references just registers its scripts every time
        with contextlib.suppress(TypeError):
            _SCRIPTS[client] = per_client
    found = per_client.get(name)
    if found is None:
        if name not in _SOURCES:
            files = resources.files("redis_schematics") / "scripts" / f"{name}.lua"
            _SOURCES[name] = files.read_text(encoding="utf-8")
        found = per_client[name] = client.register_script(_SOURCES[name])
    return found


_PREFIXES: weakref.WeakValueDictionary[str, type] = weakref.WeakValueDictionary()


def _claim_prefix(model: type, prefix: str) -> None:
    """Refuse a prefix that is another live model's prefix followed by ':' (or the reverse).

    Object keys are ``Prefix:pk``, so ``Shop`` and ``Shop:Order`` would share keys: an
    order would also be a shop whose pk starts with "Order:".
    """
    for other, other_model in list(_PREFIXES.items()):
        if other != prefix and (other.startswith(prefix + ":") or prefix.startswith(other + ":")):
            msg = (
                f"{model.__name__}.__prefix__ {prefix!r} would share keys with {other_model.__name__} "
                f"(prefix {other!r}): objects of one would be read as objects of the other. Choose "
                "prefixes where neither is the other followed by ':'."
            )
            raise ConfigurationError(msg)
    _PREFIXES[prefix] = model


def resolve_indexes(model: str, fields: dict[str, Any], spec: Any, keys: KeySpace) -> tuple[Index, ...]:
    """Check ``__indexes__`` and bind each index to the model's key space."""
    if spec is None:
        return ()
    if isinstance(spec, str | BaseIndex):
        spec = (spec,)
    found: list[Index] = []
    for item in spec:
        if isinstance(item, str):
            if item not in fields:
                msg = f"{model}.__indexes__ names {item!r}, which is not a field of {model}."
                raise ConfigurationError(msg)
            cls: type[Index] = RangeIndex if isinstance(fields[item], RANGE_TYPES) else EqualityIndex
            index: Index = cls(item)
        elif isinstance(item, EqualityIndex | RangeIndex | UniqueIndex):
            index = item
        else:
            msg = (
                f"{model}.__indexes__ holds {item!r}; use field names or "
                "EqualityIndex/RangeIndex/UniqueIndex objects."
            )
            raise ConfigurationError(msg)
        if index.field not in fields:
            msg = f"{model}.__indexes__: {index.describe()} names no field of {model}."
            raise ConfigurationError(msg)
        field_type = fields[index.field]
        type_name = type(field_type).__name__
        if isinstance(field_type, COMPOUND_TYPES):
            msg = f"{model}.{index.field} is a {type_name}; list, dict and model fields cannot be indexed."
            raise ConfigurationError(msg)
        if isinstance(index, RangeIndex) and not isinstance(field_type, RANGE_TYPES):
            msg = (
                f"{model}.__indexes__: RangeIndex cannot serve {index.field} ({type_name}); "
                "it needs a number, date or datetime field. Use EqualityIndex."
            )
            raise ConfigurationError(msg)
        if any(type(other) is type(index) and other.field == index.field for other in found):
            msg = f"{model}.__indexes__ declares {index.describe()} twice."
            raise ConfigurationError(msg)
        found.append(index.bound(keys))
    return tuple(found)


@dataclass(frozen=True)
class Projection:
    """The fields a partial read loads: ``names`` (field names, as marked on the loaded
    objects) and ``primitive``, the stored names read, in the model's field order."""

    names: frozenset[str]
    primitive: tuple[str, ...]


@dataclass
class _Item:
    """One object in a write: what is stored now (``expected``) and what should be."""

    pk: str
    payload: Any  # new payload; None = delete
    entries: frozenset[Entry]
    expected: Any = None  # stored payload as last read; None = absent
    old: frozenset[Entry] = frozenset()
    extra: tuple[Guard, ...] = ()
    dropped: bool = False  # left alone: renewed (purge) or no longer matching (delete)
    alive: bool = True  # visible when read (not past its deadline)
    keep_if: Callable[[Any], bool] | None = None  # deletes: re-check a changed object
    store: Store | None = None  # the model it belongs to (a transaction mixes models)
    #: partial writes (``set(only=...)``): (payload, entries) given what is stored
    merge: Callable[[_Item], tuple[Any, frozenset[Entry]]] | None = None

    @property
    def owner(self) -> Store:
        assert self.store is not None, "an _Item is always made by a Store"
        return self.store


@dataclass
class _Batch:
    """Arguments of one ``apply_write.lua`` call."""

    keys: list[str] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)
    guard_args: list[Any] = field(default_factory=list)
    #: operations, with the position of their key in ``keys``
    ops: list[tuple[str, int, tuple[Any, ...]]] = field(default_factory=list)
    guards: list[tuple[_Item, Guard]] = field(default_factory=list)
    #: unique values another object of this call gives up: (hash key, token) -> its pk
    releases: dict[tuple[str, str], str] = field(default_factory=dict)

    def pos(self, key: str) -> int:
        if key not in self.positions:
            self.keys.append(key)
            self.positions[key] = len(self.keys)
        return self.positions[key]

    def guard(self, item: _Item, g: Guard) -> None:
        expected = ABSENT if g.expected is None else g.expected
        if g.kind == "uniq" and (g.key, g.field) in self.releases:
            # Claiming a value another object of this call releases: at check time that
            # object owns it (its own guard pins its stored state); the conditional
            # release (UNIQ-) and the claim (HSET) then apply in either order.
            expected = self.releases[(g.key, g.field)]
        where: Any = self.pos(g.key)
        if g.more_keys:  # "p1,p2,...": a guard reading several keys (layouts/base.py)
            where = ",".join(str(self.pos(k)) for k in (g.key, *g.more_keys))
        self.guard_args += [g.kind, where, g.field, expected]
        self.guards.append((item, g))

    def op(self, op: Op) -> None:
        cmd, key, args = op
        self.ops.append((cmd, self.pos(key), args))

    @property
    def n_ops(self) -> int:
        return len(self.ops)

    def _merged(self) -> list[tuple[str, int, tuple[Any, ...]]]:
        """The operations, with those of one command on one key that add or remove one
        member (field) each merged into one command (``SADD k a b ...``), placed where
        the first of them was: far fewer arguments and calls for a batch of objects.

        Only when no (key, member) is touched twice: then these operations commute with
        each other, and the merged one still runs after what came before its first part
        (e.g. after the object's DEL) and before what an object does after its own part
        (e.g. EXTEND of that key)."""
        seen: set[tuple[int, Any]] = set()
        out: list[tuple[str, int, Any]] = []  # a merged operation holds a list, filled below
        groups: dict[tuple[str, int], list[Any]] = {}
        for op in self.ops:
            cmd, pos, args = op
            shape = _MERGEABLE.get(cmd)
            if shape is None or len(args) != shape[0]:
                out.append(op)
                continue
            touched = (pos, args[shape[1]])
            if touched in seen:
                return self.ops
            seen.add(touched)
            group = groups.get((cmd, pos))
            if group is None or len(group) >= MERGE_ARGS:
                group = groups[(cmd, pos)] = []
                out.append((cmd, pos, group))
            group += args
        return [(cmd, pos, tuple(args)) for cmd, pos, args in out]

    def argv(self, strict: bool, once: str | None = None) -> list[Any]:
        """ARGV for ``apply_write.lua``; ``once`` names a token key making the call
        idempotent (a resend of an applied call returns 1 and writes nothing)."""
        ops = self._merged()
        head = ["1" if strict else "0", "" if once is None else self.pos(once), len(self.guards)]
        return [
            *head,
            *self.guard_args,
            len(ops),
            *(x for op in ops for x in (op[0], op[1], len(op[2]), *op[2])),
        ]


#: commands whose one-member operations ``_Batch`` merges: command -> (argc, member index)
_MERGEABLE = {"SADD": (1, 0), "SREM": (1, 0), "ZREM": (1, 0), "HDEL": (1, 0), "ZADD": (2, 1), "HSET": (2, 0)}
#: at most this many arguments in one merged operation (apply_write.lua unpacks them)
MERGE_ARGS = 1000


def _diff(old: frozenset[Entry], new: frozenset[Entry]) -> tuple[list[Guard], list[Op]]:
    """Guards and operations that turn index entries ``old`` into ``new``."""
    guards: list[Guard] = []
    ops: list[Op] = []
    for e in new - old:
        if e.kind == "set":
            ops.append(("SADD", e.key, (e.member,)))
        elif e.kind == "zset":
            ops.append(("ZADD", e.key, (e.score, e.member)))
        else:
            guards.append(Guard("uniq", e.key, e.member, e.owner))
            ops.append(("HSET", e.key, (e.member, e.owner)))
    kept = {(e.kind, e.key, e.member) for e in new}
    for e in old - new:
        if (e.kind, e.key, e.member) in kept:
            continue  # a zset score or unique owner overwritten above
        if e.kind == "set":
            ops.append(("SREM", e.key, (e.member,)))
        elif e.kind == "zset":
            ops.append(("ZREM", e.key, (e.member,)))
        else:
            ops.append(("UNIQ-", e.key, (e.member, e.owner)))
    return guards, ops


class Store:
    """Everything redis-schematics does for one model class."""

    def __init__(self, model: type, layout_class: Callable[[KeySpace], Layout]) -> None:
        self.model = model
        self.name = model.__name__
        self.fields: dict[str, BaseType] = dict(model.fields)  # type: ignore[attr-defined]
        prefix = model.__dict__.get("__prefix__", None)
        if prefix is None:
            prefix = getattr(model, "__prefix__", None)
        if not isinstance(prefix, str):  # the original declared it as a property
            prefix = self.name
        try:
            self.keys = KeySpace(prefix)
        except ConfigurationError as exc:
            msg = f"{self.name}: {exc}"
            raise ConfigurationError(msg) from exc
        _claim_prefix(model, prefix)
        # A FieldLayout needs the model's fields and owns the payload codec.
        make = getattr(layout_class, "for_model", None)
        self.layout: Layout = layout_class(self.keys) if make is None else make(self.keys, model)
        self.codec: FieldLayout | None = None if make is None else cast("FieldLayout", self.layout)
        expire = getattr(model, "__expire__", None)
        if expire is not None and (not isinstance(expire, int | float) or expire <= 0):
            msg = f"{self.name}.__expire__ must be a positive number of seconds or None, not {expire!r}."
            raise ConfigurationError(msg)
        self.ttl_ms: int | None = None if expire is None else max(1, int(expire * 1000))
        together = getattr(model, "__unique_together__", None) or getattr(model, "__unique_args__", None)
        if isinstance(together, str):
            together = (together,)
        self.unique_together: tuple[str, ...] = tuple(together or ())
        for name in self.unique_together:
            if name not in self.fields:
                msg = f"{self.name}.__unique_together__ names {name!r}, which is not a field."
                raise ConfigurationError(msg)
        self.strict = bool(getattr(model, "__strict_performance__", False))
        self.indexes = resolve_indexes(self.name, self.fields, getattr(model, "__indexes__", None), self.keys)
        self.indexed_fields = tuple(dict.fromkeys(i.field for i in self.indexes))
        self.primitive_names = {name: (f.serialized_name or name) for name, f in self.fields.items()}
        self._deserializer = model.__deserializer__  # type: ignore[attr-defined]
        if self._deserializer is serializers.loads:
            self._deserializer = serializers.LOADS  # what it calls: one Python call less per object
        #: primitive dict -> instance, exactly as schematics would build it, but faster
        self.loader = loader_for(model)
        self.date_fields = tuple(n for n, f in self.fields.items() if isinstance(f, DateType | DateTimeType))
        #: instance -> primitive dict, byte-for-byte what to_primitive() gives, but faster
        self.dumper = dumper_for(model)
        #: obj.validate() for objects that already hold valid native values, much faster;
        #: False (untouched) otherwise, then schematics validates (validation.py)
        self.fast_validate = compile_validator(model)
        #: where pk_of() finds the pk: (primitive name, plain string field?) of pk, id
        self._pk_sources = tuple(
            (self.primitive_names[n], type(f).to_native is StringType.to_native)
            for n in ("pk", "id")
            if (f := self.fields.get(n)) is not None
        )
        #: partial reads already resolved: (only, also) -> Projection (see ``projection``)
        self._projections: dict[tuple[tuple[str, ...], tuple[str, ...]], Projection | None] = {}
        # An object past its deadline keeps its payload one more period when indexes need it.
        self.physical_ms: int | None = (
            None if self.ttl_ms is None else self.ttl_ms * (2 if self.indexes else 1)
        )

    # -- settings read at call time ------------------------------------------------------
    @property
    def expiring(self) -> bool:
        return self.ttl_ms is not None

    @property
    def client(self) -> Any:
        client = getattr(self.model, "__redis_client__", None)
        if client is None:
            msg = (
                f"{self.name}.__redis_client__ is not set; assign a redis.Redis (or fakeredis) client to it."
            )
            raise ConfigurationError(msg)
        return client

    def serialize(self, primitive: Any) -> Any:
        if self.codec is not None:
            return self.codec.encode(primitive)
        return self.model.__serializer__(primitive)  # type: ignore[attr-defined]

    def deserialize(self, payload: Any, fields: Sequence[str] | None = None) -> Any:
        """The primitive dict of a payload; ``fields`` (primitive names): of a partial
        read, keeping just those keys."""
        if self.codec is not None:
            return self.codec.decode(payload, fields)
        data = self._deserializer(payload)
        if fields is None or not isinstance(data, dict):
            return data
        return {name: data[name] for name in fields if name in data}

    # -- primary keys -------------------------------------------------------------------
    def pk_text(self, name: str, value: Any) -> str:
        """A field value as it appears in a pk (its primitive, as text)."""
        if isinstance(value, str):
            return value
        return str(self.fields[name].to_primitive(value))

    def pk_of(self, obj: Any) -> str | None:
        """The pk of ``obj``: from ``pk``, else ``id``, else ``__unique_together__``."""
        for name in ("pk", "id"):
            if name in self.fields:
                value = getattr(obj, name, None)
                if value is not None and value != "":
                    return self.pk_text(name, value)
        if self.unique_together:
            values = [getattr(obj, name, None) for name in self.unique_together]
            if all(v is not None and v != "" for v in values):
                return ".".join(self.pk_text(n, v) for n, v in zip(self.unique_together, values, strict=True))
        return None

    def pk_from_conditions(self, eq: dict[str, Any]) -> str | None:
        """The pk that equality filters pin down, if they do (see ``match``)."""
        for name in ("pk", "id"):
            if name in self.fields and eq.get(name) not in (None, ""):
                return self.pk_text(name, eq[name])
        if self.unique_together and all(eq.get(n) not in (None, "") for n in self.unique_together):
            return ".".join(self.pk_text(n, eq[n]) for n in self.unique_together)
        return None

    def check_pk(self, pk: Any) -> str:
        if pk is None or (isinstance(pk, str | bytes) and len(pk) == 0):
            msg = f"{self.name}: the primary key is empty; give pk, id or __unique_together__ values."
            raise InvalidPrimaryKey(msg)
        return text(pk)

    # -- payloads -----------------------------------------------------------------------
    def _primitive(self, pk: str, payload: Any, fields: Sequence[str] | None = None) -> dict[str, Any]:
        try:
            data = self.deserialize(payload, fields)
        except Exception as exc:
            why = f"cannot be read ({exc})"
            raise self._corrupt(pk, why) from exc
        if not isinstance(data, dict):
            raise self._corrupt(pk, f"is a {type(data).__name__}, not an object")
        return data

    def _corrupt(self, pk: str, why: str) -> CorruptPayload:
        key = self.layout.object_key(pk)
        msg = f"{self.name} object {pk!r} ({key!r}): the stored payload {why}; rewrite or delete it."
        return CorruptPayload(msg, key=key)

    def hydrate(self, pk: str, payload: Any, only: Projection | None = None) -> Any:
        """Build a model instance from a stored payload (of a partial read: ``only``).

        Raises:
            CorruptPayload: the payload is not data of this model; names the key.
        """
        data = self._primitive(pk, payload, None if only is None else only.primitive)
        try:
            obj = self.loader(data)
        except BaseError as exc:
            raise self._corrupt(pk, f"does not fit the model ({exc})") from exc
        claimed = self._stored_pk(data, obj)
        if claimed is not None and claimed != pk:
            # Loading it would make a later set()/delete() act on the object it names.
            raise self._corrupt(pk, f"says its pk is {claimed!r}")
        if only is not None:
            setattr(obj, LOADED, only.names)
        return obj

    def _stored_pk(self, data: dict[str, Any], obj: Any) -> str | None:
        """``pk_of(obj)``, read straight from the primitive ``data`` in the usual case (a
        plain string field ``pk`` or ``id``), which is much cheaper."""
        for primitive_name, plain in self._pk_sources:
            raw = data.get(primitive_name, _ABSENT_KEY)
            if raw is None:
                continue  # as pk_of: the next source
            if not (plain and type(raw) is str):
                break  # the default of a missing key, or a value to convert: ask pk_of
            if raw:
                return raw
        else:
            if not self.unique_together:
                return None
        return self.pk_of(obj)

    def entries(self, pk: str, values: dict[str, Any]) -> frozenset[Entry]:
        """Every index entry of an object whose indexed fields hold ``values``."""
        out: list[Entry] = []
        for index in self.indexes:
            out += index.entries(pk, values.get(index.field))
        return frozenset(out)

    def indexed_values(self, data: dict[str, Any]) -> dict[str, Any]:
        """The normalized native values of the indexed fields of a primitive dict."""
        values = {}
        for name in self.indexed_fields:
            raw = data.get(self.primitive_names[name])
            values[name] = None if raw is None else serializers.normalize(self.fields[name].to_native(raw))
        return values

    def stored_entries(self, pk: str, payload: Any) -> frozenset[Entry]:
        """Index entries implied by a stored payload (best effort when it is corrupt)."""
        if payload is None:
            return frozenset()
        try:
            return self.entries(pk, self.indexed_values(self._primitive(pk, payload)))
        except (CorruptPayload, BaseError, TypeError, ValueError, InvalidModel):
            # Unreadable: only entries found by pk alone can be removed (range ZREM).
            return frozenset(Entry("zset", i.key, pk) for i in self.indexes if isinstance(i, RangeIndex))

    # -- reads --------------------------------------------------------------------------
    def read(
        self, client: Any, pks: Sequence[str], fields: Sequence[str] | None = None
    ) -> list[tuple[Any, bool]]:
        """Stored payloads of ``pks`` and whether each object is alive (not expired);
        ``fields`` (primitive names): partial payloads (see ``Layout.read``).

        Complexity: one round trip (MGET/HMGET, plus ZMSCORE and TIME when expiring).
        """
        if not pks:
            return []
        try:
            if not self.expiring:
                return [(p, p is not None) for p in self.layout.read(client, pks, fields)]
            pipe = client.pipeline(transaction=False)
            self.layout.read(pipe, pks, fields)
            pipe.zmscore(self.keys.members(), list(pks))
            pipe.time()
            payloads, deadlines, (sec, usec) = pipe.execute()
        except UnicodeDecodeError as exc:
            raise self._undecodable(client, pks) from exc
        now = int(sec) * 1000 + int(usec) // 1000
        # No deadline but a payload: written by 0.3.x (Redis' own TTL still governs it) and
        # not adopted by rebuild_indexes() yet. Every write of this library lists the pk.
        return [
            (p, p is not None and (d is None or d > now)) for p, d in zip(payloads, deadlines, strict=True)
        ]

    def _undecodable(self, client: Any, pks: Sequence[str]) -> CorruptPayload:
        """The error for a payload a ``decode_responses=True`` client cannot decode."""
        bad = pks[0]
        for pk in pks:  # find the culprit, one read each
            try:
                self.layout.read(client, [pk])
            except UnicodeDecodeError:
                bad = pk
                break
        key = self.layout.object_key(bad)
        msg = (
            f"{self.name} object {bad!r} ({key!r}): the stored payload is not UTF-8, and this "
            "client decodes replies (decode_responses=True); rewrite or delete it with a client "
            "that does not decode."
        )
        return CorruptPayload(msg, key=key)

    def load(
        self, client: Any, pks: Sequence[str], only: Projection | None = None
    ) -> list[tuple[str, Any, Any]]:
        """(pk, payload, object) for each alive object among ``pks``, in order; with
        ``only``, objects with just those fields loaded (and partial payloads).

        Complexity: one round trip per ``CHUNK`` pks, O(M) hydration.
        """
        out = []
        expired = 0
        fields = None if only is None else only.primitive
        for chunk in chunked(pks, CHUNK):
            for pk, (payload, alive) in zip(chunk, self.read(client, chunk, fields), strict=True):
                if alive:
                    out.append((pk, payload, self.hydrate(pk, payload, only)))
                elif payload is not None:
                    expired += 1
        if expired:
            self.purge_expired(max_batches=1)
        return out

    def member_batches(self, client: Any, batch: int = CHUNK) -> Iterator[list[str]]:
        """Every pk in the members set, in batches (SSCAN/ZSCAN; never blocks Redis)."""
        if self.expiring:
            it: Iterable[Any] = (m for m, _ in client.zscan_iter(self.keys.members(), count=batch))
        else:
            it = client.sscan_iter(self.keys.members(), count=batch)
        yield from batched(unique(text(member) for member in it), batch)

    def count_all(self, client: Any) -> int:
        """Objects alive. Complexity: O(1) (SCARD) or O(log N) (ZCOUNT), one round trip."""
        if not self.expiring:
            return int(client.scard(self.keys.members()))
        sec, usec = client.time()
        now = int(sec) * 1000 + int(usec) // 1000
        return int(client.zcount(self.keys.members(), f"({now}", "+inf"))

    # -- writes -------------------------------------------------------------------------
    def prepare(self, obj: Any) -> _Item:
        """Validate ``obj``, settle its pk and build what it should be stored as.

        Raises InvalidModel / InvalidPrimaryKey before anything is written.
        """
        model: Any = self.model
        if not isinstance(obj, model):
            msg = (
                f"{self.name} can only store {self.name} instances, not {type(obj).__name__} "
                f"({obj!r:.60}); build one with {self.name}(data)."
            )
            raise InvalidModel(msg)
        pk = self.pk_of(obj)
        if pk is None:
            pk = uuid.uuid4().hex
        if "pk" in self.fields and getattr(obj, "pk", None) != pk:
            obj.pk = pk
        if self.fast_validate is None or not self.fast_validate(obj):
            self._validate(pk, obj)
        held = snapshot(obj)
        self._refuse_old_years(pk, held)
        primitive = self.dumper(obj)
        values = {n: serializers.normalize(value_in(held, n)) for n in self.indexed_fields}
        return self.item(pk, self.serialize(primitive), self.entries(pk, values))

    def member_op(self, pk: str) -> Op:
        """The operation listing ``pk`` in the members set (with its deadline if expiring)."""
        if self.expiring:
            return ("MEMBER+", self.keys.members(), (pk, self.ttl_ms))
        return ("SADD", self.keys.members(), (pk,))

    def _validate(self, pk: str, obj: Any) -> None:
        """``obj.validate()``, its errors as InvalidModel (nothing written yet)."""
        before = snapshot(obj)  # validate() may drop values it crashes on
        try:
            obj.validate()
        except BaseError as exc:
            errors = exc.to_primitive() if hasattr(exc, "to_primitive") else str(exc)
            msg = f"{self.name} {pk!r} is not valid, nothing was written: {errors}"
            raise InvalidModel(msg, errors) from exc
        except (TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            # schematics' own validators crash on some values (True in a UUIDType, an int
            # too large for a FloatType) instead of reporting them
            raise self._crashed_validation(pk, before, exc) from exc

    def _crashed_validation(self, pk: str, held: dict[str, Any], exc: Exception) -> InvalidModel:
        """InvalidModel naming the field whose value (in ``held``, the object's data
        before validation) made schematics' validation raise ``exc``, found by validating
        each field alone."""
        for name, kind in self.fields.items():
            value = value_in(held, name)
            try:
                kind.validate(value)
            except BaseError:
                continue  # reported as usual if it were the only problem
            except Exception as culprit:  # any crash names its field
                problem = f"{type(culprit).__name__}: {culprit}"
                msg = (
                    f"{self.name} {pk!r} is not valid, nothing was written: {name} = {value!r:.60} "
                    f"cannot be validated by {type(kind).__name__} ({problem})."
                )
                return InvalidModel(msg, {name: problem})
        msg = f"{self.name} {pk!r} is not valid, nothing was written: {type(exc).__name__}: {exc}"
        return InvalidModel(msg, str(exc))

    def _refuse_old_years(self, pk: str, held: dict[str, Any]) -> None:
        """Refuse dates that could be stored but never used: before year 1000 (schematics
        writes "999-..." and cannot read it back) or past 9999 once converted to UTC."""
        for name in self.date_fields:
            value = value_in(held, name)
            if isinstance(value, dt.date) and value.year < 1000:
                msg = (
                    f"{self.name} {pk!r}: {name} = {value!r} is before year 1000, which schematics "
                    "cannot read back once stored; nothing was written."
                )
                raise InvalidModel(msg, {name: "year before 1000"})
            try:
                serializers.normalize(value)
            except OverflowError as exc:  # e.g. 9999-12-31T23:00-08:00 is past 9999 in UTC
                msg = (
                    f"{self.name} {pk!r}: {name} = {value!r} is outside the datetime range once "
                    "converted to UTC, so it cannot be compared; nothing was written."
                )
                raise InvalidModel(msg, {name: "outside the UTC datetime range"}) from exc

    def item(self, pk: str, payload: Any, entries: frozenset[Entry] = frozenset(), **kw: Any) -> _Item:
        """A write of ``payload`` (None = delete) for ``pk`` of this model."""
        return _Item(pk, payload, entries, store=self, **kw)

    def add_to(self, batch: _Batch, item: _Item) -> None:
        """Add the guards and operations of one object's write to ``batch``."""
        if item.merge is not None:  # a partial write: what it writes depends on what is stored
            item.payload, item.entries = item.merge(item)
        members = self.keys.members()
        batch.guard(item, self.guard(item))
        for g in item.extra:
            batch.guard(item, g)
        guards, index_ops = _diff(item.old, item.entries)
        for g in guards:
            batch.guard(item, g)
        if item.payload is not None:
            for op in self.layout.put_ops(item.pk, item.payload, self.physical_ms):
                batch.op(op)
            batch.op(self.member_op(item.pk))
        else:
            for op in self.layout.delete_ops(item.pk):
                batch.op(op)
            batch.op(("ZREM" if self.expiring else "SREM", members, (item.pk,)))
        for op in index_ops:
            batch.op(op)
        if self.expiring and item.payload is not None:
            for key in dict.fromkeys([members, *(e.key for e in item.entries)]):
                batch.op(("EXTEND", key, (self.physical_ms,)))

    def unique_violation(self, item: _Item, g: Guard, owner: Any) -> UniqueViolation:
        index_field = next(i.field for i in self.indexes if isinstance(i, UniqueIndex) and i.key == g.key)
        msg = (
            f"{self.name}.{index_field} = {g.field!r} already belongs to {self.name} "
            f"{text(owner)!r}; {item.pk!r} was not written. Values of a UniqueIndex "
            "field must differ between objects."
        )
        return UniqueViolation(msg, field=index_field, value=g.field, owner=text(owner))

    def queue(self, pipeline: Any, items: Sequence[_Item]) -> None:
        """Queue writes on a user's pipeline (see :func:`queue`)."""
        queue(self.client, pipeline, items)

    def commit(
        self, client: Any, items: Sequence[_Item], attempts: int = MAX_ATTEMPTS, once: str | None = None
    ) -> None:
        """Apply ``items`` all-or-nothing (see :func:`commit`)."""
        commit(client, items, attempts, once)

    def save(self, objs: Sequence[Any], pipeline: Any = None, only: Iterable[str] | None = None) -> None:
        """Store objects with their index entries; see ``set_many`` for the guarantees.

        ``only``: write just these fields (see :meth:`partial`).

        Raises:
            PartiallyLoaded: an object read with ``only=`` would store a field it did not
                load (nothing is written).
        """
        names = None if only is None else self.field_names(only)
        for obj in objs:
            self._refuse_unloaded(obj, names)
        prepared = [self.prepare(obj) for obj in objs]  # every object valid before any write
        if names is not None:
            prepared = [self.partial(item, obj, names) for item, obj in zip(prepared, objs, strict=True)]
        items = list({item.pk: item for item in prepared}.values())  # last one wins
        if pipeline is not None:
            self._defer(pipeline, items)
            return
        client = self.client
        for chunk in chunked(items, CHUNK):
            if only is not None:  # partial: merged with what is stored (and alive), so read it
                read_state(client, chunk)
            # Optimistic: assume absent; a stored object is reported back with its payload.
            self.commit(client, chunk)

    def _defer(self, pipeline: Any, items: list[_Item]) -> None:
        """Hand writes to a ``transaction()`` block, or queue them on a redis pipeline."""
        collect = getattr(pipeline, "rs_collect", None)
        if collect is not None:
            collect(self.client, items)
        else:
            self.queue(pipeline, items)

    # -- partial reads: match_for_pk(pk, only=[...]), query().only(...) ------------------
    def projection(
        self, only: Iterable[str], also: Iterable[str] = (), method: str = "only"
    ) -> Projection | None:
        """What a read of just the fields ``only`` loads: those, the fields ``also``
        names (a query's filtered and ordered fields) and the fields the pk comes from
        (``pk``, ``id``, ``__unique_together__``), so a loaded object knows its pk.
        None when that is every field (a whole read).

        Raises:
            UnknownField: a name is not a field of the model.
        """
        key = ((only,) if isinstance(only, str) else tuple(only), tuple(also))
        if key in self._projections:
            return self._projections[key]
        wanted = [*self.field_names(key[0], method), *key[1]]
        wanted += [n for n in ("pk", "id") if n in self.fields] + list(self.unique_together)
        names = frozenset(wanted)
        result = None
        if names and names != frozenset(self.fields):
            ordered = tuple(n for n in self.fields if n in names)  # the model's field order
            result = Projection(names, tuple(self.primitive_names[n] for n in ordered))
        if len(self._projections) < 256:  # a few shapes per model in practice
            self._projections[key] = result
        return result

    def _refuse_unloaded(self, obj: Any, names: tuple[str, ...] | None) -> None:
        """Refuse a write of fields an ``only=`` read did not load (it would store their
        defaults over the stored values)."""
        loaded = getattr(obj, LOADED, None)
        if loaded is None:
            return
        missing = tuple(n for n in (self.fields if names is None else names) if n not in loaded)
        if not missing:
            return
        pk = self.pk_of(obj)
        shown = ", ".join(sorted(loaded))
        call = "set()" if names is None else f"set(only={list(names)!r})"
        msg = (
            f"{self.name} object {pk!r} was read with only=[{shown}]; {call} would store "
            f"{', '.join(missing)} without having loaded them, over the stored values. "
            f"Write just the loaded fields (set(only=[...])), or refresh() the object first."
        )
        raise PartiallyLoaded(msg, missing)

    # -- partial writes: obj.set(only=[...]) ---------------------------------------------
    def field_names(self, only: Iterable[str], method: str = "set(only=...)") -> tuple[str, ...]:
        """Check the field names of ``set(only=...)`` (or of the read ``method``).

        Raises:
            UnknownField: a name is not a field of the model.
        """
        names = (only,) if isinstance(only, str) else tuple(only)
        for name in names:
            if not isinstance(name, str) or name not in self.fields:
                close = difflib.get_close_matches(str(name), list(self.fields), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                msg = f"{self.name}.{method}: no field {name!r}{hint} Fields: {', '.join(self.fields)}."
                raise UnknownField(msg)
        return names

    def guard(self, item: _Item) -> Guard:
        """The layout's guard for ``item``; a field layout's partial write checks only
        the fields it writes (writers of other fields never make it retry)."""
        payload = item.payload
        if self.codec is not None and isinstance(payload, Fields) and payload.partial:
            return self.codec.guard(item.pk, item.expected, tuple(payload.values))
        return self.layout.guard(item.pk, item.expected)

    def partial(self, item: _Item, obj: Any, names: tuple[str, ...]) -> _Item:
        """Make the whole write ``item`` of ``obj`` a write of the fields ``names`` only.

        The stored object keeps its other fields: a field layout writes just those hash
        fields / columns; Simple and Hash rewrite the stored payload with those fields
        replaced. Either way only the index entries of those fields change, atomically,
        and a concurrent change of the object is merged again (the write's guard). An
        object that is not stored (or expired, or unreadable) is written whole.
        """
        written = [self.primitive_names[n] for n in names]
        primitive = self.dumper(obj)
        new_values = {
            n: serializers.normalize(getattr(obj, n, None)) for n in self.indexed_fields if n in names
        }
        whole = (item.payload, item.entries)

        def merge(it: _Item) -> tuple[Any, frozenset[Entry]]:
            if it.expected is None or not it.alive:
                return whole
            try:
                stored = self._primitive(it.pk, it.expected)
                values = self.indexed_values(stored)
            except (CorruptPayload, BaseError, TypeError, ValueError):
                return whole
            merged = {k: primitive.get(k) if k in written else v for k, v in stored.items()}
            merged.update((k, primitive[k]) for k in written if k in primitive)
            for k in written:
                if k not in primitive:  # serialize_when_none=False and None: the key goes
                    merged.pop(k, None)
            if not merged:
                return whole
            values.update(new_values)
            entries = self.entries(it.pk, values)
            if self.codec is not None:
                return whole[0].only(written), entries
            return self.serialize(merged), entries

        item.merge = merge
        return item

    def delete_pks(
        self,
        pks: Sequence[str],
        pipeline: Any = None,
        known: dict[str, Any] | None = None,
        keep_if: Callable[[Any], bool] | None = None,
    ) -> int:
        """Delete objects by pk with their index entries; returns how many were alive.

        ``known`` maps pks to payloads the caller already read (saves the read);
        ``keep_if`` re-checks an object that changed after it was read (a filter): one
        that no longer passes is left alone. With ``pipeline=`` the count is of the
        objects alive when the delete was queued.

        Complexity: two round trips per ``CHUNK`` pks (read, then write).
        """
        pks = list(dict.fromkeys(pks))
        client = self.client
        if pipeline is not None:
            items = [self.item(pk, None) for pk in pks]
            read_state(client, items)
            self._defer(pipeline, items)
            return sum(1 for i in items if i.alive)
        deleted = 0
        for chunk in chunked(pks, CHUNK):
            if known is not None and all(pk in known for pk in chunk):
                reads = [(known[pk], True) for pk in chunk]
            else:
                reads = self.read(client, chunk)
            items = [
                self.item(
                    pk,
                    None,
                    expected=payload,
                    old=self.stored_entries(pk, payload),
                    alive=alive,
                    keep_if=keep_if,
                )
                for pk, (payload, alive) in zip(chunk, reads, strict=True)
            ]
            self.commit(client, items)
            deleted += sum(1 for i in items if i.alive and not i.dropped and i.expected is not None)
        return deleted

    def update(self, pk: str, fn: Callable[[Any], Any], retries: int) -> Any:
        """Load ``pk``, apply ``fn``, save only if nobody changed it meanwhile; retry.

        Raises:
            NotFound: nothing is stored under ``pk``.
            ConcurrentModification: still changing after ``retries`` retries.

        Complexity: two round trips per attempt (read, then a guarded write).
        """
        client = self.client
        for _attempt in range(retries + 1):
            ((payload, alive),) = self.read(client, [pk])
            if not alive:
                msg = f"{self.name}.update: no object with pk {pk!r} ({self.layout.object_key(pk)!r})."
                raise NotFound(msg)
            obj = self.hydrate(pk, payload)
            result = fn(obj)
            if result is not None:
                obj = result
            item = self.prepare(obj)
            if item.pk != pk:
                msg = f"{self.name}.update({pk!r}): fn changed the pk to {item.pk!r}; it may not."
                raise InvalidPrimaryKey(msg)
            item.expected, item.old = payload, self.stored_entries(pk, payload)
            # A token makes the write idempotent: if redis-py resends it after a lost
            # reply, the script sees the token and does not report a conflict with our
            # own write (which would call fn a second time).
            once = self.keys.once(uuid.uuid4().hex)
            try:
                self.commit(client, [item], attempts=1, once=once)
            except WriteConflict:
                continue
            return obj
        msg = (
            f"{self.name}.update({pk!r}): the object changed under every one of "
            f"{retries + 1} attempts; retry later or raise retries."
        )
        raise ConcurrentModification(msg)

    def purge_expired(self, batch: int = CHUNK, max_batches: int | None = None) -> int:
        """Remove expired objects and their index entries, ``batch`` at a time.

        Complexity: O(E log N) for E expired objects; two round trips per batch.
        """
        if not self.expiring:
            return 0
        client = self.client
        members = self.keys.members()
        purged = 0
        done = 0
        while max_batches is None or done < max_batches:
            done += 1
            sec, usec = client.time()
            now = int(sec) * 1000 + int(usec) // 1000
            pks = [text(m) for m in client.zrangebyscore(members, "-inf", now, start=0, num=batch)]
            if not pks:
                break
            purged += self.purge_pks(client, pks)
            if len(pks) < batch:
                break
        return purged

    def purge_pks(self, client: Any, pks: Sequence[str]) -> int:
        """Remove those of ``pks`` that are past their deadline (guarded: one renewed
        meanwhile is left alone). Returns how many went. Two round trips."""
        members = self.keys.members()
        reads = self.read(client, pks)
        gone = [pk for pk, (payload, _alive) in zip(pks, reads, strict=True) if payload is None]
        orphans = self.orphan_entries(client, gone) if gone else {}
        items = []
        for pk, (payload, _alive) in zip(pks, reads, strict=True):
            dead = Guard("dead", members, pk)
            old = orphans.get(pk, frozenset()) if payload is None else self.stored_entries(pk, payload)
            items.append(self.item(pk, None, expected=payload, old=old, extra=(dead,)))
        self.commit(client, items)
        return sum(1 for i in items if not i.dropped)

    def orphan_entries(self, client: Any, pks: Sequence[str]) -> dict[str, frozenset[Entry]]:
        """Index entries of objects whose payload is gone (Redis expired it before any
        purge), found without it: ZSCORE by pk, SMISMEMBER over every equality key, a scan
        of the unique hashes. O(V) for V index values: the rare path, not the usual one."""
        found: dict[str, set[Entry]] = {pk: set() for pk in pks}
        wanted = list(found)
        for index in self.indexes:
            if isinstance(index, RangeIndex):
                for pk, sc in zip(wanted, client.zmscore(index.key, wanted), strict=True):
                    if sc is not None:
                        found[pk].add(Entry("zset", index.key, pk, float(sc)))
            elif isinstance(index, UniqueIndex):
                for token, owner in client.hscan_iter(index.key, count=CHUNK):
                    if text(owner) in found:
                        found[text(owner)].add(Entry("unique", index.key, text(token), owner=text(owner)))
            else:
                pattern = self.keys.equality_pattern(index.field)
                for key in client.scan_iter(match=pattern, count=CHUNK):
                    flags = client.smismember(key, wanted)
                    for pk, flag in zip(wanted, flags, strict=True):
                        if flag:
                            found[pk].add(Entry("set", text(key), pk))
        return {pk: frozenset(entries) for pk, entries in found.items()}


def _refuse_shared_claims(items: Sequence[_Item]) -> None:
    """Two objects of one write claiming one unique value: refuse before writing.

    (The script checks claims against what is stored, before any of the write's own
    operations, so it cannot see a clash between two objects of the same call.)
    """
    claims: dict[tuple[str, str], _Item] = {}
    for item in items:
        if item.dropped:
            continue
        for e in item.entries:
            if e.kind != "unique":
                continue
            first = claims.setdefault((e.key, e.member), item)
            if first.pk != item.pk:
                taken = item.owner.unique_violation(item, Guard("uniq", e.key, e.member, item.pk), first.pk)
                msg = (
                    f"{item.owner.name}.{taken.field} = {e.member!r} is claimed by both "
                    f"{first.pk!r} and {item.pk!r} in one write; nothing was written. Values of a "
                    "UniqueIndex field must differ between objects."
                )
                raise UniqueViolation(msg, field=taken.field, value=e.member, owner=first.pk)


def build(items: Sequence[_Item]) -> _Batch:
    """One ``apply_write.lua`` call for ``items`` (of one or several models)."""
    _refuse_shared_claims(items)
    batch = _Batch()
    for item in items:
        if item.dropped:
            continue
        kept = {(e.key, e.member) for e in item.entries if e.kind == "unique"}
        for e in item.old:
            if e.kind == "unique" and (e.key, e.member) not in kept:
                batch.releases[(e.key, e.member)] = item.pk
    for item in items:
        if not item.dropped:
            item.owner.add_to(batch, item)
    return batch


def read_state(client: Any, items: Sequence[_Item]) -> None:
    """Set each item's ``expected``/``old`` from what is stored now (one read per model)."""
    by_store: dict[int, list[_Item]] = {}
    for item in items:
        by_store.setdefault(id(item.owner), []).append(item)
    for group in by_store.values():
        store = group[0].owner
        reads = store.read(client, [i.pk for i in group])
        for item, (payload, alive) in zip(group, reads, strict=True):
            item.expected = payload
            item.old = store.stored_entries(item.pk, payload)
            item.alive = alive


def queue(client: Any, pipeline: Any, items: Sequence[_Item]) -> None:
    """Queue writes on a user's redis pipeline.

    Their stored state is read now (on ``client``) and checked again when the pipeline
    runs; a change in between makes that command fail with an "RSGUARD" error and write
    nothing (the other commands of a non-transactional pipeline still run).
    """
    read_state(client, items)
    batch = build(items)
    if batch.n_ops:
        script(client, "apply_write")(batch.keys, batch.argv(True), client=pipeline)


def _saw(item: _Item, expected: Any, old: frozenset[Entry]) -> None:
    """Finish recording what a retry of ``item`` found stored: ``item.expected`` and
    ``item.old`` are set from it, ``expected``/``old`` are what the item held before.

    The entries to remove are the fresh ones, except that an unchanged payload keeps
    ``old`` (it may hold more than the payload implies: purge_pks finds the entries of a
    payload Redis already expired without it), and a delete whose payload is gone now
    removes ``old`` as well (every entry of a pk without a payload is an orphan, so
    removing it is safe; a unique entry is removed only while the pk still owns it).
    A conditional delete re-checks the payload it found."""
    if item.expected == expected:
        item.old = old
    elif item.payload is None and item.expected is None:
        item.old = old | item.old
    if item.keep_if is not None and item.expected is not None:
        item.dropped = not item.keep_if(item.owner.hydrate(item.pk, item.expected))


def commit(
    client: Any, items: Sequence[_Item], attempts: int = MAX_ATTEMPTS, once: str | None = None
) -> None:
    """Apply ``items`` (of one or several models) all-or-nothing.

    Each attempt is one ``apply_write.lua`` call (one round trip). A failed guard
    returns the current payload, so the first retry needs no extra read; later ones,
    which back off first, read the objects again (one more round trip each).

    Raises:
        UniqueViolation: a UniqueIndex value belongs to another object; nothing written.
        WriteConflict: the objects kept changing for ``attempts`` attempts.
    """
    run = script(client, "apply_write")
    conflicted: dict[int, _Item] = {}  # the items whose guard failed in the last attempt
    for attempt in range(attempts):
        if attempt >= 2:
            # Writers racing on one object: back off a little (jittered, capped at 50 ms)
            # so that they stop colliding in lockstep. The first retry, which replaces
            # the optimistic "absent" guess with the stored payload, does not wait.
            time.sleep(random.uniform(0, min(0.05, 0.0005 * 2**attempt)))
            # The payloads the failed guards returned are as old as that sleep: under
            # contention they are likely stale again. Read those objects afresh (one
            # round trip); any other that changed meanwhile reports itself next attempt.
            live = [i for i in conflicted.values() if not i.dropped]
            before = [(i.expected, i.old) for i in live]
            read_state(client, live)
            for item, (expected, old) in zip(live, before, strict=True):
                _saw(item, expected, old)
        batch = build(items)
        if not batch.n_ops:
            return
        reply = run(batch.keys, batch.argv(False, once), client=client)
        if reply == 1:
            return
        stale = False
        violations = []
        conflicted = {}
        for n in range(0, len(reply), 2):
            item, g = batch.guards[int(reply[n]) - 1]
            current = reply[n + 1]
            store = item.owner
            if g.kind == "uniq":
                violations.append((item, g, current))
                continue
            stale = True
            if g.kind == "dead":
                item.dropped = True  # renewed since it expired: leave it
                continue
            expected, old = item.expected, item.old
            item.expected = current
            item.old = store.stored_entries(item.pk, current)
            item.alive = current is not None
            _saw(item, expected, old)
            conflicted[id(item)] = item
        if not stale and violations:
            # An owner past its deadline is invisible: purge it, then the value is free.
            freed = sum(
                i.owner.purge_pks(client, [text(owner)]) for i, _g, owner in violations if i.owner.expiring
            )
            if freed:
                continue
            item, g, owner = violations[0]
            raise item.owner.unique_violation(item, g, owner)
    names = sorted({i.owner.name for i in items})
    msg = (
        f"{', '.join(names)}: gave up writing {[i.pk for i in items][:5]} after {attempts} "
        "attempt(s); other clients kept changing them."
    )
    raise WriteConflict(msg)
