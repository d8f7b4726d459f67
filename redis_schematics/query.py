"""Lazy, immutable queries: ``Model.query(...).order_by(...).limit(...)``.

A :class:`Query` does no I/O until a terminal method runs it: ``all()``, ``first()``,
``count()``, ``delete()`` or iteration, each with an async twin (``aall()``, ``afirst()``,
``acount()``, ``adelete()``, ``async for``) running the same flow (``redis_schematics.
execute``) with the async driver. Planning is in ``redis_schematics.planner``.

Letters in ``Complexity:`` sections: N = objects of the model, M = matches, K = filters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from redis_schematics import execute
from redis_schematics.exceptions import QueryError
from redis_schematics.execute import QuerySpec, Row
from redis_schematics.lookups import parse_filters
from redis_schematics.planner import Plan, parse_order

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Plan", "Query"]


@dataclass(frozen=True)
class Query(QuerySpec):
    """A lazy, immutable query: every refinement returns a new Query.

    Nothing touches Redis until the query is iterated, counted, listed or deleted.
    """

    # -- refinements ----------------------------------------------------------------------
    def filter(self, **kwargs: Any) -> Self:
        """More conditions, ANDed with the existing ones. No I/O."""
        more = parse_filters(self.engine.name, self.engine.fields, kwargs)
        return replace(self, conditions=self.conditions + more)

    def order_by(self, *fields: str) -> Self:
        """Order by fields (``"-field"`` descending); replaces any earlier order. No I/O."""
        return replace(self, order=parse_order(self.engine.settings, fields))

    def limit(self, n: int | None) -> Self:
        """At most ``n`` rows. No I/O."""
        if n is not None and (not isinstance(n, int) or n < 0):
            msg = f"{self.engine.name} query: limit must be a non-negative int or None, not {n!r}."
            raise QueryError(msg)
        return replace(self, limit_=n)

    def offset(self, n: int) -> Self:
        """Skip the first ``n`` rows. No I/O."""
        if not isinstance(n, int) or n < 0:
            msg = f"{self.engine.name} query: offset must be a non-negative int, not {n!r}."
            raise QueryError(msg)
        return replace(self, offset_=n)

    def only(self, *fields: str) -> Self:
        """Load just these fields (plus those filtered or ordered on, which the rows are
        re-checked and sorted by, and those the pk comes from); see
        ``Model.match_for_pk(pk, only=...)`` for what such objects allow. No I/O."""
        self.engine.records.field_names(fields, "query().only()")
        return replace(self, only_=tuple(fields))

    # -- sync ----------------------------------------------------------------------------
    def rows(self) -> list[Row]:
        """(pk, payload, object) for every row of the page, in order.

        Complexity: one script call (O(C*K) for C candidates of the most selective index)
        plus one round trip per 500 candidates loaded; a scan reads all N objects.
        """
        return self.engine.sync().run(execute.rows(self))

    def all(self) -> list[Any]:
        """Every matching object of the page, as a list. Complexity: as :meth:`rows`."""
        return self.engine.sync().run(execute.objects(self))

    def __iter__(self) -> Iterator[Any]:
        """Iterate the rows. Without order/offset/limit, objects are loaded 500 at a time
        and streamed, so a huge result never sits in memory at once."""
        return self.engine.sync().iterate(execute.stream(self))

    def first(self) -> Any | None:
        """The first row, or None. Complexity: as :meth:`rows` with ``limit(1)``."""
        found = self.engine.sync().run(execute.objects(self.limit(1)))
        return found[0] if found else None

    def count(self) -> int:
        """Number of matching objects.

        Complexity: without conditions O(1) (SCARD); one indexed value or range on a
        model that never expires: one SCARD / ZCOUNT / HEXISTS; other exact indexed
        conditions: one script call and no object loaded; otherwise the candidates are
        loaded.
        """
        return self.engine.sync().run(execute.count(self))

    def delete(self) -> int:
        """Delete the matching objects; one changed since it was read is re-checked.

        Returns the number deleted. Complexity: as :meth:`rows`, plus one write round
        trip per 500 objects.
        """
        return self.engine.sync().run(execute.delete(self))

    # -- async twins: the same flows, awaited ----------------------------------------------
    async def arows(self) -> list[Row]:
        """Async twin of :meth:`rows`."""
        return await self.engine.aio().run(execute.rows(self))

    async def aall(self) -> list[Any]:
        """Async twin of :meth:`all`."""
        return await self.engine.aio().run(execute.objects(self))

    def __aiter__(self) -> AsyncIterator[Any]:
        """``async for obj in query``: as :meth:`__iter__`, awaiting each batch."""
        return self.engine.aio().iterate(execute.stream(self))

    async def afirst(self) -> Any | None:
        """Async twin of :meth:`first`."""
        found = await self.engine.aio().run(execute.objects(self.limit(1)))
        return found[0] if found else None

    async def acount(self) -> int:
        """Async twin of :meth:`count`."""
        return await self.engine.aio().run(execute.count(self))

    async def adelete(self) -> int:
        """Async twin of :meth:`delete`."""
        return await self.engine.aio().run(execute.delete(self))
