"""Section 7, async: the asyncio API against its sync twin, in the same run.

* one ``await Model.amatch_for_pk(pk)`` / ``await Model.afilter(...)`` against the same
  sync call (the per-call cost of the async driver: target <= 1.3x);
* redis-py's own asyncio client against its sync client, one command (the floor the
  two rows above stand on);
* 100 ``afilter`` calls at once with ``asyncio.gather`` on one connection pool against
  the same 100 calls made one after another with the sync API (seconds per query: below
  1x is more throughput; the async client overlaps the round trips).

Each async sample runs its calls inside one coroutine on one event loop, so the loop's own
start-up is not counted against a call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import redis.asyncio

from benchmarks import workload as w
from benchmarks.cases import Bench, read_set
from benchmarks.report import Row, Target
from benchmarks.timing import compare

#: concurrent calls of the gather case
CONCURRENT = 100


def _on_loop(
    loop: asyncio.AbstractEventLoop, make: Callable[[], Coroutine[Any, Any, int]]
) -> Callable[[], int]:
    return lambda: loop.run_until_complete(make())


def asyncio_api(b: Bench) -> None:
    """``amatch_for_pk`` / ``afilter`` vs their sync twins, and 100 concurrent ``afilter``."""
    b.say("async: amatch_for_pk, afilter, gather")
    model, pks = read_set(b)
    kw = b.client.connection_pool.connection_kwargs
    loop = asyncio.new_event_loop()
    aclient = redis.asyncio.Redis(
        host=kw.get("host", "127.0.0.1"), port=kw.get("port", 6379), db=kw.get("db", 0)
    )
    model.__redis_async_client__ = aclient
    rare = {"flavour": w.RARE_FLAVOUR}

    async def by_pk() -> int:
        for pk in pks:
            await model.amatch_for_pk(pk)
        return len(pks)

    def by_pk_sync() -> int:
        for pk in pks:
            model.match_for_pk(pk)
        return len(pks)

    async def filters() -> int:
        for _ in range(20):
            await model.afilter(**rare)
        return 20

    def filters_sync() -> int:
        for _ in range(20):
            model.filter(**rare)
        return 20

    async def gathered() -> int:
        await asyncio.gather(*(model.afilter(**rare) for _ in range(CONCURRENT)))
        return CONCURRENT

    key = "Bench:" + pks[0]

    async def raw_async() -> int:
        for _ in range(200):
            await aclient.execute_command("MGET", key)
        return 200

    def raw_sync() -> int:
        for _ in range(200):
            b.client.execute_command("MGET", key)
        return 200

    def sequential() -> int:
        for _ in range(CONCURRENT):
            model.filter(**rare)
        return CONCURRENT

    try:
        t = compare(
            {
                "amatch": _on_loop(loop, by_pk),
                "match": by_pk_sync,
                "afilter": _on_loop(loop, filters),
                "filter": filters_sync,
                "gather": _on_loop(loop, gathered),
                "sequential": sequential,
                "raw_async": _on_loop(loop, raw_async),
                "raw_sync": raw_sync,
            },
            b.settings,
        )
    finally:
        loop.run_until_complete(aclient.aclose())
        loop.close()
    section = "7 async"
    rows = len(model.filter(**rare))
    b.add(
        Row(
            section,
            "redis.asyncio: await execute_command('MGET', key)",
            t["raw_async"],
            "s",
            "redis.Redis: execute_command('MGET', key)",
            t["raw_sync"],
            note="the client's own cost, for the rows below",
        )
    )
    b.add(
        Row(
            section,
            "await Model.amatch_for_pk(pk)",
            t["amatch"],
            "s",
            "Model.match_for_pk(pk)",
            t["match"],
            Target("ratio", "<=", 1.3),
        )
    )
    b.add(
        Row(
            section,
            f"await afilter(flavour='durian') -> {rows} rows",
            t["afilter"],
            "s",
            "the same filter(), sync",
            t["filter"],
            Target("ratio", "<=", 1.3),
        )
    )
    b.add(
        Row(
            section,
            f"{CONCURRENT} afilter() at once (gather), per query",
            t["gather"],
            "s",
            f"{CONCURRENT} sync filter() one after another",
            t["sequential"],
        )
    )
    b.flush()
