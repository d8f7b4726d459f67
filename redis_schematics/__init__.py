"""Redis persistence for schematics models, with secondary indexes.

Public API only; see README.md and docs/ for the tour.
"""

from __future__ import annotations

from redis_schematics.exceptions import (
    IndexNotReady,
    MultipleFound,
    NotFound,
    RedisMixinException,
    RedisSchematicsError,
    StrictPerformanceException,
    UniqueViolation,
)
from redis_schematics.indexes import EqualityIndex, RangeIndex, UniqueIndex
from redis_schematics.models import (
    BaseRedisMixin,
    DistributedHashRedisMixin,
    DistributedHashRedisModel,
    DistributedRedisMixin,
    DistributedRedisModel,
    HashRedisMixin,
    HashRedisModel,
    SimpleRedisMixin,
    SimpleRedisModel,
)
from redis_schematics.patches import patch_json
from redis_schematics.query import Plan, Query
from redis_schematics.transaction import Transaction, atransaction, transaction

__version__ = "1.0.0.dev0"

__all__ = [
    "BaseRedisMixin",
    "DistributedHashRedisMixin",
    "DistributedHashRedisModel",
    "DistributedRedisMixin",
    "DistributedRedisModel",
    "EqualityIndex",
    "HashRedisMixin",
    "HashRedisModel",
    "IndexNotReady",
    "MultipleFound",
    "NotFound",
    "Plan",
    "Query",
    "RangeIndex",
    "RedisMixinException",
    "RedisSchematicsError",
    "SimpleRedisMixin",
    "SimpleRedisModel",
    "StrictPerformanceException",
    "Transaction",
    "UniqueIndex",
    "UniqueViolation",
    "__version__",
    "atransaction",
    "patch_json",
    "transaction",
]
