"""The mixins users put on their schematics models, and the ready-made models.

A mixin is thin: each method turns its arguments into a flow of the model's
:class:`~redis_schematics.engine.Engine` (built once per class from the dunder settings)
or :class:`~redis_schematics.query.Query`, and runs it with the sync driver; the async
twins (``aset``, ``afilter``, ... in ``asyncapi.py``) run the same flows with the async
driver. The layout is the only thing that differs between ``SimpleRedisMixin``,
``HashRedisMixin``, ``DistributedRedisMixin`` and ``DistributedHashRedisMixin``.

Letters in ``Complexity:`` sections: N = objects of the model, M = matches, K = filters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from schematics import models, types
from schematics.models import ModelMeta

from redis_schematics import operations as op
from redis_schematics import serializers, upkeep
from redis_schematics.asyncapi import AsyncMethods, with_policy
from redis_schematics.engine import Engine
from redis_schematics.exceptions import ConfigurationError
from redis_schematics.keys import SEP
from redis_schematics.layouts import (
    HashPerFieldLayout,
    HashPerModelLayout,
    HashPerObjectLayout,
    KeyPerObjectLayout,
    Layout,
)
from redis_schematics.lookups import parse_filters
from redis_schematics.query import Plan, Query
from redis_schematics.records import LOADED
from redis_schematics.settings import prefix_of
from redis_schematics.sharding import make_engine

if TYPE_CHECKING:
    from typing_extensions import Self


class RedisModelMeta(ModelMeta):
    """schematics' metaclass, plus a check of the redis-schematics settings.

    The mixins carry this metaclass, so ``class M(models.Model, SimpleRedisMixin)`` gets
    it too (it derives from schematics' ``ModelMeta``): a wrong ``__indexes__`` or
    ``__prefix__`` fails when the class is created, not at its first use. The fields
    are only known after schematics built the class, hence a metaclass.
    """

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> Any:
        klass = super().__new__(mcs, name, bases, attrs)
        if issubclass(klass, models.Model) and getattr(klass, "__layout_class__", None) is not None:
            klass._engine()
        return klass


class BaseRedisMixin(AsyncMethods, metaclass=RedisModelMeta):
    """Redis persistence for a schematics model; subclasses choose the layout.

    Settings (class attributes): ``__redis_client__`` (required for the sync methods),
    ``__redis_async_client__`` (for the async twins, unless ``__redis_client__`` is an
    asyncio client), ``__prefix__`` (default: the class name), ``__expire__`` (seconds or
    None), ``__unique_together__`` / ``__unique_args__``, ``__indexes__``,
    ``__strict_performance__``, ``__serializer__`` / ``__deserializer__``,
    ``__hash_tag__``, ``__shards__``, ``__shard_by__`` (Redis Cluster) and, for the Hash
    layout, 0.3.x's ``__set_key__``. They are read once, when the class is created; the
    two clients are read on every call, may be assigned later, and may be zero-argument
    callables returning the client.

    As in 0.3.x, ``__prefix__`` and ``__set_key__`` may be properties: they are read once,
    on a default instance ``Model()``. A class attribute that looks like a misspelled
    setting (``__indices__``, ``__expires__``) raises ``ConfigurationError`` ("did you
    mean `__indexes__`?") when the class is created.
    """

    __redis_client__: ClassVar[Any] = None
    __redis_async_client__: ClassVar[Any] = None
    __expire__: ClassVar[int | float | None] = None
    __unique_args__: ClassVar[tuple[str, ...] | None] = None
    __unique_together__: ClassVar[tuple[str, ...] | None] = None
    __indexes__: ClassVar[Iterable[Any] | None] = None
    __strict_performance__: ClassVar[bool] = False
    #: the storage strategy; set by the concrete mixins (None = abstract)
    __layout_class__: ClassVar[type[Layout] | None] = None

    if TYPE_CHECKING:
        fields: ClassVar[dict[str, Any]]

        def __init__(self, *args: Any, **kwargs: Any) -> None: ...
        def validate(self) -> None: ...
        def to_primitive(self) -> dict[str, Any]: ...
        def import_data(self, data: Any, **kwargs: Any) -> Any: ...

    @staticmethod
    def __serializer__(obj: Any) -> Any:
        """Primitive dict -> stored payload (JSON text by default)."""
        return serializers.dumps(obj)

    #: Stored payload (bytes or str) -> primitive dict (``serializers.loads``: JSON).
    __deserializer__ = staticmethod(serializers.loads)

    # -- plumbing ------------------------------------------------------------------------
    @classmethod
    def _engine(cls) -> Engine:
        engine = cls.__dict__.get("_rs_engine")
        if engine is None:
            layout = cls.__layout_class__
            if layout is None:
                msg = (
                    f"{cls.__name__} has no storage layout; inherit from SimpleRedisMixin, "
                    "HashRedisMixin or another layout mixin."
                )
                raise ConfigurationError(msg)
            engine = make_engine(cls, layout)
            cls._rs_engine = engine
        return engine

    def __json__(self) -> dict[str, Any]:
        """The object for ``json.dumps`` once :func:`~redis_schematics.patches.patch_json`
        ran: its ``to_primitive()`` (as in 0.3.x). No I/O."""
        return self.to_primitive()

    def __key_pattern__(self, *parts: str) -> str:
        """0.3.x's key builder, kept for the ``__set_key__`` overrides that call it: the
        prefix and ``parts`` joined by ``:`` (``self.__key_pattern__("SubKey")`` is
        ``"Prefix:SubKey"``). No I/O."""
        return SEP.join([prefix_of(type(self)), *parts])

    @property
    def key(self) -> str:
        """The object's key (``Prefix:pk``; for the Hash layout, its field in ``Prefix``). No I/O."""
        engine = self._engine()
        return engine.object_key(engine.records.pk_of_stored(self), self)

    # -- instance methods ---------------------------------------------------------------------
    def set(self, pipeline: Any = None, only: Iterable[str] | None = None) -> Self:
        """Store the object and update its index entries, atomically.

        A missing pk is inferred (pk, id, ``__unique_together__``) or generated (uuid4 hex)
        and assigned to ``pk``. The object is validated first; an invalid one raises
        ``InvalidModel`` and nothing is written. With ``pipeline=`` the write is queued
        there (its stored state is read now and checked again when the pipeline runs).

        ``only=["amount_kg"]`` writes just those fields: the stored object keeps its
        other fields and only the index entries of those fields change. The Distributed
        layouts write one hash field (column) per named field; Simple and Hash rewrite
        the stored payload with those fields replaced. An object not stored yet is
        written whole.

        An object read with ``only=`` can write just the fields it loaded
        (``set(only=...)``); anything else raises ``PartiallyLoaded``.

        Raises:
            InvalidModel: the object does not validate; nothing is written.
            UniqueViolation: a UniqueIndex value belongs to another object.
            WriteConflict: the object kept changing under every retry.
            UnknownField: ``only`` names a field the model does not have.
            PartiallyLoaded: the object was read with ``only=`` and would store a field
                it did not load.

        Complexity: O(I) for I index entries; one round trip (one ``apply_write.lua``
        call) for a new object, two when it replaces a stored one or with ``only``.
        """
        engine = self._engine()
        engine.sync().run(engine.writes.save([self], pipeline, only))
        return self

    def refresh(self) -> Self:
        """Reload the object's fields from Redis (all of them, also after an ``only=``
        read: the object is then whole again).

        Raises:
            NotFound: the object is not stored (any more).

        Complexity: O(1), one round trip (MGET or HMGET; a script for the Distributed layouts).
        """
        engine = self._engine()
        engine.sync().run(op.refresh(engine, self))
        return self

    @property
    def loaded_fields(self) -> frozenset[str]:
        """The fields this object holds as stored: every field, except for an object
        read with ``only=`` (``match_for_pk``, ``match_for_pks``, ``query().only()``).
        No I/O."""
        loaded: frozenset[str] | None = getattr(self, LOADED, None)
        return frozenset(self._engine().fields) if loaded is None else loaded

    def delete(self, pipeline: Any = None) -> bool:
        """Delete the object and its index entries, atomically. True if it was stored.

        Complexity: O(I); two round trips (read, then ``apply_write.lua``).
        """
        engine = self._engine()
        return bool(engine.sync().run(op.delete_many(engine, [self], pipeline)))

    # -- reads ----------------------------------------------------------------------------
    @classmethod
    def match_for_pk(cls, pk: Any, only: Iterable[str] | None = None) -> Self:
        """Load the object stored under ``pk``.

        ``only=["flavour"]`` loads just those fields (and the ones the pk comes from);
        the others hold their defaults, ``obj.loaded_fields`` lists what was loaded, and
        the object refuses a ``set()`` that would store a field it did not load. The
        Distributed layouts read just those hash fields / columns; Simple and Hash read
        the whole document and skip converting the other fields.

        Raises:
            NotFound: nothing is stored under ``pk``.
            CorruptPayload: the stored payload cannot be read; names the key.
            UnknownField: ``only`` names a field the model does not have.

        Complexity: O(1), one round trip (one MGET, or HMGET for the Hash layout; plus
        ZMSCORE and TIME in the same round trip for expiring models); O(F) or, with
        ``only``, O(R) for the R fields read on the Distributed layouts.
        """
        engine = cls._engine()
        obj: Self = engine.sync().run(op.match_for_pk(engine, pk, only))
        return obj

    @classmethod
    def match_for_pks(cls, pks: Iterable[Any], only: Iterable[str] | None = None) -> list[Self | None]:
        """Load many objects by pk: a list aligned with ``pks``, None where nothing is stored.

        ``only``: load just those fields, as in :meth:`match_for_pk`.

        Complexity: O(P), one round trip per 500 pks (MGET/HMGET).
        """
        engine = cls._engine()
        found: list[Self | None] = engine.sync().run(op.match_for_pks(engine, pks, only))
        return found

    @classmethod
    def match_for_values(cls, **kwargs: Any) -> Self:
        """The one object matching the filters.

        Raises:
            NotFound: no object matches.
            MultipleFound: more than one object matches.
            StrictPerformanceException: no filter is indexed and the model sets
                ``__strict_performance__``.
            QueryError: a filter names an unknown field or lookup, or a value its field
                cannot convert.

        Complexity: as ``filter``, but at most two objects are kept.
        """
        engine = cls._engine()
        obj: Self = engine.sync().run(op.match_for_values(engine, kwargs))
        return obj

    @classmethod
    def match(cls, **kwargs: Any) -> Self:
        """The one object matching the filters; by pk when they determine it.

        ``pk=``, ``id=`` or every ``__unique_together__`` field given with ``=`` make this
        a ``match_for_pk`` (then the other filters are checked on the object); anything
        else is ``match_for_values``.

        Complexity: O(1) and one round trip on the pk; otherwise as ``filter``.
        """
        engine = cls._engine()
        obj: Self = engine.sync().run(op.match(engine, kwargs))
        return obj

    @classmethod
    def query(cls, **kwargs: Any) -> Query:
        """A lazy query: ``.order_by()``, ``.limit()``, ``.offset()``, ``.count()``,
        ``.first()``, ``.delete()``, ``.all()``, ``.explain()`` and batched iteration.

        Complexity: nothing until it runs; see ``Query``.
        """
        engine = cls._engine()
        return Query(engine, parse_filters(engine.name, engine.fields, kwargs))

    @classmethod
    def all(cls) -> list[Self]:
        """Every stored object, sorted by pk.

        Complexity: O(N): SSCAN of the members set and one MGET/HMGET per 500 objects.
        """
        return cls.query().all()

    @classmethod
    def filter(cls, **kwargs: Any) -> list[Self]:
        """Every object matching the filters (ANDed), sorted by pk.

        Indexed filters are answered by the indexes (O(C*K) on the server for C
        candidates of the most selective index) and only candidates are loaded;
        otherwise every object is read (O(N*K)), or ``StrictPerformanceException`` under
        ``__strict_performance__``.
        """
        return cls.query(**kwargs).all()

    @classmethod
    def count(cls, **kwargs: Any) -> int:
        """Number of matching objects.

        Complexity: O(1) without filters; one script call and no object loaded when every
        filter is indexed; otherwise as ``filter``.
        """
        return cls.query(**kwargs).count()

    @classmethod
    def explain(cls, **kwargs: Any) -> Plan:
        """The plan ``filter(**kwargs)`` would run: which indexes, what is scanned. No I/O."""
        return cls.query(**kwargs).explain()

    # -- writes ---------------------------------------------------------------------------
    @classmethod
    def update(cls, pk: Any, fn: Callable[[Self], Any], retries: int = 10) -> Self:
        """Read-modify-write with optimistic concurrency.

        Loads the object, calls ``fn(obj)`` (which changes it in place, or returns a new
        object), and saves it only if nobody changed it since it was read; otherwise
        reloads and calls ``fn`` again, up to ``retries`` more times.

        Raises:
            NotFound: nothing is stored under ``pk``.
            ConcurrentModification: the object changed under every attempt.
            InvalidModel, UniqueViolation: as ``set``.

        Complexity: two round trips per attempt (read, then one guarded write script).
        """
        engine = cls._engine()
        obj: Self = engine.sync().run(engine.writes.update(engine.records.check_pk(pk), fn, retries))
        return obj

    @classmethod
    def set_many(cls, objs: Iterable[Any], pipeline: Any = None) -> None:
        """Store many objects.

        Every object is validated before anything is written. Writes are atomic per
        chunk of 500 objects (all of a chunk or none of it, with their index entries); a
        ``UniqueViolation`` in a later chunk leaves earlier chunks written. With
        ``pipeline=`` everything is queued there as one atomic script call.

        Complexity: O(M*I); one round trip per chunk of new objects, two when they
        replace stored ones.
        """
        engine = cls._engine()
        engine.sync().run(engine.writes.save(list(objs), pipeline))

    @classmethod
    def delete_many(cls, objs_or_pks: Iterable[Any], pipeline: Any = None) -> int:
        """Delete objects (given as instances or pks); returns how many were stored.

        Complexity: O(M*I); two round trips per chunk of 500.
        """
        engine = cls._engine()
        deleted: int = engine.sync().run(op.delete_many(engine, objs_or_pks, pipeline))
        return deleted

    @classmethod
    def delete_filter(cls, **kwargs: Any) -> int:
        """Delete the objects matching the filters; returns how many.

        Complexity: as ``filter``, plus one write round trip per 500 objects.
        """
        return cls.query(**kwargs).delete()

    @classmethod
    def delete_all(cls) -> int:
        """Delete every object of the model (also 0.3.x objects that no members set lists).

        Returns the number of objects deleted. Not isolated from concurrent writers.

        Complexity: O(N); for the Simple layout a SCAN of the database finds 0.3.x keys.
        """
        engine = cls._engine()
        return engine.sync().run(engine.delete_all())

    # -- upkeep ---------------------------------------------------------------------------
    @classmethod
    def purge_expired(cls, batch: int = 500, max_batches: int | None = None) -> int:
        """Remove expired objects and their index entries, ``batch`` at a time.

        Queries already hide expired objects and clean up those they meet; this sweeps
        the rest. Complexity: O(E log N) for E expired objects, four round trips a batch
        (more when Redis already dropped the payloads).
        """
        engine = cls._engine()
        return engine.sync().run(engine.purge_expired(batch, max_batches))

    @classmethod
    def check_indexes(cls) -> list[upkeep.Problem]:
        """Differences between the indexes and the stored objects, and the indexes Redis
        does not hold complete (not used by queries until rebuilt); empty when consistent.

        Complexity: O(N) reads (SCAN/SSCAN/ZSCAN/HSCAN and MGET) and O(N) memory.
        """
        engine = cls._engine()
        driver = engine.sync()
        return with_policy(driver.server, driver.run(upkeep.check(engine)))

    @classmethod
    def rebuild_indexes(cls) -> int:
        """Build every declared index (and the members set) from the stored objects.

        Use it after adding an index or after upgrading from 0.3.x: queries use an index
        only once this has marked it complete (``docs/operations.md``). Safe while the
        application writes; interrupted, run it again. Returns how many pks needed a
        repair.

        Complexity: O(N) reads plus one script call per 100 repaired pks (a second round
        only for pks a concurrent write changed).
        """
        engine = cls._engine()
        return engine.sync().run(upkeep.rebuild(engine))


class SimpleRedisMixin(BaseRedisMixin):
    """One string key ``Prefix:pk`` per object (``KeyPerObjectLayout``).

    Choose it for frequent reads and writes by pk and per-object TTLs.
    """

    __layout_class__ = KeyPerObjectLayout


class HashRedisMixin(BaseRedisMixin):
    """One hash ``Prefix`` for the model, a field ``Prefix:pk`` per object
    (``HashPerModelLayout``).

    Choose it for a compact, single-key model that is often read whole.
    """

    __layout_class__ = HashPerModelLayout


class DistributedRedisMixin(BaseRedisMixin):
    """One hash ``Prefix:pk`` per object, a hash field per model field
    (``HashPerObjectLayout``).

    Choose it for objects updated a field at a time (``obj.set(only=[...])`` writes one
    hash field) and per-object TTLs.
    """

    __layout_class__ = HashPerObjectLayout


class DistributedHashRedisMixin(BaseRedisMixin):
    """One hash ``Prefix#col:field`` per model field, mapping pk -> value: a column store
    (``HashPerFieldLayout``).

    Choose it for few keys per model and partial writes; TTL is per model (the columns),
    with exact per-object expiry kept by the members set.
    """

    __layout_class__ = HashPerFieldLayout


class SimpleRedisModel(models.Model, SimpleRedisMixin):
    """A schematics Model using SimpleRedisMixin, with a ``pk`` field."""

    pk = types.StringType()


class HashRedisModel(models.Model, HashRedisMixin):
    """A schematics Model using HashRedisMixin, with a ``pk`` field."""

    pk = types.StringType()


class DistributedRedisModel(models.Model, DistributedRedisMixin):
    """A schematics Model using DistributedRedisMixin, with a ``pk`` field."""

    pk = types.StringType()


class DistributedHashRedisModel(models.Model, DistributedHashRedisMixin):
    """A schematics Model using DistributedHashRedisMixin, with a ``pk`` field."""

    pk = types.StringType()
