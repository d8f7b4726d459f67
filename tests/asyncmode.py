"""Run the behavioural tests through the async API.

The ``fake-async`` and ``real-async`` kinds of the ``client`` / ``backend`` fixtures hand
the test a sync client (to inspect Redis and to configure models, as every other kind
does) and, for the test's duration, route the public sync API to its async twins:
``M.filter(...)`` runs ``await M.afilter(...)``, ``obj.set()`` runs ``await obj.aset()``,
``for obj in query`` pulls from ``async for``, ``with transaction(...)`` commits with
``acommit()``. The async methods use an asyncio client of the same database (a
``fakeredis.FakeAsyncRedis`` on the same ``FakeServer``, or a ``redis.asyncio.Redis`` with
the same connection settings), one per thread and event loop. So every assertion of a
test written against the sync API checks the async API's results too.

Not routed (the sync method runs, as "another client" would): a call made while this
thread's event loop is already running (a racing writer inside a hook), and a write
queued on a user's sync redis pipeline (``pipeline=client.pipeline()``; the async API
queues on asyncio pipelines, tested in ``tests/integration/test_async.py``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio

from redis_schematics import BaseRedisMixin
from redis_schematics.io import is_async_client, is_cluster_client
from redis_schematics.query import Query
from redis_schematics.settings import Settings
from redis_schematics.transaction import Transaction
from tests.cluster import async_cluster_twin

#: sync method -> async twin, on the model classes and instances
MODEL_METHODS = {
    "set": "aset",
    "refresh": "arefresh",
    "delete": "adelete",
    "match_for_pk": "amatch_for_pk",
    "match_for_pks": "amatch_for_pks",
    "match_for_values": "amatch_for_values",
    "match": "amatch",
    "all": "aall",
    "filter": "afilter",
    "count": "acount",
    "update": "aupdate",
    "set_many": "aset_many",
    "delete_many": "adelete_many",
    "delete_filter": "adelete_filter",
    "delete_all": "adelete_all",
    "purge_expired": "apurge_expired",
    "check_indexes": "acheck_indexes",
    "rebuild_indexes": "arebuild_indexes",
}
CLASS_METHODS = set(MODEL_METHODS) - {"set", "refresh", "delete"}
QUERY_METHODS = {"rows": "arows", "all": "aall", "first": "afirst", "count": "acount", "delete": "adelete"}


class Loops(threading.local):
    """One event loop per thread, and the asyncio twin of each sync client on it."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clients: dict[int, Any] = {}


def async_twin(client: Any) -> Any:
    """An asyncio client of the database ``client`` (sync) talks to."""
    if is_cluster_client(client):
        return async_cluster_twin(client)
    kw = client.connection_pool.connection_kwargs
    if isinstance(client, fakeredis.FakeRedis):
        server = kw.get("server")
        if server is None:  # made without one: its connections share the server they made
            connection = client.connection_pool.get_connection()
            server = connection._server
            client.connection_pool.release(connection)
        return fakeredis.FakeAsyncRedis(
            server=server, db=kw.get("db", 0), decode_responses=kw.get("decode_responses", False)
        )
    keep = ("host", "port", "db", "username", "password", "decode_responses", "socket_timeout", "protocol")
    options = {k: kw[k] for k in keep if k in kw}
    if "path" in kw:
        options = {k: v for k, v in options.items() if k not in ("host", "port")}
        options["unix_socket_path"] = kw["path"]
    return redis.asyncio.Redis(**options)


class AsyncMode:
    """Routes the sync API to the async twins while active (see the module docstring)."""

    #: the mode of the running test, if it routes to the async API
    current: AsyncMode | None = None

    def __init__(self) -> None:
        self.loops = Loops()
        self.made: list[tuple[asyncio.AbstractEventLoop, list[tuple[Any, Any]]]] = []
        self.lock = threading.Lock()
        #: id(sync client) -> functions applied to each of its async twins
        self.hooks: dict[int, list[Callable[[Any], None]]] = {}

    def on_twins(self, client: Any, hook: Callable[[Any], None]) -> None:
        """Apply ``hook`` to every async twin of ``client``, made or to be made."""
        self.hooks.setdefault(id(client), []).append(hook)
        for _loop, clients in self.made:
            for source, twin in clients:
                if source is client:
                    hook(twin)

    def loop(self) -> asyncio.AbstractEventLoop:
        if self.loops.loop is None:
            self.loops.loop = asyncio.new_event_loop()
            with self.lock:
                self.made.append((self.loops.loop, []))
        return self.loops.loop

    def twin(self, client: Any) -> Any:
        found = self.loops.clients.get(id(client))
        if found is None:
            found = self.loops.clients[id(client)] = async_twin(client)
            loop = self.loop()
            with self.lock:
                made = next(clients for each, clients in self.made if each is loop)
                made.append((client, found))
            for hook in self.hooks.get(id(client), ()):
                hook(found)
        return found

    def busy(self) -> bool:
        return self.loops.loop is not None and self.loops.loop.is_running()

    def run(self, awaitable: Any) -> Any:
        return self.loop().run_until_complete(awaitable)

    def close(self) -> None:
        for loop, clients in self.made:
            for _source, client in clients:
                loop.run_until_complete(client.aclose())
            loop.close()
        self.made.clear()


def _routed(mode: AsyncMode, name: str, twin: str, original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            pipeline = signature.bind(self, *args, **kwargs).arguments.get("pipeline")
        except TypeError:  # a wrong call: let the method say so
            pipeline = None
        if mode.busy() or (pipeline is not None and not isinstance(pipeline, Transaction)):
            return original(self, *args, **kwargs)
        return mode.run(getattr(self, twin)(*args, **kwargs))

    return call


@contextmanager
def async_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[AsyncMode]:
    """While the block runs, the public sync API is served by the async twins."""
    mode = AsyncMode()
    real_async_client = Settings.async_client

    def async_client(self: Settings) -> Any:
        if getattr(self.model, "__redis_async_client__", None) is not None:
            return real_async_client(self)
        return mode.twin(self.sync_client())

    monkeypatch.setattr(Settings, "async_client", async_client)
    for name, twin in MODEL_METHODS.items():
        original = getattr(BaseRedisMixin, name)
        if name in CLASS_METHODS:
            routed = _routed(mode, name, twin, original.__func__)
            monkeypatch.setattr(BaseRedisMixin, name, classmethod(routed))
        else:
            monkeypatch.setattr(BaseRedisMixin, name, _routed(mode, name, twin, original))
    for name, twin in QUERY_METHODS.items():
        monkeypatch.setattr(Query, name, _routed(mode, name, twin, getattr(Query, name)))
    sync_iter = Query.__iter__

    def iterate(self: Query) -> Iterator[Any]:
        if mode.busy():
            yield from sync_iter(self)
            return
        stream = self.__aiter__()
        while True:
            try:
                yield mode.run(stream.__anext__())
            except StopAsyncIteration:
                return

    monkeypatch.setattr(Query, "__iter__", iterate)
    sync_commit = Transaction.commit

    def commit(self: Transaction) -> None:
        if mode.busy():
            sync_commit(self)
            return
        if self.client is not None and not is_async_client(self.client):
            self.client = mode.twin(self.client)
        mode.run(self.acommit())

    monkeypatch.setattr(Transaction, "commit", commit)
    AsyncMode.current = mode
    try:
        yield mode
    finally:
        AsyncMode.current = None
        monkeypatch.undo()
        mode.close()
