"""Which driver runs a flow for a client: one cached driver per client object.

``intercept`` lets a test wrap every driver handed out (to inject another client's write
before each script call, or to count requests) without patching any module.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from redis_schematics.io.aio import AsyncDriver
from redis_schematics.io.cluster import ClusterAsyncDriver, ClusterSyncDriver
from redis_schematics.io.sync import SyncDriver

Driver = SyncDriver | AsyncDriver

_CACHE: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_ASYNC_TYPES: dict[type, bool] = {}
_WRAPPERS: list[Callable[[Any], Any]] = []
#: client types taken for Redis Cluster clients
_CLUSTER_TYPES: list[type] = [RedisCluster, AsyncRedisCluster]
_CLUSTER: dict[type, bool] = {}


def is_async_client(client: Any) -> bool:
    """Is ``client`` an asyncio client (its ``execute_command`` is a coroutine function)?"""
    kind = type(client)
    found = _ASYNC_TYPES.get(kind)
    if found is None:
        found = _ASYNC_TYPES[kind] = inspect.iscoroutinefunction(getattr(kind, "execute_command", None))
    return found


def is_cluster_client(client: Any) -> bool:
    """Is ``client`` a Redis Cluster client (``redis.cluster.RedisCluster``, its asyncio
    twin, or a type given to :func:`treat_as_cluster`)?"""
    kind = type(client)
    found = _CLUSTER.get(kind)
    if found is None:
        found = _CLUSTER[kind] = issubclass(kind, tuple(_CLUSTER_TYPES))
    return found


def treat_as_cluster(kind: type) -> None:
    """Take clients of ``kind`` for Redis Cluster clients: the cluster driver runs them and
    the cluster rules apply (tests use it for a slot-checking fakeredis wrapper). The type
    must offer ``get_node_from_key(key)`` and ``execute_command(..., target_nodes=node)``."""
    _CLUSTER_TYPES.append(kind)
    _CLUSTER.clear()


def _driver(client: Any, make: Callable[[Any], Any]) -> Any:
    try:
        driver = _CACHE.get(client)
    except TypeError:  # a client that refuses weak references gets a new driver each time
        driver = None
    if driver is None:
        driver = make(client)
        with contextlib.suppress(TypeError):
            _CACHE[client] = driver
    for wrap in _WRAPPERS:
        driver = wrap(driver)
    return driver


def sync_driver(client: Any) -> SyncDriver:
    """The driver of a sync client."""
    found: SyncDriver = _driver(client, ClusterSyncDriver if is_cluster_client(client) else SyncDriver)
    return found


def async_driver(client: Any) -> AsyncDriver:
    """The driver of an async client."""
    found: AsyncDriver = _driver(client, ClusterAsyncDriver if is_cluster_client(client) else AsyncDriver)
    return found


@contextmanager
def intercept(wrap: Callable[[Any], Any]) -> Iterator[None]:
    """While the block runs, every driver handed out is ``wrap(driver)`` (for tests)."""
    _WRAPPERS.append(wrap)
    try:
        yield
    finally:
        _WRAPPERS.remove(wrap)
