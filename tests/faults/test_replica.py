"""Reads on a read-only replica, expiring models included; writes refused there.

A primary and its replica are throwaway servers (tests/faults/servers.py, 127.0.0.1,
ports 7100-7199), started once for the module and always stopped. Objects are written
through the primary, some of them left to expire, and replicated (``WAIT``); then a model
bound to the replica runs every read method, sync and async.

What must hold:

* every read works on the replica and is right: an expired object is never returned or
  counted, although the replica refuses its clean-up (a read meeting an expired object
  tries to purge it, and that write is refused: the replica's ``errorstat_READONLY``
  counts each attempt);
* after a refusal the reads stop trying for ``READ_ONLY_RECHECK`` seconds;
* an explicit ``purge_expired()`` and every write raise ``ReadOnlyServer`` and write
  nothing;
* ``__purge_on_read__ = False``: reads never write, also on a primary.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from redis_schematics import engine as engine_module
from redis_schematics.exceptions import ConfigurationError, NotFound, ReadOnlyServer
from tests.conftest import LAYOUTS
from tests.faults.servers import ThrowawayRedis
from tests.models import ice_cream

pytestmark = pytest.mark.real

#: ``__expire__`` of the objects that expire (their payload stays 2 * SHORT: indexes)
SHORT = 2
#: ``__expire__`` of the objects that stay alive during the test
LONG = 120
#: the layouts, and a sharded model (two shards sharing one clean-up memory)
VARIANTS: dict[str, tuple[type, dict[str, Any]]] = {
    **{name: (base, {}) for name, base in LAYOUTS.items()},
    "sharded": (LAYOUTS["simple"], {"shards": 2, "shard_by": "code"}),
}
EXPIRED = ["a0", "a1", "a2", "a3"]
ALIVE = ["b0", "b1", "b2"]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThrowawayRedis, ThrowawayRedis]]:
    """A primary and its replica (link up), stopped after the module."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("REDIS_REQUIRED") == "1":
            pytest.fail("REDIS_REQUIRED=1 but redis-server is not on PATH")
        pytest.skip("redis-server is not installed")
    primary = ThrowawayRedis(binary, Path(tmp_path_factory.mktemp("primary")))
    replica = ThrowawayRedis(binary, Path(tmp_path_factory.mktemp("replica")))
    try:
        primary.start()
        replica.start()  # a primary first: start() proves readiness with a write
        probe = replica.client(socket_timeout=5)
        try:
            probe.replicaof("127.0.0.1", primary.port)
            deadline = time.monotonic() + 15
            while probe.info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica never linked to the primary"
                time.sleep(0.05)
        finally:
            probe.close()
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


def refusals(client: redis.Redis) -> int:
    """How many commands the server refused as a read-only replica, so far."""
    found = client.info("errorstats").get("errorstat_READONLY", {})
    return int(found.get("count", 0)) if isinstance(found, dict) else 0


def replicate(primary: redis.Redis) -> None:
    assert primary.wait(1, 2000) == 1


def ids(objs: Any) -> list[Any]:
    return [None if o is None else o.id for o in objs]


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except NotFound:
        return "NotFound"


async def aoutcome(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await call()
    except NotFound:
        return "NotFound"


def prepared(variant: str, primary: redis.Redis, replica: redis.Redis, prefix: str) -> Any:
    """The model of ``variant`` bound to ``replica``, after EXPIRED expired and ALIVE
    were written (all flavour "mint", vegan, amount_kg 0-3 and 10-12) and replicated."""
    base, extra = VARIANTS[variant]
    short = ice_cream(base, primary, expire=SHORT, prefix=prefix, **extra)
    lasting = ice_cream(base, primary, expire=LONG, prefix=prefix, **extra)
    short.set_many(
        short({"id": pk, "flavour": "mint", "vegan": True, "amount_kg": n, "code": pk})
        for n, pk in enumerate(EXPIRED)
    )
    time.sleep(SHORT + 0.2)
    lasting.set_many(
        lasting({"id": pk, "flavour": "mint", "vegan": True, "amount_kg": 10 + n, "code": pk})
        for n, pk in enumerate(ALIVE)
    )
    replicate(primary)
    return ice_cream(base, replica, expire=LONG, prefix=prefix, **extra)


def sync_reads(m: Any) -> list[tuple[str, Callable[[], Any], Any, bool | None]]:
    """(name, read, its right result, does it meet an expired object?)"""
    page = m.query(flavour="mint").order_by("-amount_kg").limit(2)
    return [
        ("all", lambda: ids(m.all()), ALIVE, True),
        ("filter", lambda: ids(m.filter(flavour="mint")), ALIVE, True),
        ("filter range", lambda: ids(m.filter(amount_kg__gte=0)), ALIVE, True),
        ("count", lambda: m.count(flavour="mint"), 3, True),
        ("count range", lambda: m.count(amount_kg__lt=100), 3, True),
        ("count all", lambda: m.count(), 3, False),
        # None: it depends on the plan (a page walks the order index and may stop before
        # it meets an expired object, run_query.lua); the result must be right either way
        ("order_by limit", lambda: ids(page.all()), ["b2", "b1"], None),
        ("first", lambda: m.query().order_by("amount_kg").first().id, "b0", True),
        ("iterate", lambda: sorted(ids(list(m.query(vegan=True)))), ALIVE, True),
        ("match_for_pks", lambda: ids(m.match_for_pks(["a0", "b0", "a1"])), [None, "b0", None], True),
        ("match_for_pk expired", lambda: m.match_for_pk("a2"), "NotFound", True),
        ("match_for_pk alive", lambda: m.match_for_pk("b1").id, "b1", False),
        ("match unique expired", lambda: m.match(code="a3"), "NotFound", True),
        ("check_indexes", lambda: m.check_indexes(), [], False),
    ]  # fmt: skip


def async_reads(m: Any) -> list[tuple[str, Callable[[], Awaitable[Any]], Any, bool | None]]:
    async def listed(q: Any) -> list[Any]:
        return sorted([o.id async for o in q])

    async def first(q: Any) -> Any:
        return (await q.afirst()).id

    async def one(call: Awaitable[Any]) -> Any:
        return (await call).id

    async def idlist(call: Awaitable[Any]) -> list[Any]:
        return ids(await call)

    page = m.query(flavour="mint").order_by("-amount_kg").limit(2)
    return [
        ("aall", lambda: idlist(m.aall()), ALIVE, True),
        ("afilter", lambda: idlist(m.afilter(flavour="mint")), ALIVE, True),
        ("afilter range", lambda: idlist(m.afilter(amount_kg__gte=0)), ALIVE, True),
        ("acount", lambda: m.acount(flavour="mint"), 3, True),
        ("acount all", lambda: m.acount(), 3, False),
        ("order_by limit aall", lambda: idlist(page.aall()), ["b2", "b1"], None),
        ("afirst", lambda: first(m.query().order_by("amount_kg")), "b0", True),
        ("async for", lambda: listed(m.query(vegan=True)), ALIVE, True),
        ("amatch_for_pks", lambda: idlist(m.amatch_for_pks(["a0", "b0", "a1"])), [None, "b0", None], True),
        ("amatch_for_pk expired", lambda: m.amatch_for_pk("a2"), "NotFound", True),
        ("amatch_for_pk alive", lambda: one(m.amatch_for_pk("b1")), "b1", False),
        ("amatch unique expired", lambda: m.amatch(code="a3"), "NotFound", True),
        ("acheck_indexes", lambda: m.acheck_indexes(), [], False),
    ]  # fmt: skip


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_read_works_on_a_replica(
    servers: tuple[ThrowawayRedis, ThrowawayRedis], variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, replica = servers
    p, r = primary.client(socket_timeout=5), replica.client(socket_timeout=5)
    try:
        reader = prepared(variant, p, r, f"Read{variant}")
        # every read tries its clean-up (no memory of the last refusal), and is refused
        monkeypatch.setattr(engine_module, "READ_ONLY_RECHECK", 0.0)
        for name, read, right, meets_expired in sync_reads(reader):
            before = refusals(r)
            assert outcome(read) == right, name
            tried = refusals(r) - before
            if meets_expired is not None:
                assert tried >= 1 if meets_expired else tried == 0, (name, tried)

        async def run_async() -> None:
            client = redis.asyncio.Redis(host="127.0.0.1", port=replica.port, socket_timeout=5)
            reader.__redis_async_client__ = client
            try:
                for name, read, right, meets_expired in async_reads(reader):
                    before = refusals(r)
                    assert (await aoutcome(read)) == right, name
                    tried = refusals(r) - before
                    if meets_expired is not None:
                        assert tried >= 1 if meets_expired else tried == 0, (name, tried)
                monkeypatch.setattr(engine_module, "READ_ONLY_RECHECK", 60.0)
                before = refusals(r)
                assert ids(await reader.afilter(flavour="mint")) == ALIVE  # refused: remembered
                assert refusals(r) > before
                before = refusals(r)
                assert ids(await reader.afilter(flavour="mint")) == ALIVE  # no attempt now
                assert refusals(r) == before
            finally:
                await client.aclose()

        asyncio.run(run_async())
        # the memory is the model's, sync and async alike
        before = refusals(r)
        assert ids(reader.filter(flavour="mint")) == ALIVE
        assert reader.count(vegan=True) == 3
        assert refusals(r) == before
        # an explicit purge is a write: refused, not swallowed
        with pytest.raises(ReadOnlyServer, match="read-only replica"):
            reader.purge_expired()
        # nothing was purged: the expired objects are still listed on the primary
        members = [reader._engine().keys.members()] if variant != "sharded" else []
        members += [s.keys.members() for s in reader._engine().shards]
        assert sum(p.zcard(key) for key in members) == len(EXPIRED) + len(ALIVE)
    finally:
        p.close()
        r.close()


@pytest.mark.parametrize("variant", ["simple", "hash"])
def test_a_write_through_a_replica_raises_and_writes_nothing(
    servers: tuple[ThrowawayRedis, ThrowawayRedis], variant: str
) -> None:
    primary, replica = servers
    p, r = primary.client(socket_timeout=5), replica.client(socket_timeout=5)
    base, _extra = VARIANTS[variant]
    prefix = f"Write{variant}"
    try:
        writer = ice_cream(base, p, expire=LONG, prefix=prefix)
        writer({"id": "w1", "flavour": "mint", "amount_kg": 1, "code": "w1"}).set()
        replicate(p)
        reader = ice_cream(base, r, expire=LONG, prefix=prefix)
        before = {k: p.dump(k) for k in p.keys(f"*{prefix}*")}
        fresh = reader({"id": "w2", "flavour": "lemon", "amount_kg": 2, "code": "w2"})
        changed = reader.match_for_pk("w1")
        changed.flavour = "lemon"

        def renamed(obj: Any) -> None:
            obj.flavour = "lemon"

        writes: list[tuple[str, Callable[[], Any]]] = [
            ("set new", fresh.set),
            ("set changed", changed.set),
            ("set_many", lambda: reader.set_many([fresh])),
            ("update", lambda: reader.update("w1", renamed)),
            ("delete", changed.delete),
            ("delete_many", lambda: reader.delete_many(["w1"])),
            ("delete_filter", lambda: reader.delete_filter(flavour="mint")),
        ]
        for name, write in writes:
            with pytest.raises(ReadOnlyServer, match="read-only replica; nothing was written") as caught:
                write()
            assert prefix in str(caught.value), name

        async def run_async() -> None:
            client = redis.asyncio.Redis(host="127.0.0.1", port=replica.port, socket_timeout=5)
            reader.__redis_async_client__ = client
            try:
                with pytest.raises(ReadOnlyServer, match="read-only replica"):
                    await fresh.aset()
                with pytest.raises(ReadOnlyServer, match="read-only replica"):
                    await reader.adelete_many(["w1"])
            finally:
                await client.aclose()

        asyncio.run(run_async())
        replicate(p)
        assert {k: p.dump(k) for k in p.keys(f"*{prefix}*")} == before
        assert writer.match_for_pk("w1").flavour == "mint"
        assert reader.match_for_pk("w1").flavour == "mint"
        assert reader.match_for_pks(["w2"]) == [None]
    finally:
        p.close()
        r.close()


def test_purge_on_read_false_never_writes(servers: tuple[ThrowawayRedis, ThrowawayRedis]) -> None:
    primary, _replica = servers
    p = primary.client(socket_timeout=5)
    base = LAYOUTS["simple"]
    try:
        quiet = ice_cream(base, p, expire=1, prefix="Quiet", purge_on_read=False)
        purging = ice_cream(base, p, expire=1, prefix="Purging")
        for model in (quiet, purging):
            model.set_many(model({"id": f"q{n}", "flavour": "mint", "code": f"q{n}"}) for n in range(3))
        time.sleep(1.2)
        for model in (quiet, purging):
            assert model.filter(flavour="mint") == []
            assert model.match_for_pks(["q0", "q1"]) == [None, None]
            assert model.count(flavour="mint") == 0
        assert p.zcard(quiet._engine().keys.members()) == 3  # reads never wrote
        assert p.zcard(purging._engine().keys.members()) == 0  # the default: reads purge
        assert quiet.purge_expired() == 3  # explicit clean-up still works
    finally:
        p.close()


def test_purge_on_read_is_checked() -> None:
    base = LAYOUTS["simple"]
    with pytest.raises(ConfigurationError, match=r"IceCream\.__purge_on_read__ must be True .* not 'no'"):
        ice_cream(base, None, expire=1, prefix="Checked", purge_on_read="no")
    with pytest.raises(ConfigurationError, match="__purge_on_read__"):  # a misspelling
        ice_cream(base, None, expire=1, prefix="Checked", purge_on_reads=False)
