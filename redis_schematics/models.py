"""The mixins users put on their schematics models, and the ready-made models.

A mixin is thin: each method turns its arguments into a call on the model's
:class:`~redis_schematics.store.Store` (built once per class from the dunder settings)
or :class:`~redis_schematics.query.Query`. The layout is the only thing that differs
between ``SimpleRedisMixin``, ``HashRedisMixin``, ``DistributedRedisMixin`` and
``DistributedHashRedisMixin``.

Letters in ``Complexity:`` sections: N = objects of the model, M = matches, K = filters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from schematics import models, types
from schematics.models import ModelMeta

from redis_schematics import serializers, upkeep
from redis_schematics.exceptions import ConfigurationError, MultipleFound, NotFound
from redis_schematics.layouts import (
    HashPerFieldLayout,
    HashPerModelLayout,
    HashPerObjectLayout,
    KeyPerObjectLayout,
    Layout,
)
from redis_schematics.lookups import Exact, parse_filters
from redis_schematics.query import Plan, Query
from redis_schematics.store import LOADED, Store

if TYPE_CHECKING:
    from typing_extensions import Self


def _describe(model: str, method: str, kwargs: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"{model}.{method}({args})"


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
            klass._store()
        return klass


class BaseRedisMixin(metaclass=RedisModelMeta):
    """Redis persistence for a schematics model; subclasses choose the layout.

    Settings (class attributes): ``__redis_client__`` (required), ``__prefix__``
    (default: the class name), ``__expire__`` (seconds or None), ``__unique_together__``
    / ``__unique_args__``, ``__indexes__``, ``__strict_performance__``,
    ``__serializer__`` / ``__deserializer__``. They are read once, when the class is
    created; ``__redis_client__`` is read on every call and may be assigned later.
    """

    __redis_client__: ClassVar[Any] = None
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
    def _store(cls) -> Store:
        store = cls.__dict__.get("_rs_store")
        if store is None:
            layout = cls.__layout_class__
            if layout is None:
                msg = (
                    f"{cls.__name__} has no storage layout; inherit from SimpleRedisMixin, "
                    "HashRedisMixin or another layout mixin."
                )
                raise ConfigurationError(msg)
            store = Store(cls, layout)
            cls._rs_store = store
        return store

    @property
    def key(self) -> str:
        """The object's key (``Prefix:pk``; for the Hash layout, its field in ``Prefix``)."""
        store = self._store()
        pk = store.check_pk(store.pk_of(self))
        return store.layout.object_key(pk)

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
            InvalidModel, UniqueViolation, WriteConflict, UnknownField (``only``),
            PartiallyLoaded.

        Complexity: O(I) for I index entries; one round trip (one ``apply_write.lua``
        call) for a new object, two when it replaces a stored one or with ``only``.
        """
        self._store().save([self], pipeline, only)
        return self

    def refresh(self) -> Self:
        """Reload the object's fields from Redis (all of them, also after an ``only=``
        read: the object is then whole again).

        Raises:
            NotFound: the object is not stored (any more).

        Complexity: O(1), one round trip (GET or HGET).
        """
        store = self._store()
        fresh = type(self).match_for_pk(store.check_pk(store.pk_of(self)))
        self.import_data(fresh.to_primitive())
        self.__dict__.pop(LOADED, None)
        return self

    @property
    def loaded_fields(self) -> frozenset[str]:
        """The fields this object holds as stored: every field, except for an object
        read with ``only=`` (``match_for_pk``, ``match_for_pks``, ``query().only()``).
        No I/O."""
        loaded: frozenset[str] | None = getattr(self, LOADED, None)
        return frozenset(self._store().fields) if loaded is None else loaded

    def delete(self, pipeline: Any = None) -> bool:
        """Delete the object and its index entries, atomically. True if it was stored.

        Complexity: O(I); two round trips (read, then ``apply_write.lua``).
        """
        store = self._store()
        return bool(store.delete_pks([store.check_pk(store.pk_of(self))], pipeline))

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

        Complexity: O(1), one round trip (one GET, or HGET for the Hash layout; plus
        ZMSCORE and TIME in the same round trip for expiring models); O(F) or, with
        ``only``, O(R) for the R fields read on the Distributed layouts.
        """
        store = cls._store()
        key = store.check_pk(pk)
        projection = None if only is None else store.projection(only, method="match_for_pk(only=...)")
        rows = store.load(store.client, [key], projection)
        if not rows:
            msg = f"{cls.__name__}: no object with pk {key!r} ({store.layout.object_key(key)!r})."
            raise NotFound(msg)
        obj: Self = rows[0][2]
        return obj

    @classmethod
    def match_for_pks(cls, pks: Iterable[Any], only: Iterable[str] | None = None) -> list[Self | None]:
        """Load many objects by pk: a list aligned with ``pks``, None where nothing is stored.

        ``only``: load just those fields, as in :meth:`match_for_pk`.

        Complexity: O(P), one round trip per 500 pks (MGET/HMGET).
        """
        store = cls._store()
        keys = [store.check_pk(pk) for pk in pks]
        projection = None if only is None else store.projection(only, method="match_for_pks(only=...)")
        found = {pk: obj for pk, _payload, obj in store.load(store.client, keys, projection)}
        return [found.get(pk) for pk in keys]

    @classmethod
    def match_for_values(cls, **kwargs: Any) -> Self:
        """The one object matching the filters.

        Raises:
            NotFound, MultipleFound, StrictPerformanceException (no indexed filter
            under ``__strict_performance__``), QueryError.

        Complexity: as ``filter``, but at most two objects are kept.
        """
        rows = cls.query(**kwargs).limit(2).all()
        if not rows:
            msg = f"{_describe(cls.__name__, 'match', kwargs)} found nothing."
            raise NotFound(msg)
        if len(rows) > 1:
            msg = (
                f"{_describe(cls.__name__, 'match', kwargs)} found more than one object; "
                f"use {cls.__name__}.filter(...) to get all of them."
            )
            raise MultipleFound(msg)
        obj: Self = rows[0]
        return obj

    @classmethod
    def match(cls, **kwargs: Any) -> Self:
        """The one object matching the filters; by pk when they determine it.

        ``pk=``, ``id=`` or every ``__unique_together__`` field given with ``=`` make this
        a ``match_for_pk`` (then the other filters are checked on the object); anything
        else is ``match_for_values``.

        Complexity: O(1) and one round trip on the pk; otherwise as ``filter``.
        """
        store = cls._store()
        conditions = parse_filters(cls.__name__, store.fields, kwargs)
        eq = {c.field: c.value for c in conditions if c.lookup is Exact}
        pk = store.pk_from_conditions(eq)
        if pk is None:
            return cls.match_for_values(**kwargs)
        try:
            obj = cls.match_for_pk(pk)
        except NotFound:
            obj = None
        if obj is None or not all(c.test(obj) for c in conditions):
            msg = f"{_describe(cls.__name__, 'match', kwargs)} found nothing."
            raise NotFound(msg)
        return obj

    @classmethod
    def query(cls, **kwargs: Any) -> Query:
        """A lazy query: ``.order_by()``, ``.limit()``, ``.offset()``, ``.count()``,
        ``.first()``, ``.delete()``, ``.all()``, ``.explain()`` and batched iteration.

        Complexity: nothing until it runs; see ``Query``.
        """
        return Query(cls._store()).filter(**kwargs)

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
        store = cls._store()
        obj: Self = store.update(store.check_pk(pk), fn, retries)
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
        cls._store().save(list(objs), pipeline)

    @classmethod
    def delete_many(cls, objs_or_pks: Iterable[Any], pipeline: Any = None) -> int:
        """Delete objects (given as instances or pks); returns how many were stored.

        Complexity: O(M*I); two round trips per chunk of 500.
        """
        store = cls._store()
        pks = [store.check_pk(store.pk_of(x) if isinstance(x, BaseRedisMixin) else x) for x in objs_or_pks]
        return store.delete_pks(pks, pipeline)

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
        store = cls._store()
        client = store.client
        pks = [pk for batch in store.member_batches(client) for pk in batch]
        for batch in store.layout.stored_pks(client, 500):
            pks += batch
        return store.delete_pks(pks)

    # -- upkeep ---------------------------------------------------------------------------
    @classmethod
    def purge_expired(cls, batch: int = 500, max_batches: int | None = None) -> int:
        """Remove expired objects and their index entries, ``batch`` at a time.

        Queries already hide expired objects and clean up those they meet; this sweeps
        the rest. Complexity: O(E log N) for E expired objects, two round trips a batch.
        """
        return cls._store().purge_expired(batch, max_batches)

    @classmethod
    def check_indexes(cls) -> list[upkeep.Problem]:
        """Differences between the indexes and the stored objects; empty when consistent.

        Complexity: O(N) reads (SCAN/SSCAN/ZSCAN/HSCAN and MGET) and O(N) memory.
        """
        return upkeep.check(cls._store())

    @classmethod
    def rebuild_indexes(cls) -> int:
        """Build every declared index (and the members set) from the stored objects.

        Use it after adding an index or after upgrading from 0.3.x. Safe while the
        application writes. Returns how many pks needed a repair.

        Complexity: O(N) reads plus one script call per repaired pk.
        """
        return upkeep.rebuild(cls._store())


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
