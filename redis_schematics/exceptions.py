"""Every error redis-schematics raises.

The hierarchy::

    RedisSchematicsError (= RedisMixinException)
    ├── ConfigurationError          a model's settings or __indexes__ cannot work
    ├── InvalidModel (ValueError)   an object fails schematics validation; nothing written
    ├── InvalidPrimaryKey (ValueError)
    ├── QueryError (ValueError)
    │   ├── UnknownField
    │   ├── UnknownLookup
    │   └── InvalidFilterValue
    ├── NotFound (KeyError)
    ├── MultipleFound (KeyError, as in 0.3.x)
    ├── StrictPerformanceException  a query would scan every object under __strict_performance__
    ├── UniqueViolation             a UniqueIndex value is owned by another object
    ├── CorruptPayload (ValueError) a stored payload cannot be read back; names the key
    ├── PartiallyLoaded (ValueError) set() of fields an only= read did not load; nothing written
    ├── CrossSlot                   a write would span Redis Cluster slots or move between shards
    ├── WriteConflict               an object kept changing under a write; retries ran out
    │   └── ConcurrentModification  Model.update() ran out of retries
    └── ServerRefused               the server refused a write; nothing was written
        ├── OutOfMemory             maxmemory reached under noeviction
        └── ReadOnlyServer          the server is a read-only replica

    RedisSchematicsWarning (UserWarning)
    └── EvictionRisk                the server's maxmemory-policy can evict our keys

Messages name the model, the field or filters, and say what to do.
"""

from __future__ import annotations

from typing import Any


class RedisSchematicsError(Exception):
    """Base class of every error raised by redis-schematics."""


#: The name the original library used for its base class.
RedisMixinException = RedisSchematicsError


class ConfigurationError(RedisSchematicsError):
    """A model's redis-schematics settings are inconsistent (raised at class creation)."""


class InvalidModel(RedisSchematicsError, ValueError):
    """The object does not validate; nothing was written."""

    def __init__(self, msg: str, errors: Any = None) -> None:
        super().__init__(msg)
        self.errors = errors


class InvalidPrimaryKey(RedisSchematicsError, ValueError):
    """The primary key is empty or cannot be stored."""


class QueryError(RedisSchematicsError, ValueError):
    """A filter cannot be understood."""


class UnknownField(QueryError):
    """A filter names a field the model does not have."""


class UnknownLookup(QueryError):
    """A filter uses an operator suffix that does not exist."""


class InvalidFilterValue(QueryError):
    """A filter value cannot be converted by the field's type."""


class NotFound(RedisSchematicsError, KeyError):
    """No object matches.

    A ``KeyError`` too, as in the original library. ``str()`` gives the plain message
    (``KeyError`` would otherwise quote it).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MultipleFound(RedisSchematicsError, KeyError):
    """``match`` found more than one object.

    A ``KeyError`` too, as in 0.3.x (code written for it catches ``KeyError``); ``str()``
    gives the plain message.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StrictPerformanceException(RedisSchematicsError):
    """The query would read every object and the model sets ``__strict_performance__``."""


class IndexNotReady(StrictPerformanceException):
    """Under ``__strict_performance__``: the query needs an index (or the members set)
    that Redis does not hold complete yet (declared after objects were stored, or data
    of redis-schematics 0.3.x); ``rebuild_indexes()`` or ``redis-schematics reindex``
    builds it. ``indexes`` names the incomplete indexes (empty: the members set)."""

    def __init__(self, msg: str, indexes: tuple[str, ...] = ()) -> None:
        super().__init__(msg)
        self.indexes = indexes


class UniqueViolation(RedisSchematicsError):
    """A value of a UniqueIndex field is already owned by another object."""

    def __init__(self, msg: str, field: str = "", value: Any = None, owner: str = "") -> None:
        super().__init__(msg)
        self.field = field
        self.value = value
        self.owner = owner


class CorruptPayload(RedisSchematicsError, ValueError):
    """A stored payload is not valid data for the model."""

    def __init__(self, msg: str, key: str = "") -> None:
        super().__init__(msg)
        self.key = key


class PartiallyLoaded(RedisSchematicsError, ValueError):
    """The object was read with ``only=`` and the write would store fields it never loaded
    (their defaults, over the stored values); nothing was written."""

    def __init__(self, msg: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(msg)
        self.missing = missing


class CrossSlot(RedisSchematicsError):
    """A write would span Redis Cluster hash slots (or move an object between shards),
    which cannot be atomic; nothing was written."""


class WriteConflict(RedisSchematicsError):
    """Concurrent writers kept changing an object; the write gave up after its retries."""


class ConcurrentModification(WriteConflict):
    """``Model.update`` found the object changed by someone else on every attempt."""


class ServerRefused(RedisSchematicsError):
    """The server refused a write because of its state (memory, role); nothing was written."""


class OutOfMemory(ServerRefused):
    """The server is at ``maxmemory`` under ``noeviction`` and refused the write; nothing
    was written. Free memory (delete, expire, raise ``maxmemory``) and retry."""


class ReadOnlyServer(ServerRefused):
    """The write went to a read-only replica; nothing was written. Write to the primary."""


class RedisSchematicsWarning(UserWarning):
    """Base class of every warning redis-schematics gives."""


class EvictionRisk(RedisSchematicsWarning):
    """The server's ``maxmemory-policy`` lets Redis evict our keys (see docs/guarantees.md)."""


__all__ = [
    "ConcurrentModification",
    "ConfigurationError",
    "CorruptPayload",
    "CrossSlot",
    "EvictionRisk",
    "IndexNotReady",
    "InvalidFilterValue",
    "InvalidModel",
    "InvalidPrimaryKey",
    "MultipleFound",
    "NotFound",
    "OutOfMemory",
    "PartiallyLoaded",
    "QueryError",
    "ReadOnlyServer",
    "RedisMixinException",
    "RedisSchematicsError",
    "RedisSchematicsWarning",
    "ServerRefused",
    "StrictPerformanceException",
    "UniqueViolation",
    "UnknownField",
    "UnknownLookup",
    "WriteConflict",
]
