"""Checked by mypy (``.ci/run``; not run by pytest): the async API's types.

``assert_type`` lines must hold; a line marked ``# type: ignore[...]`` must be an error
(mypy's ``warn_unused_ignores``, on under ``strict``, fails the run otherwise).
"""

from __future__ import annotations

from redis.asyncio import Redis
from schematics import models, types
from typing_extensions import assert_type

from redis_schematics import SimpleRedisMixin, atransaction


class IceCream(models.Model, SimpleRedisMixin):
    __redis_async_client__ = Redis()
    id = types.StringType()
    flavour = types.StringType()


async def uses() -> None:
    one = await IceCream.amatch_for_pk("v1")
    assert_type(one, IceCream)
    assert_type(await IceCream.amatch(id="v1"), IceCream)
    assert_type(await IceCream.afilter(flavour="vanilla"), list[IceCream])
    assert_type(await IceCream.aall(), list[IceCream])
    assert_type(await IceCream.amatch_for_pks(["a", "b"]), list[IceCream | None])
    assert_type(await IceCream.acount(flavour="vanilla"), int)
    assert_type(await IceCream.adelete_filter(flavour="x"), int)
    assert_type(await one.aset(), IceCream)
    assert_type(await one.arefresh(), IceCream)
    assert_type(await one.adelete(), bool)
    assert_type(await IceCream.aupdate("v1", lambda ice: None), IceCream)
    async with atransaction() as tx:
        await one.aset(pipeline=tx)

    # a missing await is an error where the value is used as the result
    missing: IceCream = IceCream.amatch_for_pk("v1")  # type: ignore[assignment]
    rows: list[IceCream] = IceCream.afilter(flavour="x")  # type: ignore[assignment]
    count: int = IceCream.acount()  # type: ignore[assignment]
    del missing, rows, count
