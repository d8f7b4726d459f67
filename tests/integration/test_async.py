"""What only the async API has: its client settings, streaming and fairness, atransaction,
asyncio pipelines, cancellation, and a parity test with the sync API.

(Every other behavioural test also runs through the async API: the ``-async`` kinds of the
``client`` / ``backend`` fixtures, tests/asyncmode.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from redis_schematics import (
    SimpleRedisModel,
    UniqueIndex,
    atransaction,
)
from redis_schematics.exceptions import ConfigurationError, NotFound, UniqueViolation
from redis_schematics.io import RunScript
from tests.asyncmode import async_twin
from tests.conftest import LAYOUTS, real_client
from tests.dbstate import db_state
from tests.models import ice_cream
from tests.races import intercepting


@pytest.fixture(
    params=[pytest.param("fake", marks=pytest.mark.fake), pytest.param("real", marks=pytest.mark.real)]
)
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Callable[[], Any]]]:
    """A sync client and a factory of asyncio clients of the same (flushed) database."""
    if request.param == "fake":
        sync: Any = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    else:
        sync = real_client(request.config)
    yield sync, lambda: async_twin(sync)
    if request.param == "real":
        sync.flushdb()
    sync.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- which client ---------------------------------------------------------------------------


def test_a_sync_method_on_an_async_only_model_names_the_setting() -> None:
    model = ice_cream(SimpleRedisModel, None, redis_async_client=redis.asyncio.Redis())
    with pytest.raises(ConfigurationError, match=r"IceCream has only an async client.*__redis_client__"):
        model.filter(flavour="x")
    model.__redis_client__ = redis.asyncio.Redis()
    with pytest.raises(ConfigurationError, match=r"IceCream.__redis_client__ is an asyncio client"):
        model({"id": "1"}).set()


def test_an_async_method_on_a_sync_only_model_names_the_setting() -> None:
    model = ice_cream(SimpleRedisModel, fakeredis.FakeRedis())
    with pytest.raises(ConfigurationError, match=r"IceCream.__redis_async_client__ is not set"):
        run(model.afilter(flavour="x"))
    model.__redis_async_client__ = fakeredis.FakeRedis()
    with pytest.raises(ConfigurationError, match=r"__redis_async_client__ is a sync client \(FakeRedis\)"):
        run(model.acount())


def test_an_async_redis_client_serves_the_async_methods(pair: tuple[Any, Callable[[], Any]]) -> None:
    sync, make = pair

    async def main() -> None:
        client = make()
        model = ice_cream(SimpleRedisModel, client)  # __redis_client__ itself is asyncio
        await model({"id": "1", "flavour": "mint"}).aset()
        assert [o.id for o in await model.afilter(flavour="mint")] == ["1"]
        await client.aclose()

    run(main())
    assert sync.exists("IceCream:1")


def test_client_settings_may_be_callables_resolved_per_call(pair: tuple[Any, Callable[[], Any]]) -> None:
    """A zero-argument callable is called on each use: each event loop gets its own
    client, and none is made at import (class creation) time."""
    sync, make = pair
    made: list[Any] = []

    def per_loop() -> Any:
        loop = asyncio.get_running_loop()
        for owner, client in made:
            if owner is loop:
                return client
        client = make()
        made.append((loop, client))
        return client

    model = ice_cream(SimpleRedisModel, lambda: sync, redis_async_client=per_loop)
    assert made == []
    model({"id": "s", "flavour": "x"}).set()  # the sync callable

    async def once(pk: str) -> int:
        await model({"id": pk, "flavour": "x"}).aset()
        found = await model.acount(flavour="x")
        await made[-1][1].aclose()
        return found

    assert run(once("a")) == 2
    assert run(once("b")) == 3  # a second loop, a second client
    assert len(made) == 2
    assert model.count(flavour="x") == 3


# -- streaming and fairness -----------------------------------------------------------------------


def test_async_for_streams_in_batches(pair: tuple[Any, Callable[[], Any]]) -> None:
    sync, make = pair
    model = ice_cream(SimpleRedisModel, sync)
    model.set_many([model({"id": f"{i:04d}", "flavour": "ab"[i % 2]}) for i in range(1100)])

    async def main() -> tuple[int, int]:
        client = make()
        model.__redis_async_client__ = client
        seen = [o async for o in model.query()]
        only_a = [o async for o in model.query(flavour="a")]
        await client.aclose()
        return len(seen), len(only_a)

    assert run(main()) == (1100, 550)


def test_a_long_load_lets_other_tasks_run_between_batches(pair: tuple[Any, Callable[[], Any]]) -> None:
    sync, make = pair
    model = ice_cream(SimpleRedisModel, sync)
    model.set_many([model({"id": f"{i:04d}", "flavour": "x"}) for i in range(1600)])  # 4 batches

    async def main() -> tuple[int, int]:
        client = make()
        model.__redis_async_client__ = client
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        found = await model.afilter(flavour="x")
        during = ticks - before
        done = True
        await task
        await client.aclose()
        return len(found), during

    found, during = run(main())
    assert found == 1600
    assert during >= 3  # at least once between each of the 4 batches


# -- transactions and pipelines -----------------------------------------------------------------


def test_atransaction_is_all_or_nothing(pair: tuple[Any, Callable[[], Any]]) -> None:
    sync, make = pair
    model = ice_cream(SimpleRedisModel, sync, indexes=("flavour", UniqueIndex("code")))
    model({"id": "owner", "code": "X"}).set()
    before = db_state(sync)

    async def main() -> None:
        client = make()
        model.__redis_async_client__ = client

        async def clashing() -> None:
            async with atransaction() as tx:
                await model({"id": "a", "flavour": "mint"}).aset(pipeline=tx)
                await model({"id": "b", "code": "X"}).aset(pipeline=tx)

        async def raising() -> None:
            async with atransaction(client) as tx:
                await model({"id": "c"}).aset(pipeline=tx)
                raise RuntimeError

        with pytest.raises(UniqueViolation):
            await clashing()
        assert db_state(sync) == before
        with pytest.raises(RuntimeError):
            await raising()
        assert db_state(sync) == before
        async with atransaction(client) as tx:
            await model({"id": "d", "flavour": "mint"}).aset(pipeline=tx)
            assert await model.adelete_many(["owner"], pipeline=tx) == 1
            assert await model.acount() == 1  # nothing applied inside the block
        assert sorted(o.id for o in await model.aall()) == ["d"]
        await client.aclose()

    run(main())
    assert model.check_indexes() == []


def test_writes_queue_on_an_asyncio_pipeline(pair: tuple[Any, Callable[[], Any]]) -> None:
    sync, make = pair
    model = ice_cream(SimpleRedisModel, sync)
    model({"id": "gone", "flavour": "x"}).set()

    async def main() -> None:
        client = make()
        model.__redis_async_client__ = client
        pipe = client.pipeline(transaction=True)
        await model({"id": "a", "flavour": "mint"}).aset(pipeline=pipe)
        assert await model.adelete_many(["gone"], pipeline=pipe) == 1
        assert await model.acount() == 1  # queued, not applied
        await pipe.execute()
        assert [o.id for o in await model.afilter(flavour="mint")] == ["a"]
        await client.aclose()

    run(main())
    assert model.check_indexes() == []


# -- cancellation ----------------------------------------------------------------------------


def test_a_cancelled_write_may_be_applied_and_repeating_it_is_safe(
    pair: tuple[Any, Callable[[], Any]],
) -> None:
    """The reply of an applied write is lost to a cancellation: the write happened. Doing
    the same write again ends in the same state as doing it once."""
    sync, make = pair
    model = ice_cream(SimpleRedisModel, sync)
    model({"id": "a", "flavour": "vanilla", "amount_kg": 1}).set()
    once = ice_cream(SimpleRedisModel, fakeredis.FakeRedis(server=fakeredis.FakeServer()))

    async def main() -> None:
        client = make()
        model.__redis_async_client__ = client
        sent: list[Any] = []

        def lose_reply(request: Any) -> Any:
            if isinstance(request, RunScript) and request.name == "apply_write" and not sent:
                sent.append(request)
                sync.execute_command(
                    "EVAL", _source("apply_write"), len(request.keys), *request.keys, *request.args
                )
                raise asyncio.CancelledError  # applied; the caller never hears back
            return request

        obj = model({"id": "b", "flavour": "mint", "amount_kg": 2})  # new: one script call
        with intercepting(lose_reply), pytest.raises(asyncio.CancelledError):
            await obj.aset()
        assert (await model.amatch_for_pk("b")).flavour == "mint"  # it was applied
        await obj.aset()  # the caller repeats it
        await client.aclose()

    run(main())
    once({"id": "a", "flavour": "vanilla", "amount_kg": 1}).set()
    once({"id": "b", "flavour": "mint", "amount_kg": 2}).set()
    assert db_state(sync) == db_state(once.__redis_client__)


def test_an_update_resent_after_a_lost_reply_applies_once(pair: tuple[Any, Callable[[], Any]]) -> None:
    """``aupdate`` sends an idempotency token with its write: the same call sent again (a
    resend after its reply was lost) returns "applied" and writes nothing more."""
    sync, make = pair
    model = ice_cream(SimpleRedisModel, sync)
    model({"id": "a", "amount_kg": 1}).set()

    async def main() -> None:
        client = make()
        model.__redis_async_client__ = client
        sent: list[Any] = []

        def keep(request: Any) -> Any:
            if isinstance(request, RunScript) and request.name == "apply_write":
                sent.append(request)
            return request

        with intercepting(keep):
            await model.aupdate("a", lambda o: setattr(o, "amount_kg", o.amount_kg + 1))
        assert len(sent) == 1
        after = db_state(sync)
        again = sent[0]
        reply = await client.execute_command(
            "EVAL", _source("apply_write"), len(again.keys), *again.keys, *again.args
        )
        assert reply == 1
        assert db_state(sync) == after
        assert (await model.amatch_for_pk("a")).amount_kg == 2
        await client.aclose()

    run(main())


def _source(name: str) -> str:
    from redis_schematics.io.scripts import script

    return script(name).source


# -- parity: the same operations through both APIs -----------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["set", "set_many", "delete", "delete_filter", "update", "partial", "purge"]),
        st.integers(0, 7),
        st.sampled_from(["vanilla", "mint", "fig", None]),
        st.integers(0, 9),
    ),
    max_size=25,
)


def _apply_sync(model: Any, op: tuple[str, int, Any, int]) -> Any:
    name, n, flavour, amount = op
    pk = f"p{n}"
    data = {"id": pk, "flavour": flavour, "amount_kg": amount, "code": f"c{amount}"}
    try:
        if name == "set":
            return model(data).set() and None
        if name == "set_many":
            return model.set_many([model(data), model({**data, "id": f"q{n}", "code": None})])
        if name == "delete":
            return model.delete_many([pk, f"q{n}"])
        if name == "delete_filter":
            return model.delete_filter(flavour=flavour, amount_kg__lt=amount)
        if name == "update":
            return model.update(pk, lambda o: setattr(o, "amount_kg", (o.amount_kg or 0) + 1)).amount_kg
        if name == "partial":
            return model(data).set(only=["flavour"]) and None
        return (model.count(flavour=flavour), [o.id for o in model.query().order_by("-amount_kg").limit(3)])
    except (NotFound, UniqueViolation) as exc:
        return type(exc).__name__


async def _apply_async(model: Any, op: tuple[str, int, Any, int]) -> Any:
    name, n, flavour, amount = op
    pk = f"p{n}"
    data = {"id": pk, "flavour": flavour, "amount_kg": amount, "code": f"c{amount}"}
    try:
        if name == "set":
            return await model(data).aset() and None
        if name == "set_many":
            return await model.aset_many([model(data), model({**data, "id": f"q{n}", "code": None})])
        if name == "delete":
            return await model.adelete_many([pk, f"q{n}"])
        if name == "delete_filter":
            return await model.adelete_filter(flavour=flavour, amount_kg__lt=amount)
        if name == "update":
            found = await model.aupdate(pk, lambda o: setattr(o, "amount_kg", (o.amount_kg or 0) + 1))
            return found.amount_kg
        if name == "partial":
            return await model(data).aset(only=["flavour"]) and None
        rows = [o.id async for o in model.query().order_by("-amount_kg").limit(3)]
        return (await model.acount(flavour=flavour), rows)
    except (NotFound, UniqueViolation) as exc:
        return type(exc).__name__


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_sync_and_async_apis_leave_identical_contents(
    layout: str, pair: tuple[Any, Callable[[], Any]]
) -> None:
    """The same random operations through the sync API (prefix A) and the async API
    (prefix B) return the same results and leave the same keys and contents."""
    sync, make = pair
    indexes = ("flavour", "amount_kg", UniqueIndex("code"))
    a = ice_cream(LAYOUTS[layout], sync, prefix="ParityA", indexes=indexes)
    b = ice_cream(LAYOUTS[layout], sync, prefix="ParityB", indexes=indexes)

    def renamed(state: dict[str, Any], prefix: str) -> dict[str, Any]:
        # update()'s idempotency tokens are random: compared by number, not by name
        tokens = sum(1 for k in state if "#once:" in k)
        out = {
            k.replace(prefix, "P"): _renamed_value(v, prefix) for k, v in state.items() if "#once:" not in k
        }
        return {**out, "tokens": tokens}

    @settings(max_examples=15, deadline=None)
    @given(ops=OPS)
    def check(ops: list[tuple[str, int, Any, int]]) -> None:
        sync.flushdb()

        async def both() -> None:
            client = make()
            b.__redis_async_client__ = client
            for op in ops:
                assert _apply_sync(a, op) == await _apply_async(b, op), op
            await client.aclose()

        run(both())
        everything = db_state(sync)
        left = {k: v for k, v in everything.items() if k.startswith(("ParityA", "{ParityA"))}
        right = {k: v for k, v in everything.items() if k.startswith(("ParityB", "{ParityB"))}
        assert renamed(left, "ParityA") == renamed(right, "ParityB")

    check()


def _renamed_value(value: Any, prefix: str) -> Any:
    kind, content, expires = value
    if isinstance(content, dict):
        content = {str(k).replace(prefix, "P"): v for k, v in content.items()}
    return kind, content, expires
