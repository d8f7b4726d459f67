"""The engine behind every model method: one :class:`Engine` per model class.

It wires the model's :class:`~redis_schematics.settings.Settings`, layout,
:class:`~redis_schematics.records.Records` and
:class:`~redis_schematics.write.ModelWrites` together and implements the reads and the
expiry clean-up as flows (see ``redis_schematics.io``): generators of requests that the
sync driver (``redis.Redis``) or the async driver (``redis.asyncio.Redis``) runs. Nothing
here holds a client or knows which driver runs it, nor which layout is in use.

Expiry: a model with ``__expire__`` keeps, in its members ZSET, each object's deadline
(server time). An object past its deadline is never returned or counted, whatever the
layout. Its payload stays (up to one more ``__expire__``, when the model has indexes)
so that its index entries can be found and removed: lazily when a read meets it (see
:class:`ReadCleanup`: not with ``__purge_on_read__ = False``, nor on a read-only replica),
or by :meth:`Engine.purge_expired`. Every key a write touches lives at least as long as the
objects it lists, so an idle model disappears from Redis on its own.

Letters in ``Complexity:`` sections: N = objects of the model, M = matches, K = filters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from redis_schematics.exceptions import CorruptPayload, ReadOnlyServer, UniqueViolation
from redis_schematics.indexes import Entry
from redis_schematics.io import (
    AsyncDriver,
    Command,
    Flow,
    Pipeline,
    Scan,
    Sleep,
    SyncDriver,
    async_driver,
    done,
    sync_driver,
)
from redis_schematics.layouts import Layout
from redis_schematics.ops import Guard
from redis_schematics.records import Projection, Records
from redis_schematics.schema import Schema, SchemaState
from redis_schematics.settings import Settings
from redis_schematics.util import text
from redis_schematics.write import CHUNK, Batch, Item, ModelWrites, commit


def now_ms(reply: Any) -> int:
    """Server time in ms from a TIME reply."""
    sec, usec = reply
    return int(sec) * 1000 + int(usec) // 1000


#: seconds during which reads skip their clean-up after a server refused it as a read-only
#: replica (then they try again once: the replica may have been promoted meanwhile)
READ_ONLY_RECHECK = 60.0


class ReadCleanup:
    """Whether the reads of a model purge the expired objects they meet.

    A read that meets an expired object (never returned nor counted: its deadline decides)
    then purges one batch of expired objects, a write. ``__purge_on_read__ = False``
    turns that off (``purge_expired()`` and the physical TTL still clean up). A server
    that refuses the write as a read-only replica (``ReadOnlyServer``) makes the reads
    skip it for :data:`READ_ONLY_RECHECK` seconds; the read's result stands. Shared by
    the engines of a sharded model's shards. No I/O.
    """

    __slots__ = ("enabled", "skip_until")

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        #: ``time.monotonic()`` before which reads do not try (a read-only server refused)
        self.skip_until = 0.0

    def wanted(self) -> bool:
        """Should a read purge now?"""
        return self.enabled and time.monotonic() >= self.skip_until

    def refused(self) -> None:
        """The server refused the clean-up as read-only: skip it for a while."""
        self.skip_until = time.monotonic() + READ_ONLY_RECHECK


class Engine:
    """Everything redis-schematics does for one model class."""

    #: the engines of the shards (``__shards__``; see ``sharding.py``): none here
    shards: tuple[Engine, ...] = ()

    def __init__(self, model: type, layout_class: type[Layout], settings: Settings | None = None) -> None:
        self.settings = settings = Settings.of(model) if settings is None else settings
        self.model = model
        self.name = settings.name
        self.keys = settings.keys
        self.fields = settings.fields
        self.indexes = settings.indexes
        self.expiring = settings.expiring
        self.strict = settings.strict
        self.layout: Layout = layout_class.for_model(
            settings.keys, model, settings.serializer, settings.deserializer
        )
        self.records = Records(settings, self.layout)
        self.schema = Schema(settings.keys, settings.indexes, self.layout, settings.physical_ms)
        self.writes = ModelWrites(self, settings, self.layout)
        self.cleanup = ReadCleanup(settings.purge_on_read)

    def object_key(self, pk: str, obj: Any = None) -> str:
        """The key of the object ``pk`` (``obj``: the object, when at hand), for messages
        and ``Model.key``. No I/O."""
        return self.layout.object_key(pk)

    def shards_for(self, conditions: Sequence[Any]) -> tuple[Engine, ...]:
        """The shards a query with ``conditions`` must ask (see ``sharding.py``); none
        for a model that is not sharded."""
        return self.shards

    # -- drivers --------------------------------------------------------------------------
    def sync(self) -> SyncDriver:
        """The driver of the sync methods (``__redis_client__``)."""
        return sync_driver(self.settings.sync_client())

    def aio(self) -> AsyncDriver:
        """The driver of the async methods (``__redis_async_client__``)."""
        return async_driver(self.settings.async_client())

    # -- what a write's items ask of their model (write.Owner) ---------------------------
    def add_to(self, batch: Batch, item: Item) -> None:
        self.writes.add_to(batch, item)

    def unique_violation(self, item: Item, guard: Guard, owner: Any) -> UniqueViolation:
        return self.writes.unique_violation(item, guard, owner)

    # -- what Redis holds complete (schema.py) ---------------------------------------------
    def schema_view(self) -> SchemaState:
        """What this process last read of the model's ``Prefix#meta`` hash. No I/O."""
        return self.schema.state()

    def schema_state(self) -> Flow[SchemaState]:
        """The model's ``Prefix#meta`` state, read again when older than
        ``schema.SCHEMA_TTL`` (usually no I/O; see ``Schema.current``)."""
        return (yield from self.schema.current())

    # -- reads ------------------------------------------------------------------------------
    def read(self, pks: Sequence[str], fields: Sequence[str] | None = None) -> Flow[list[tuple[Any, bool]]]:
        """Stored payloads of ``pks`` and whether each object is alive (not expired);
        ``fields`` (primitive names): partial payloads (see ``Layout.read``).

        Complexity: one round trip (MGET/HMGET or a script, plus ZMSCORE and TIME when
        expiring).
        """
        if not pks:
            return []
        request = self.layout.read(pks, fields)
        try:
            if not self.expiring:
                payloads = yield request
                return [(p, p is not None) for p in payloads]
            members = Command(("ZMSCORE", self.keys.members(), *pks))
            payloads, deadlines, time = yield Pipeline((request, members, Command(("TIME",))))
        except UnicodeDecodeError as exc:
            error = yield from self._undecodable(pks)
            raise error from exc
        now = now_ms(time)
        # No deadline but a payload: written by 0.3.x (Redis' own TTL still governs it) and
        # not adopted by rebuild_indexes() yet. Every write of this library lists the pk.
        return [
            (p, p is not None and (d is None or d > now)) for p, d in zip(payloads, deadlines, strict=True)
        ]

    def _undecodable(self, pks: Sequence[str]) -> Flow[CorruptPayload]:
        """The error for a payload a ``decode_responses=True`` client cannot decode."""
        bad = pks[0]
        for pk in pks:  # find the culprit, one read each
            try:
                yield self.layout.read([pk])
            except UnicodeDecodeError:
                bad = pk
                break
        key = self.layout.object_key(bad)
        msg = (
            f"{self.name} object {bad!r} ({key!r}): the stored payload is not UTF-8, and this "
            "client decodes replies (decode_responses=True); rewrite or delete it with a client "
            "that does not decode."
        )
        return CorruptPayload(msg, key=key)

    def load(self, pks: Sequence[str], only: Projection | None = None) -> Flow[list[tuple[str, Any, Any]]]:
        """(pk, payload, object) for each alive object among ``pks``, in order; with
        ``only``, objects with just those fields loaded (and partial payloads).

        Complexity: one round trip per ``CHUNK`` pks, O(M) hydration (between chunks an
        async caller lets other tasks run).
        """
        out = []
        expired = 0
        fields = None if only is None else only.primitive
        hydrate = self.records.hydrate
        for start in range(0, len(pks), CHUNK):
            if start:
                yield Sleep(0)
            chunk = pks[start : start + CHUNK]
            for pk, (payload, alive) in zip(chunk, (yield from self.read(chunk, fields)), strict=True):
                if alive:
                    out.append((pk, payload, hydrate(pk, payload, only)))
                elif payload is not None:
                    expired += 1
        if expired:
            yield from self.purge_after_read()
        return out

    def member_scan(self, batch: int = CHUNK) -> Scan:
        """The cursor read of the members set (SSCAN, or ZSCAN when expiring)."""
        return Scan("ZSCAN" if self.expiring else "SSCAN", self.keys.members(), count=batch)

    def each_member_batch(self, handle: Callable[[list[str]], Flow[None]], batch: int = CHUNK) -> Flow[None]:
        """Run ``handle`` on every pk of the members set, ``batch`` pks at a time, as the
        SSCAN/ZSCAN pages come (never blocks Redis, never holds every pk at once)."""
        scan = self.member_scan(batch)
        pair = self.expiring  # ZSCAN pages are (member, deadline) pairs
        seen: set[str] = set()  # SCAN-family commands may return a member twice
        pending: list[str] = []
        cursor = 0
        while True:
            cursor, page = yield scan.page(cursor)
            for member in page:
                pk = text(member[0] if pair else member)
                if pk not in seen:
                    seen.add(pk)
                    pending.append(pk)
            while len(pending) >= batch:
                yield from handle(pending[:batch])
                pending = pending[batch:]
            if int(cursor) == 0:
                break
        if pending:
            yield from handle(pending)

    def members(self) -> Flow[list[str]]:
        """Every pk in the members set. Complexity: O(N), one round trip per page."""
        found: list[str] = []

        def keep(pks: list[str]) -> Flow[None]:
            found.extend(pks)
            return done(None)

        yield from self.each_member_batch(keep)
        return found

    def count_all(self) -> Flow[int]:
        """Objects alive. Complexity: O(1) (SCARD) or O(log N) (ZCOUNT), one or two
        round trips."""
        if not self.expiring:
            return int((yield Command(("SCARD", self.keys.members()))))
        now = now_ms((yield Command(("TIME",))))
        return int((yield Command(("ZCOUNT", self.keys.members(), f"({now}", "+inf"))))

    def every_pk(self) -> Flow[list[str]]:
        """Every pk a scan must look at: the members set, or, while Redis does not hold
        it complete (0.3.x data not adopted yet), the stored keys too. O(N)."""
        if self.schema_view().members:
            return (yield from self.members())
        return (yield from self.stored_pks())

    def stored_pks(self) -> Flow[list[str]]:
        """Every pk listed in the members set or stored without it (0.3.x data)."""
        listed = yield from self.members()
        stored = yield from self.layout.stored_pks(CHUNK)
        return list(dict.fromkeys(listed + stored))

    # -- writes -----------------------------------------------------------------------------
    def delete_all(self) -> Flow[int]:
        """Delete every object, also 0.3.x objects no members set lists.

        Complexity: O(N); SSCAN plus the layout's SCAN/HSCAN, two round trips per chunk.
        """
        deleted = yield from self.writes.delete_pks((yield from self.stored_pks()))
        yield from self.schema.emptied()
        return deleted

    # -- expiry -----------------------------------------------------------------------------
    def purge_after_read(self) -> Flow[None]:
        """The clean-up of a read that met expired objects: one batch of
        :meth:`purge_expired`, unless :attr:`cleanup` says not to. A read-only server's
        refusal is remembered there and swallowed: the read's result is right without it.

        Complexity: as one batch of :meth:`purge_expired` (four round trips), or none.
        """
        if not self.expiring or not self.cleanup.wanted():
            return
        try:
            yield from self.purge_expired(max_batches=1)
        except ReadOnlyServer:
            self.cleanup.refused()

    def purge_expired(self, batch: int = CHUNK, max_batches: int | None = None) -> Flow[int]:
        """Remove expired objects and their index entries, ``batch`` at a time.

        Complexity: O(E log N) for E expired objects; four round trips per batch (TIME,
        ZRANGE BYSCORE, the read, the write; more when Redis already dropped payloads).
        """
        if not self.expiring:
            return 0
        members = self.keys.members()
        purged = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            batches += 1
            now = now_ms((yield Command(("TIME",))))
            found = yield Command(("ZRANGE", members, "-inf", now, "BYSCORE", "LIMIT", 0, batch))
            pks = [text(m) for m in found]
            if not pks:
                break
            purged += yield from self.purge_pks(pks)
            if len(pks) < batch:
                break
        return purged

    def purge_pks(self, pks: Sequence[str]) -> Flow[int]:
        """Remove those of ``pks`` that are past their deadline (guarded: one renewed
        meanwhile is left alone). Returns how many went. Two round trips."""
        members = self.keys.members()
        reads = yield from self.read(pks)
        gone = [pk for pk, (payload, _alive) in zip(pks, reads, strict=True) if payload is None]
        orphans = (yield from self.orphan_entries(gone)) if gone else {}
        items = []
        for pk, (payload, _alive) in zip(pks, reads, strict=True):
            dead = Guard("dead", members, pk)
            old = (
                orphans.get(pk, frozenset()) if payload is None else self.records.stored_entries(pk, payload)
            )
            items.append(self.writes.item(pk, None, expected=payload, old=old, extra=(dead,)))
        yield from commit(items)
        return sum(1 for i in items if not i.dropped)

    def orphan_entries(self, pks: Sequence[str]) -> Flow[dict[str, frozenset[Entry]]]:
        """Index entries of objects whose payload is gone (Redis expired it before any
        purge), found without it (each index kind's ``orphans``). O(V) for V index
        values: the rare path, not the usual one."""
        found: dict[str, set[Entry]] = {pk: set() for pk in pks}
        for index in self.indexes:
            for entry in (yield from index.orphans(list(found))):
                owner = entry.owner if entry.owner is not None else entry.member
                if owner in found:
                    found[owner].add(entry)
        return {pk: frozenset(entries) for pk, entries in found.items()}
