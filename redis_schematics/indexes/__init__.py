"""Secondary indexes: EqualityIndex (SET per value), RangeIndex (ZSET), UniqueIndex (HASH)."""

from __future__ import annotations

from redis_schematics.indexes.base import Atom, BaseIndex, Entry, Step, kind_of_atom, kind_of_entry
from redis_schematics.indexes.equality import EqualityIndex
from redis_schematics.indexes.range import RangeIndex
from redis_schematics.indexes.unique import UniqueIndex

#: what a model's settings hold: any index kind (the engine only calls the hooks of BaseIndex)
Index = BaseIndex

__all__ = [
    "Atom",
    "BaseIndex",
    "Entry",
    "EqualityIndex",
    "Index",
    "RangeIndex",
    "Step",
    "UniqueIndex",
    "kind_of_atom",
    "kind_of_entry",
]
