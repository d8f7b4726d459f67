"""The async twins of the model methods: ``await obj.aset()``, ``await Model.afilter()``...

Each twin runs the very flow its sync method runs (``redis_schematics.operations``, the
engine, ``execute``), with the async driver and the model's asyncio client
(``__redis_async_client__``, or an asyncio ``__redis_client__``). Arguments, results,
errors and guarantees are the sync method's; the docstrings say only what differs.

A cancelled call (``asyncio.CancelledError``, a timeout) may still have been applied by
Redis: a write that was sent is atomic, so it is either wholly applied or not at all,
and sending it again is safe (see ``docs/guarantees.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from redis_schematics import operations as op
from redis_schematics import upkeep
from redis_schematics.io import policy

if TYPE_CHECKING:
    from typing_extensions import Self

    from redis_schematics.engine import Engine
    from redis_schematics.query import Query


def with_policy(server: Any, found: list[upkeep.Problem]) -> list[upkeep.Problem]:
    """``found``, after an "eviction policy" problem when ``server`` can evict our keys
    (read by the driver before its first request: io/policy.py)."""
    risk = policy.risk(server)
    if risk is None:
        return found
    return [upkeep.Problem("eviction policy", "", "maxmemory-policy", risk), *found]


class AsyncMethods:
    """The ``a``-prefixed methods of every redis-schematics model."""

    if TYPE_CHECKING:

        @classmethod
        def _engine(cls) -> Engine: ...

        @classmethod
        def query(cls, **kwargs: Any) -> Query: ...

    # -- instance methods -----------------------------------------------------------------
    async def aset(self, pipeline: Any = None, only: Iterable[str] | None = None) -> Self:
        """Async twin of ``set()``; ``pipeline`` may be an ``atransaction()`` or an asyncio
        redis pipeline."""
        engine = self._engine()
        await engine.aio().run(engine.writes.save([self], pipeline, only))
        return self

    async def arefresh(self) -> Self:
        """Async twin of ``refresh()``."""
        engine = self._engine()
        await engine.aio().run(op.refresh(engine, self))
        return self

    async def adelete(self, pipeline: Any = None) -> bool:
        """Async twin of ``delete()``."""
        engine = self._engine()
        return bool(await engine.aio().run(op.delete_many(engine, [self], pipeline)))

    # -- reads ------------------------------------------------------------------------------
    @classmethod
    async def amatch_for_pk(cls, pk: Any, only: Iterable[str] | None = None) -> Self:
        """Async twin of ``match_for_pk()``."""
        engine = cls._engine()
        obj: Self = await engine.aio().run(op.match_for_pk(engine, pk, only))
        return obj

    @classmethod
    async def amatch_for_pks(cls, pks: Iterable[Any], only: Iterable[str] | None = None) -> list[Self | None]:
        """Async twin of ``match_for_pks()``."""
        engine = cls._engine()
        found: list[Self | None] = await engine.aio().run(op.match_for_pks(engine, pks, only))
        return found

    @classmethod
    async def amatch_for_values(cls, **kwargs: Any) -> Self:
        """Async twin of ``match_for_values()``."""
        engine = cls._engine()
        obj: Self = await engine.aio().run(op.match_for_values(engine, kwargs))
        return obj

    @classmethod
    async def amatch(cls, **kwargs: Any) -> Self:
        """Async twin of ``match()``."""
        engine = cls._engine()
        obj: Self = await engine.aio().run(op.match(engine, kwargs))
        return obj

    @classmethod
    async def aall(cls) -> list[Self]:
        """Async twin of ``all()``."""
        found: list[Self] = await cls.query().aall()
        return found

    @classmethod
    async def afilter(cls, **kwargs: Any) -> list[Self]:
        """Async twin of ``filter()``."""
        found: list[Self] = await cls.query(**kwargs).aall()
        return found

    @classmethod
    async def acount(cls, **kwargs: Any) -> int:
        """Async twin of ``count()``."""
        return await cls.query(**kwargs).acount()

    # -- writes -----------------------------------------------------------------------------
    @classmethod
    async def aupdate(cls, pk: Any, fn: Callable[[Self], Any], retries: int = 10) -> Self:
        """Async twin of ``update()``; ``fn`` is a plain (not async) function."""
        engine = cls._engine()
        flow = engine.writes.update(engine.records.check_pk(pk), fn, retries)
        obj: Self = await engine.aio().run(flow)
        return obj

    @classmethod
    async def aset_many(cls, objs: Iterable[Any], pipeline: Any = None) -> None:
        """Async twin of ``set_many()``."""
        engine = cls._engine()
        await engine.aio().run(engine.writes.save(list(objs), pipeline))

    @classmethod
    async def adelete_many(cls, objs_or_pks: Iterable[Any], pipeline: Any = None) -> int:
        """Async twin of ``delete_many()``."""
        engine = cls._engine()
        deleted: int = await engine.aio().run(op.delete_many(engine, objs_or_pks, pipeline))
        return deleted

    @classmethod
    async def adelete_filter(cls, **kwargs: Any) -> int:
        """Async twin of ``delete_filter()``."""
        return await cls.query(**kwargs).adelete()

    @classmethod
    async def adelete_all(cls) -> int:
        """Async twin of ``delete_all()``."""
        engine = cls._engine()
        return await engine.aio().run(engine.delete_all())

    # -- upkeep -----------------------------------------------------------------------------
    @classmethod
    async def apurge_expired(cls, batch: int = 500, max_batches: int | None = None) -> int:
        """Async twin of ``purge_expired()``."""
        engine = cls._engine()
        return await engine.aio().run(engine.purge_expired(batch, max_batches))

    @classmethod
    async def acheck_indexes(cls) -> list[upkeep.Problem]:
        """Async twin of ``check_indexes()``."""
        engine = cls._engine()
        driver = engine.aio()
        return with_policy(driver.server, await driver.run(upkeep.check(engine)))

    @classmethod
    async def arebuild_indexes(cls) -> int:
        """Async twin of ``rebuild_indexes()``."""
        engine = cls._engine()
        return await engine.aio().run(upkeep.rebuild(engine))
