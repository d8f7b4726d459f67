"""The writes of one model: items from objects, their guards and operations, and the
flows behind ``set``, ``set_many``, ``delete*`` and ``update``.

Letters in ``Complexity:`` sections: N = objects of the model, M = matches, K = filters.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redis_schematics.exceptions import (
    ConcurrentModification,
    InvalidPrimaryKey,
    NotFound,
    UniqueViolation,
    WriteConflict,
)
from redis_schematics.indexes import Entry, kind_of_entry
from redis_schematics.io import Flow
from redis_schematics.layouts import Layout
from redis_schematics.ops import Guard, Op
from redis_schematics.settings import Settings
from redis_schematics.util import chunked, text
from redis_schematics.write.batch import Batch
from redis_schematics.write.commit import commit, queue, read_state
from redis_schematics.write.items import Item, Owner, diff

#: objects per script call when writing many
CHUNK = 500


class ModelWrites:
    """Builds and commits the writes of one model (its engine is the items' owner)."""

    def __init__(self, owner: Owner, settings: Settings, layout: Layout) -> None:
        self.owner = owner
        self.settings = settings
        self.layout = layout
        self.records = owner.records
        self.members = settings.keys.members()
        self.schema_key = settings.keys.schema()
        self.expiring = settings.expiring
        self.physical_ms = settings.physical_ms

    # -- items ------------------------------------------------------------------------------
    def item(self, pk: str, payload: Any, entries: frozenset[Entry] = frozenset(), **kw: Any) -> Item:
        """A write of ``payload`` (None = delete) for ``pk`` of this model."""
        return Item(self.owner, pk, payload, entries, **kw)

    def member_op(self, pk: str) -> Op:
        """The operation listing ``pk`` in the members set (with its deadline if expiring)."""
        if self.expiring:
            return ("MEMBER+", self.members, (pk, self.settings.ttl_ms))
        return ("SADD", self.members, (pk,))

    def unmember_op(self, pk: str) -> Op:
        """The operation removing ``pk`` from the members set."""
        return ("ZREM" if self.expiring else "SREM", self.members, (pk,))

    def add_to(self, batch: Batch, item: Item) -> None:
        """Add the guards and operations of one object's write to ``batch``."""
        if item.merge is not None:  # a partial write: what it writes depends on what is stored
            item.payload, item.entries, item.guarded = item.merge(item.expected, item.alive)
        batch.guard(item, self.layout.guard(item.pk, item.expected, item.guarded))
        for g in item.extra:
            batch.guard(item, g)
        guards, index_ops = diff(item.old, item.entries)
        for g in guards:
            batch.guard(item, g)
        if item.payload is not None and item.old:
            index_ops += self.building(item.old & item.entries)
        if item.payload is not None:
            if self.schema_key not in batch.positions:
                # creates the Prefix#meta hash of an empty model (see schema.py)
                batch.op(self.owner.schema.op(batch.pos(self.members)))
            for op in self.layout.put_ops(item.pk, item.payload, self.physical_ms):
                batch.op(op)
            batch.op(self.member_op(item.pk))
        else:
            for op in self.layout.delete_ops(item.pk):
                batch.op(op)
            batch.op(self.unmember_op(item.pk))
        for op in index_ops:
            batch.op(op)
        if self.expiring and item.payload is not None:
            for key in dict.fromkeys([self.members, self.schema_key, *(e.key for e in item.entries)]):
                batch.op(("EXTEND", key, (self.physical_ms,)))

    def building(self, unchanged: frozenset[Entry]) -> list[Op]:
        """Operations writing again the ``unchanged`` entries of indexes Redis does not
        hold complete yet (``schema.py``): a write made while ``rebuild_indexes()``
        builds an index leaves that object's entries complete, whatever the rebuild read
        before. Unique claims are left to the rebuild (a claim is guarded). No I/O."""
        pending = self.owner.schema.state().pending
        if not pending:
            return []
        building = [i for i in self.settings.indexes if i.describe() in pending and not i.claims]
        ops: list[Op] = []
        for e in unchanged:
            if any(i.owns(e.key) for i in building):
                ops += kind_of_entry(e.kind).add(e)[1]
        return ops

    def unique_violation(self, item: Item, g: Guard, owner: Any) -> UniqueViolation:
        """The error for ``item`` claiming the value of guard ``g``, held by ``owner``."""
        name = self.settings.name
        field = next(i.field for i in self.settings.indexes if i.claims and getattr(i, "key", None) == g.key)
        msg = (
            f"{name}.{field} = {g.field!r} already belongs to {name} "
            f"{text(owner)!r}; {item.pk!r} was not written. Values of a UniqueIndex "
            "field must differ between objects."
        )
        return UniqueViolation(msg, field=field, value=g.field, owner=text(owner))

    # -- flows ------------------------------------------------------------------------------
    def defer(self, pipeline: Any, items: list[Item]) -> Flow[None]:
        """Hand writes to a ``transaction()`` block, or queue them on a redis pipeline."""
        collect = getattr(pipeline, "rs_collect", None)
        if collect is not None:
            collect(self.owner, items)
            return
        yield from queue(pipeline, items)

    def save(
        self, objs: Sequence[Any], pipeline: Any = None, only: Iterable[str] | None = None
    ) -> Flow[None]:
        """Store objects with their index entries; see ``set_many`` for the guarantees.

        ``only``: write just these fields (see ``Records.merger``).

        Raises:
            InvalidModel, InvalidPrimaryKey: an object does not validate (with ``only``:
                a field it writes); nothing is written.
            PartiallyLoaded: an object read with ``only=`` would store a field it did not
                load, or is no longer stored (nothing is written).

        Complexity: one ``apply_write.lua`` call per ``CHUNK`` objects (a second when a
        guard reports a stored object, and a read first with ``only``).
        """
        names = None if only is None else self.records.field_names(only)
        yield from self.save_items(self.items(objs, names), pipeline, names is not None)

    def save_items(self, items: list[Item], pipeline: Any = None, partial: bool = False) -> Flow[None]:
        """Commit items made by :meth:`items` (``partial``: they merge with what is
        stored); one ``apply_write.lua`` call per ``CHUNK`` items, see :meth:`save`."""
        if pipeline is not None:
            yield from self.defer(pipeline, items)
            return
        for chunk in chunked(items, CHUNK):
            if partial:  # merged with what is stored (and alive), so read it
                yield from read_state(chunk)
            # Optimistic: assume absent; a stored object is reported back with its payload.
            yield from commit(chunk)

    def items(self, objs: Sequence[Any], names: tuple[str, ...] | None = None) -> list[Item]:
        """The writes of ``objs`` (of just the fields ``names``), one per pk (the last
        object of a pk wins), every object validated before any is returned (with
        ``names``, just those fields: the others are not written). No I/O.

        Raises:
            InvalidModel, InvalidPrimaryKey, PartiallyLoaded: nothing to write.
        """
        records = self.records
        for obj in objs:
            records.refuse_unloaded(obj, names)
        items: dict[str, Item] = {}
        for obj in objs:
            prepared = records.prepare(obj, names)  # a partial write validates just ``names``
            item = self.item(prepared.pk, prepared.payload, prepared.entries)
            if names is not None:
                item.merge = records.merger(prepared, obj, names)
            items[item.pk] = item
        return list(items.values())

    def delete_pks(
        self,
        pks: Sequence[str],
        pipeline: Any = None,
        known: dict[str, Any] | None = None,
        keep_if: Callable[[Any], bool] | None = None,
    ) -> Flow[int]:
        """Delete objects by pk with their index entries; returns how many were alive.

        ``known`` maps pks to payloads the caller already read (saves the read);
        ``keep_if`` re-checks an object that changed after it was read (a filter): one
        that no longer passes is left alone. With ``pipeline=`` the count is of the
        objects alive when the delete was queued.

        Complexity: two round trips per ``CHUNK`` pks (read, then write).
        """
        pks = list(dict.fromkeys(pks))
        if pipeline is not None:
            items = [self.item(pk, None) for pk in pks]
            yield from read_state(items)
            yield from self.defer(pipeline, items)
            return sum(1 for i in items if i.alive)
        deleted = 0
        for chunk in chunked(pks, CHUNK):
            if known is not None and all(pk in known for pk in chunk):
                reads = [(known[pk], True) for pk in chunk]
            else:
                reads = yield from self.owner.read(chunk)
            items = []
            for pk, (payload, alive) in zip(chunk, reads, strict=True):
                old = self.records.stored_entries(pk, payload)
                items.append(self.item(pk, None, expected=payload, old=old, alive=alive, keep_if=keep_if))
            yield from commit(items)
            deleted += sum(1 for i in items if i.alive and not i.dropped and i.expected is not None)
        return deleted

    def update(self, pk: str, fn: Callable[[Any], Any], retries: int) -> Flow[Any]:
        """Load ``pk``, apply ``fn``, save only if nobody changed it meanwhile; retry.

        Raises:
            NotFound: nothing is stored under ``pk``.
            ConcurrentModification: still changing after ``retries`` retries.

        Complexity: two round trips per attempt (read, then a guarded write).
        """
        records = self.records
        name = self.settings.name
        for _attempt in range(retries + 1):
            ((payload, alive),) = yield from self.owner.read([pk])
            if not alive:
                msg = f"{name}.update: no object with pk {pk!r} ({self.layout.object_key(pk)!r})."
                raise NotFound(msg)
            obj = records.hydrate(pk, payload)
            result = fn(obj)
            if result is not None:
                obj = result
            prepared = records.prepare(obj)
            if prepared.pk != pk:
                msg = f"{name}.update({pk!r}): fn changed the pk to {prepared.pk!r}; it may not."
                raise InvalidPrimaryKey(msg)
            item = self.item(pk, prepared.payload, prepared.entries)
            item.expected, item.old = payload, records.stored_entries(pk, payload)
            # A token makes the write idempotent: if redis-py resends it after a lost
            # reply, the script sees the token and does not report a conflict with our
            # own write (which would call fn a second time).
            once = self.settings.keys.once(uuid.uuid4().hex)
            try:
                yield from commit([item], attempts=1, once=once)
            except WriteConflict:
                continue
            return obj
        msg = (
            f"{name}.update({pk!r}): the object changed under every one of "
            f"{retries + 1} attempts; retry later or raise retries."
        )
        raise ConcurrentModification(msg)
