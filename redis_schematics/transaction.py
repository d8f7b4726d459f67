"""All-or-nothing writes across objects and models: ``with transaction(client) as tx:``
and, in async code, ``async with atransaction(client) as tx:``.

Writes made with ``pipeline=tx`` (``set``, ``delete``, ``set_many``, ``delete_many`` of any
model, or their async twins) are validated when they are made, kept in the transaction,
and applied together when the block ends: one ``apply_write.lua`` call, so Redis applies
every object and every index entry of the block, or (if a guard fails, e.g. a
``UniqueViolation``) nothing at all. If the block raises, nothing is written.

Reads inside the block (``match``, ``filter``...) see what is committed in Redis, not
the block's pending writes. A transaction is not isolated from concurrent writers: an
object another client changes meanwhile is re-read and the block's write is applied on
top of it (last writer wins, as for a plain ``set``), with exact index upkeep.

All models of one transaction must live on the same Redis server; on a Redis Cluster,
in one hash slot (one tagged model, or models of one slot group ``__hash_tag__ =
"group"``): a block spanning slots raises ``CrossSlot`` naming them, and writes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from redis_schematics.exceptions import CrossSlot, RedisSchematicsError
from redis_schematics.io import AsyncDriver, Flow, SyncDriver, async_driver, sync_driver
from redis_schematics.write import Item, Owner, commit, read_state


class Transaction:
    """The writes of one ``transaction()`` block. Pass it as ``pipeline=`` to write methods."""

    def __init__(self, client: Any = None) -> None:
        self.client = client
        self.items: list[Item] = []
        self.owners: list[Owner] = []
        self.state = "open"

    def rs_collect(self, owner: Owner, items: list[Item]) -> None:
        """Called by the write methods: keep ``items`` (of ``owner``'s model) for the commit."""
        if self.state != "open":
            msg = f"this transaction is {self.state}; start a new `with transaction(...)` block."
            raise RedisSchematicsError(msg)
        self.owners.append(owner)
        self.items.extend(items)

    def _commit(self) -> Flow[None]:
        """The commit, as a flow: read the objects' stored state, then one guarded write."""
        if self.state != "open":
            return
        self.state = "committed"
        latest: dict[tuple[int, str], Item] = {}
        for item in self.items:  # the last write of an object in the block wins
            latest[(id(item.owner), item.pk)] = item
        items = list(latest.values())
        if not items:
            return
        for item in items:
            item.dropped = False
        yield from read_state(items)
        yield from commit(items)

    def _sync(self) -> SyncDriver:
        return sync_driver(self.client) if self.client is not None else self.owners[0].sync()

    def _aio(self) -> AsyncDriver:
        return async_driver(self.client) if self.client is not None else self.owners[0].aio()

    def _refuse_cross_slot(self, driver: SyncDriver | AsyncDriver) -> None:
        """On a cluster, one script can only touch one slot: refuse a block spanning several."""
        if not driver.cluster:
            return
        slots: dict[int | None, set[str]] = {}
        for item in self.items:
            slots.setdefault(item.owner.keys.slot(), set()).add(f"{item.owner.name} ({item.owner.keys.base})")
        if len(slots) > 1:
            self.discard()
            spans = "; ".join(
                f"slot {slot}: {', '.join(sorted(names))}" for slot, names in sorted(slots.items())
            )
            msg = (
                f"this transaction writes to {len(slots)} Redis Cluster hash slots ({spans}); one "
                "atomic write can only touch one slot. Put the models in one slot group "
                '(the same `__hash_tag__ = "group"`), or write them in separate transactions. '
                "Nothing was written."
            )
            raise CrossSlot(msg)

    def commit(self) -> None:
        """Apply every collected write atomically (two round trips: read, then write).

        Raises:
            CrossSlot: on a Redis Cluster, the writes span hash slots (nothing written).
        """
        if self.items:
            driver = self._sync()
            self._refuse_cross_slot(driver)
            driver.run(self._commit())
        self.state = "committed"

    async def acommit(self) -> None:
        """Async twin of :meth:`commit`."""
        if self.items:
            driver = self._aio()
            self._refuse_cross_slot(driver)
            await driver.run(self._commit())
        self.state = "committed"

    def discard(self) -> None:
        """Forget every collected write."""
        self.state = "discarded"
        self.items.clear()


@contextmanager
def transaction(client: Any = None) -> Iterator[Transaction]:
    """Collect the writes made with ``pipeline=tx`` and commit them all-or-nothing.

    ``client`` is the Redis client to commit with (default: the client of the first
    model written). If the block raises, nothing is written.

    Raises:
        UniqueViolation: a write of the block claims a taken unique value; nothing written.
        WriteConflict: the objects kept changing under the commit.

    Complexity: one round trip to read the stored state of the block's objects, one
    ``apply_write.lua`` call for everything (more only if other clients interfere).
    """
    tx = Transaction(client)
    try:
        yield tx
    except BaseException:
        tx.discard()
        raise
    tx.commit()


@asynccontextmanager
async def atransaction(client: Any = None) -> AsyncIterator[Transaction]:
    """``async with atransaction(client) as tx:``: as :func:`transaction`, committed with
    the async client (default: the async client of the first model written)."""
    tx = Transaction(client)
    try:
        yield tx
    except BaseException:
        tx.discard()
        raise
    await tx.acommit()
