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
    ├── MultipleFound
    ├── StrictPerformanceException  a query would scan every object under __strict_performance__
    ├── UniqueViolation             a UniqueIndex value is owned by another object
    ├── CorruptPayload (ValueError) a stored payload cannot be read back; names the key
    ├── PartiallyLoaded (ValueError) set() of fields an only= read did not load; nothing written
    ├── CrossSlot                   a write would span Redis Cluster slots or move between shards
    └── WriteConflict               an object kept changing under a write; retries ran out
        └── ConcurrentModification  Model.update() ran out of retries

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


class MultipleFound(RedisSchematicsError):
    """``match`` found more than one object."""


class StrictPerformanceException(RedisSchematicsError):
    """The query would read every object and the model sets ``__strict_performance__``."""


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


__all__ = [
    "ConcurrentModification",
    "ConfigurationError",
    "CorruptPayload",
    "CrossSlot",
    "InvalidFilterValue",
    "InvalidModel",
    "InvalidPrimaryKey",
    "MultipleFound",
    "NotFound",
    "PartiallyLoaded",
    "QueryError",
    "RedisMixinException",
    "RedisSchematicsError",
    "StrictPerformanceException",
    "UniqueViolation",
    "UnknownField",
    "UnknownLookup",
    "WriteConflict",
]
