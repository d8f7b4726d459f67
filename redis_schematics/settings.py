"""A model's settings, read once from its dunder attributes when the class is created.

:class:`Settings` is peewee's ``Metadata`` for us: every ``__prefix__``, ``__expire__``,
``__unique_together__``, ``__indexes__``, ``__strict_performance__`` and
``__serializer__`` / ``__deserializer__`` is checked and frozen here, and nothing else in
the library reads them. The clients are the exception, by design: ``__redis_client__``
and ``__redis_async_client__`` are looked up on every call (through
:meth:`Settings.sync_client` / :meth:`Settings.async_client`), so they may be assigned
after the class is created, or be zero-argument callables returning the client (resolved
per call, so no event-loop-bound client is made at import time).
"""

from __future__ import annotations

import difflib
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from schematics import models
from schematics.types import BaseType

from redis_schematics import serializers
from redis_schematics.exceptions import ConfigurationError
from redis_schematics.indexes import BaseIndex, EqualityIndex, Index, RangeIndex, UniqueIndex
from redis_schematics.indexes.range import RANGE_TYPES
from redis_schematics.io import is_async_client, is_cluster_client
from redis_schematics.keys import MAX_SHARDS, KeySpace, shard_spellings
from redis_schematics.layouts import HashPerModelLayout
from redis_schematics.lookups import COMPOUND_TYPES

_PREFIXES: weakref.WeakValueDictionary[str, type] = weakref.WeakValueDictionary()


def _claim_prefix(model: type, prefix: str) -> None:
    """Refuse a key base (``Prefix``, ``{Prefix}``, ``{group}Prefix``, ...) that is another
    live model's base followed by ':' (or the reverse).

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


def resolve_indexes(model: str, fields: Mapping[str, Any], spec: Any, keys: KeySpace) -> tuple[Index, ...]:
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
            index: Index = cls(item)  # the default kind of the field's type
        elif isinstance(item, BaseIndex) and type(item) is not BaseIndex:
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
        refused = index.refuses(field_type)
        if refused is not None:
            msg = f"{model}.__indexes__: {refused}"
            raise ConfigurationError(msg)
        if any(type(other) is type(index) and other.field == index.field for other in found):
            msg = f"{model}.__indexes__ declares {index.describe()} twice."
            raise ConfigurationError(msg)
        found.append(index.bound(keys))
    return tuple(found)


#: every class attribute a model's settings are read from (``Settings``, the clients, and
#: 0.3.x's ``__set_key__``); an unknown dunder close to one of them is refused
SETTING_NAMES = (
    "__redis_client__",
    "__redis_async_client__",
    "__prefix__",
    "__expire__",
    "__unique_together__",
    "__unique_args__",
    "__indexes__",
    "__strict_performance__",
    "__purge_on_read__",
    "__serializer__",
    "__deserializer__",
    "__hash_tag__",
    "__shards__",
    "__shard_by__",
    "__set_key__",
)

#: dunders a model may carry that are not settings: the mixins' own, 0.3.x's methods
#: (``__json__``, ``__key_pattern__``) and schematics'
_OTHER_NAMES = frozenset({"__layout_class__", "__json__", "__key_pattern__", "__optionsclass__"})


def _python_names() -> frozenset[str]:
    """Python's data model names (and the usual module dunders): never taken for a
    misspelled setting, however close (``__index__`` is not ``__indexes__``)."""

    def function() -> None: ...

    kinds: tuple[Any, ...] = (object, type, int, float, complex, str, bytes, list, dict, set)
    found = {name for kind in (*kinds, property, function) for name in dir(kind) if name.startswith("__")}
    found.update(_MORE_PYTHON_NAMES.split())
    return frozenset(found)


#: data model names no built-in type has (class creation, protocols, modules, dataclasses)
_MORE_PYTHON_NAMES = """
__module__ __qualname__ __doc__ __annotations__ __annotate__ __dict__ __weakref__ __slots__
__orig_bases__ __static_attributes__ __firstlineno__ __classcell__ __parameters__
__type_params__ __match_args__ __abstractmethods__ __final__ __dataclass_fields__
__dataclass_params__ __post_init__ __init_subclass__ __class_getitem__ __set_name__
__mro_entries__ __prepare__ __instancecheck__ __subclasscheck__ __getattr__ __get__ __set__
__delete__ __call__ __enter__ __exit__ __aenter__ __aexit__ __await__ __aiter__ __anext__
__iter__ __next__ __reversed__ __len__ __length_hint__ __contains__ __getitem__ __setitem__
__delitem__ __missing__ __bool__ __index__ __fspath__ __copy__ __deepcopy__ __getstate__
__setstate__ __getnewargs__ __getnewargs_ex__ __buffer__ __release_buffer__ __wrapped__
__signature__ __all__ __version__ __author__ __file__ __path__ __package__ __loader__
__spec__ __builtins__ __protocol_attrs__
"""


_PYTHON_NAMES = _python_names()
_DUNDER = re.compile(r"__[A-Za-z0-9]\w*__")
_BARE_SETTINGS = {name.strip("_"): name for name in SETTING_NAMES}


def _user_classes(model: type) -> list[type]:
    """``model``'s MRO but schematics' ``Model`` and its bases (``object``): the classes
    whose attributes a misspelling may hide in. (This library's mixins are in it; their
    dunders are all known names.)"""
    skip = set(models.Model.__mro__)
    return [klass for klass in model.__mro__ if klass not in skip]


def check_spelling(model: type) -> None:
    """Refuse a dunder of ``model`` (or of a base the user wrote) that is close to a
    setting and is none: ``__indices__`` would be ignored without a word, so the model
    would silently have no index. No I/O.

    Names are compared without their underscores (difflib, ratio 0.7 or more), so that
    the shared ``____`` does not make every dunder look alike; Python's own names never
    count.

    Raises:
        ConfigurationError: names the model, the attribute and the setting it resembles.
    """
    for klass in _user_classes(model):
        for attr in klass.__dict__:
            if attr in _BARE_SETTINGS.values() or attr in _OTHER_NAMES or attr in _PYTHON_NAMES:
                continue
            if not _DUNDER.fullmatch(attr):
                continue
            close = difflib.get_close_matches(attr.strip("_"), list(_BARE_SETTINGS), n=1, cutoff=0.7)
            if close:
                where = "" if klass is model else f" (declared on {klass.__name__})"
                msg = (
                    f"{model.__name__}.{attr}{where} is not a setting redis-schematics reads, so it "
                    f"would be ignored: did you mean `{_BARE_SETTINGS[close[0]]}`? Rename it (an "
                    "attribute of your own needs a name less close to a setting)."
                )
                raise ConfigurationError(msg)


def _on_default_instance(model: type, setting: str, found: property) -> Any:
    """What the property ``setting`` returns on a default instance ``model()``: how
    0.3.x's reads evaluated ``__prefix__`` and ``__set_key__`` (their writes used the
    object at hand, which read back only when it gave the same)."""
    name = model.__name__
    try:
        return found.__get__(model())
    except Exception as exc:  # the user's code: anything it raises is a configuration error
        msg = (
            f"{name}.{setting} is a property, read once on a default instance {name}(), and "
            f"it raised {type(exc).__name__}: {exc}. Make it work on {name}(), or declare "
            f"{setting} as a plain string class attribute."
        )
        raise ConfigurationError(msg) from exc


def prefix_of(model: type) -> str:
    """The key prefix of ``model``: ``__prefix__`` (a str, or, as in 0.3.x, a property,
    read once on a default instance ``model()``), else the class name. No I/O.

    Raises:
        ConfigurationError: ``__prefix__`` is neither, or the property raised.
    """
    prefix = model.__dict__.get("__prefix__", None)
    if prefix is None:
        prefix = getattr(model, "__prefix__", None)
    if isinstance(prefix, property):
        prefix = _on_default_instance(model, "__prefix__", prefix)
    if prefix is None:
        return model.__name__
    if not isinstance(prefix, str):
        msg = (
            f"{model.__name__}.__prefix__ must be a string (the start of every key of "
            f"{model.__name__}), or None for the class name; not {prefix!r}."
        )
        raise ConfigurationError(msg)
    return prefix


def _hash_key(name: str, model: type, keys: KeySpace) -> str | None:
    """The hash a 0.3.x ``__set_key__`` names (Hash layout), None for the default one.

    0.3.x read and wrote the model's objects in the hash ``__set_key__`` gave on a
    default instance (``Prefix`` unless overridden, e.g. ``Prefix:SubKey``), under the
    fields ``Prefix:pk``: reading it the same way keeps that data where it is.
    """
    found = getattr(model, "__set_key__", None)
    layout = getattr(model, "__layout_class__", None)
    if found is None or layout is None:
        return None
    if not issubclass(layout, HashPerModelLayout):
        msg = (
            f"{name}.__set_key__ names the one hash of the Hash layout (HashRedisMixin), but "
            f"{name} uses the {layout.name} layout, which has no such hash and would ignore it. "
            f"Remove __set_key__ from {name}, or make {name} a HashRedisMixin model."
        )
        raise ConfigurationError(msg)
    if isinstance(found, property):
        found = _on_default_instance(model, "__set_key__", found)
    if not isinstance(found, str) or not found:
        msg = f"{name}.__set_key__ must give the name of the model's hash (a non-empty str), not {found!r}."
        raise ConfigurationError(msg)
    if keys.tagged:
        msg = (
            f"{name}.__set_key__ cannot be combined with __hash_tag__ or __shards__: the hash "
            f"{found!r} carries no hash tag, so it would not be in {name}'s slot. Remove "
            f"__set_key__ (the hash is then {keys.base!r}) and move the data there."
        )
        raise ConfigurationError(msg)
    bad = [c for c in ("#", "{", "}") if c in found]
    if bad:
        msg = (
            f"{name}.__set_key__ gives {found!r}, which contains {bad[0]!r}; redis-schematics "
            "reserves '#' for its own keys and '{', '}' for cluster hash tags. Give another name."
        )
        raise ConfigurationError(msg)
    return None if found == keys.base else found


def _purge_on_read(model: type) -> bool:
    """``model.__purge_on_read__`` (default True), checked.

    Raises:
        ConfigurationError: it is not True or False.
    """
    found = getattr(model, "__purge_on_read__", True)
    if not isinstance(found, bool):
        msg = (
            f"{model.__name__}.__purge_on_read__ must be True (reads purge the expired objects "
            f"they meet) or False (they never write), not {found!r}."
        )
        raise ConfigurationError(msg)
    return found


def _key_space(name: str, model: type, prefix: str) -> KeySpace:
    """The key space ``__hash_tag__`` and ``__shards__`` ask for."""
    tag = getattr(model, "__hash_tag__", None)
    shards = getattr(model, "__shards__", None)
    if tag is not None and tag is not True and tag is not False and not isinstance(tag, str):
        msg = (
            f"{name}.__hash_tag__ must be True (every key of {name} in one cluster slot) or a "
            f"group name shared with other models (a str), not {tag!r}."
        )
        raise ConfigurationError(msg)
    if shards is not None and (type(shards) is not int or not 1 <= shards <= MAX_SHARDS):
        msg = f"{name}.__shards__ must be an int from 1 to {MAX_SHARDS} (or None), not {shards!r}."
        raise ConfigurationError(msg)
    try:
        return KeySpace(prefix, bool(tag) or shards is not None, tag if isinstance(tag, str) else None)
    except ConfigurationError as exc:
        msg = f"{name}: {exc}"
        raise ConfigurationError(msg) from exc


def _shard_by(name: str, model: type, fields: Mapping[str, Any], shards: tuple[KeySpace, ...]) -> str | None:
    field = getattr(model, "__shard_by__", None)
    if field is None:
        return None
    if not shards:
        msg = f"{name}.__shard_by__ is set but {name}.__shards__ is not; set both (or neither)."
        raise ConfigurationError(msg)
    if field not in fields:
        msg = f"{name}.__shard_by__ names {field!r}, which is not a field of {name}."
        raise ConfigurationError(msg)
    if isinstance(fields[field], COMPOUND_TYPES):
        msg = f"{name}.__shard_by__ names {field!r}, a {type(fields[field]).__name__}: use a plain field."
        raise ConfigurationError(msg)
    return str(field)


def _refuse_unique_across_shards(name: str, indexes: tuple[Index, ...], shard_by: str | None) -> None:
    for index in indexes:
        if isinstance(index, UniqueIndex) and index.field != shard_by:
            msg = (
                f"{name}.__indexes__: {index.describe()} on a sharded model must be on its "
                f"__shard_by__ field (uniqueness is atomic only inside one shard); set "
                f"{name}.__shard_by__ = {index.field!r}, or use an EqualityIndex."
            )
            raise ConfigurationError(msg)


def _resolve(found: Any) -> Any:
    """A client setting's client: the value itself, or what a zero-argument callable
    returns (anything callable without ``execute_command`` is taken as a factory)."""
    # callable() looks at the type only, so a client is never touched here
    if found is not None and callable(found) and not hasattr(found, "execute_command"):
        return found()
    return found


@dataclass(frozen=True)
class Settings:
    """Everything the dunder attributes of one model class say, checked."""

    model: type
    name: str
    fields: Mapping[str, BaseType]
    #: field name -> its name in ``to_primitive()`` (``serialized_name`` or the name)
    primitive_names: Mapping[str, str]
    keys: KeySpace
    #: ``__expire__`` in ms (None: never)
    ttl_ms: int | None
    #: how long Redis keeps a payload: one more ``__expire__`` past the deadline when
    #: indexes need it to find the object's entries (see ``docs/layouts.md``)
    physical_ms: int | None
    unique_together: tuple[str, ...]
    strict: bool
    indexes: tuple[Index, ...]
    #: the fields some index covers, each once, in declaration order
    indexed_fields: tuple[str, ...]
    #: field -> the ZSET key of its RangeIndex (what ``order_by`` can sort on the server)
    range_keys: Mapping[str, str]
    serializer: Callable[[Any], Any]
    deserializer: Callable[[Any], Any]
    #: the key spaces of the shards (``__shards__``), in shard order; () when not sharded
    shards: tuple[KeySpace, ...] = ()
    #: the field whose value chooses the shard (``__shard_by__``); None: the pk
    shard_by: str | None = None
    #: reads purge the expired objects they meet (``__purge_on_read__``; see engine.ReadCleanup)
    purge_on_read: bool = True

    @property
    def expiring(self) -> bool:
        """Does the model have ``__expire__``?"""
        return self.ttl_ms is not None

    @classmethod
    def of(cls, model: type) -> Settings:
        """Read and check the settings of ``model`` (no I/O).

        Raises:
            ConfigurationError: a setting cannot work; the message names it and the fix.
        """
        name = model.__name__
        check_spelling(model)
        if getattr(model, "__primary_key__", None) is not None:
            msg = (
                f"{name}.__primary_key__ is the pk hook of redis-schematics 0.3.x, which this "
                f"version does not call. Remove it: the pk comes from {name}'s pk or id field, "
                "else from __unique_together__ (values joined by '.'), else a uuid4."
            )
            raise ConfigurationError(msg)
        fields: dict[str, BaseType] = dict(model.fields)  # type: ignore[attr-defined]
        keys = _key_space(name, model, prefix_of(model))
        hash_key = _hash_key(name, model, keys)
        if hash_key is not None:
            keys = replace(keys, hash_key=hash_key)
        n_shards = getattr(model, "__shards__", None)
        shards: tuple[KeySpace, ...] = ()
        if n_shards is not None:
            tag = keys.group if keys.group is not None else keys.prefix
            shards = tuple(keys.sharded(spelling) for spelling in shard_spellings(tag, n_shards))
        for claimed in (keys, *shards):
            _claim_prefix(model, claimed.base)
        expire = getattr(model, "__expire__", None)
        if expire is not None and (not isinstance(expire, int | float) or expire <= 0):
            msg = f"{name}.__expire__ must be a positive number of seconds or None, not {expire!r}."
            raise ConfigurationError(msg)
        ttl_ms = None if expire is None else max(1, int(expire * 1000))
        together = getattr(model, "__unique_together__", None) or getattr(model, "__unique_args__", None)
        if isinstance(together, str):
            together = (together,)
        unique_together = tuple(together or ())
        for field in unique_together:
            if field not in fields:
                msg = f"{name}.__unique_together__ names {field!r}, which is not a field."
                raise ConfigurationError(msg)
        indexes = resolve_indexes(name, fields, getattr(model, "__indexes__", None), keys)
        shard_by = _shard_by(name, model, fields, shards)
        if shards:
            _refuse_unique_across_shards(name, indexes, shard_by)
        deserializer = model.__deserializer__  # type: ignore[attr-defined]
        if deserializer is serializers.loads:
            deserializer = serializers.LOADS  # what it calls: one Python call less per object
        return cls(
            model=model,
            name=name,
            fields=fields,
            primitive_names={n: (f.serialized_name or n) for n, f in fields.items()},
            keys=keys,
            ttl_ms=ttl_ms,
            physical_ms=None if ttl_ms is None else ttl_ms * (2 if indexes else 1),
            unique_together=unique_together,
            strict=bool(getattr(model, "__strict_performance__", False)),
            indexes=indexes,
            indexed_fields=tuple(dict.fromkeys(i.field for i in indexes)),
            range_keys={i.field: i.key for i in indexes if isinstance(i, RangeIndex)},
            serializer=model.__serializer__,  # type: ignore[attr-defined]
            deserializer=deserializer,
            shards=shards,
            shard_by=shard_by,
            purge_on_read=_purge_on_read(model),
        )

    def of_shard(self, keys: KeySpace) -> Settings:
        """These settings for one shard: its key space, its index keys (no I/O)."""
        indexes = tuple(index.bound(keys) for index in self.indexes)
        return replace(
            self,
            keys=keys,
            indexes=indexes,
            range_keys={i.field: i.key for i in indexes if isinstance(i, RangeIndex)},
            shards=(),
        )

    def _refuse_untagged_cluster(self, client: Any, setting: str) -> None:
        if not self.keys.tagged and is_cluster_client(client):
            msg = (
                f"{self.name}.{setting} is a Redis Cluster client ({type(client).__name__}) but "
                f"{self.name} has neither __hash_tag__ nor __shards__, so its keys would fall in "
                f"many slots. Add `__hash_tag__ = True` to {self.name} (all its keys in one "
                "slot) or `__shards__ = N` (spread over N slots); see docs/cluster.md."
            )
            raise ConfigurationError(msg)

    # -- clients, looked up on every call -------------------------------------------------
    def sync_client(self) -> Any:
        """The client of the sync methods: ``__redis_client__`` (or what it returns).

        Raises:
            ConfigurationError: it is not set, or it is an asyncio client.
        """
        client = _resolve(getattr(self.model, "__redis_client__", None))
        if client is None:
            msg = (
                f"{self.name}.__redis_client__ is not set; assign a redis.Redis (or fakeredis) client to it."
            )
            if getattr(self.model, "__redis_async_client__", None) is not None:
                msg = (
                    f"{self.name} has only an async client (__redis_async_client__): sync methods need "
                    f"a redis.Redis in {self.name}.__redis_client__; or call the async twin "
                    "(aset, afilter, amatch_for_pk, ...)."
                )
            raise ConfigurationError(msg)
        if is_async_client(client):
            msg = (
                f"{self.name}.__redis_client__ is an asyncio client ({type(client).__name__}), which "
                f"sync methods cannot use: call the async twin (aset, afilter, amatch_for_pk, ...), "
                f"or put a redis.Redis in {self.name}.__redis_client__ and the asyncio client in "
                f"{self.name}.__redis_async_client__."
            )
            raise ConfigurationError(msg)
        self._refuse_untagged_cluster(client, "__redis_client__")
        return client

    def async_client(self) -> Any:
        """The client of the async methods: ``__redis_async_client__``, else an asyncio
        ``__redis_client__`` (either may be a callable returning it).

        Raises:
            ConfigurationError: no asyncio client is set.
        """
        client = _resolve(getattr(self.model, "__redis_async_client__", None))
        if client is None:
            sync = _resolve(getattr(self.model, "__redis_client__", None))
            if sync is not None and is_async_client(sync):
                self._refuse_untagged_cluster(sync, "__redis_client__")
                return sync
            have = "is not set" if sync is None else f"is a sync client ({type(sync).__name__})"
            msg = (
                f"{self.name}.__redis_async_client__ is not set and {self.name}.__redis_client__ "
                f"{have}: async methods need a redis.asyncio.Redis (or fakeredis.FakeAsyncRedis) "
                f"in {self.name}.__redis_async_client__, or a zero-argument callable returning one."
            )
            raise ConfigurationError(msg)
        if not is_async_client(client):
            msg = (
                f"{self.name}.__redis_async_client__ is a sync client ({type(client).__name__}); "
                "assign a redis.asyncio.Redis (or fakeredis.FakeAsyncRedis) to it."
            )
            raise ConfigurationError(msg)
        self._refuse_untagged_cluster(client, "__redis_async_client__")
        return client
