"""Sharded models (``__shards__ = N``): one engine per shard, and a top engine routing.

Each shard is a complete copy of the model's structures (objects, members set, index
keys) under its own hash tag (``{Prefix.j}``, see ``keys.shard_spellings``), so every
write and every query script stays inside one slot. An object lives in the shard of its
pk, or of its ``__shard_by__`` value. The :class:`ShardedEngine` is the model's engine:

* reads by pk go to the pk's shard (with ``__shard_by__``, to every shard: which one
  holds a pk is known only from its value), all shards in one round trip (``gather``);
* writes are grouped by shard and committed per shard (atomic inside each shard; a
  ``transaction()`` spanning shards is one script on a single Redis and ``CrossSlot``
  on a cluster);
* queries run on every shard (or the one an equality on the pk or on ``__shard_by__``
  names) in one round trip and are merged in ``execute.py``;
* enumeration, counts, expiry and upkeep run shard by shard through each shard's
  members set (never a cluster-wide SCAN).

Letters in ``Complexity:`` sections: S = shards, N = objects of the model.
"""

from __future__ import annotations

from binascii import crc_hqx
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redis_schematics.engine import Engine
from redis_schematics.exceptions import CrossSlot, NotFound
from redis_schematics.io import Command, Flow, gather
from redis_schematics.layouts import Layout
from redis_schematics.lookups import Condition, Exact
from redis_schematics.schema import SchemaState, combined
from redis_schematics.serializers import token
from redis_schematics.settings import Settings
from redis_schematics.write import CHUNK, Item


def make_engine(model: type, layout_class: type[Layout]) -> Engine:
    """The engine of ``model``: a :class:`ShardedEngine` when it sets ``__shards__``."""
    settings = Settings.of(model)
    if settings.shards:
        return ShardedEngine(model, layout_class, settings)
    return Engine(model, layout_class, settings)


def _spread(text: str, n: int) -> int:
    return crc_hqx(text.encode("utf-8", "surrogatepass"), 0) % n


class ShardedEngine(Engine):
    """The engine of a sharded model: routes to the engines of its shards."""

    def __init__(self, model: type, layout_class: type[Layout], settings: Settings) -> None:
        super().__init__(model, layout_class, settings)
        self.shards = tuple(Engine(model, layout_class, settings.of_shard(ks)) for ks in settings.shards)
        for shard in self.shards:  # one client serves them all: a refusal holds for every shard
            shard.cleanup = self.cleanup
        self.shard_by = settings.shard_by
        self.writes = ShardedWrites(self)  # type: ignore[assignment]

    # -- routing (no I/O) -------------------------------------------------------------------
    def number_of(self, value: Any) -> int:
        """The shard number of a ``__shard_by__`` value (or of a pk, without it)."""
        text = value if isinstance(value, str) else token(value)
        return _spread(text, len(self.shards))

    def shard_of_value(self, value: Any) -> Engine:
        """The shard of a ``__shard_by__`` value (or of a pk, without ``__shard_by__``)."""
        return self.shards[self.number_of(value)]

    def number_for(self, obj: Any) -> int:
        """The number of the shard an object is written to. An object without a pk gets
        one here (as ``set()`` would), so that it is written where its pk says."""
        if self.shard_by is not None:
            return self.number_of(getattr(obj, self.shard_by, None))
        pk = self.records.pk_of(obj)
        if pk is None:
            prepared = self.records.prepare(obj)  # settles the pk (a uuid) on obj when it can
            pk = prepared.pk
        return self.number_of(pk)

    def shard_of(self, obj: Any) -> Engine:
        """The shard an object is written to (see :meth:`number_for`)."""
        return self.shards[self.number_for(obj)]

    def candidates(self, pk: str) -> Sequence[int]:
        """The numbers of the shards that may hold ``pk``: its own, or all with ``__shard_by__``."""
        return range(len(self.shards)) if self.shard_by is not None else (self.number_of(pk),)

    def shards_for(self, conditions: Sequence[Condition]) -> tuple[Engine, ...]:
        """The shards a query must ask: one when an equality names the pk (or the
        ``__shard_by__`` value), else all."""
        eq = {c.field: c.value for c in conditions if c.lookup is Exact}
        if self.shard_by is None:
            pk = self.records.pk_from_conditions(eq)
            return self.shards if pk is None else (self.shard_of_value(pk),)
        if self.shard_by in eq:
            return (self.shard_of_value(eq[self.shard_by]),)
        return self.shards

    def object_key(self, pk: str, obj: Any = None) -> str:
        """The key of ``pk`` in its shard (with ``__shard_by__``, known from ``obj``)."""
        if self.shard_by is None:
            return self.shard_of_value(pk).object_key(pk)
        if obj is not None:
            return self.shard_of(obj).object_key(pk)
        return f"{pk} in one of {len(self.shards)} shards"

    def locate(self, pks: Sequence[str]) -> Flow[dict[int, list[str]]]:
        """Shard number -> the pks of ``pks`` it lists (with ``__shard_by__``: one
        SMISMEMBER/ZMSCORE per shard, all in one round trip; else no I/O)."""
        found: dict[int, list[str]] = {}
        if self.shard_by is None:
            for pk in pks:
                found.setdefault(self.number_of(pk), []).append(pk)
            return found
        if not pks:
            return found
        command = "ZMSCORE" if self.expiring else "SMISMEMBER"
        replies = yield from gather(
            [_one(Command((command, shard.keys.members(), *pks))) for shard in self.shards]
        )
        for n, reply in enumerate(replies):
            listed = [pk for pk, hit in zip(pks, reply, strict=True) if hit]
            if listed:
                found[n] = listed
        return found

    # -- reads ------------------------------------------------------------------------------
    def read(self, pks: Sequence[str], fields: Sequence[str] | None = None) -> Flow[list[tuple[Any, bool]]]:
        """As ``Engine.read``, each pk read in the shards that may hold it, all shards in
        one round trip."""
        if not pks:
            return []
        groups: dict[int, list[str]] = {}
        for pk in pks:
            for n in self.candidates(pk):
                groups.setdefault(n, []).append(pk)
        replies = yield from gather([self.shards[n].read(group, fields) for n, group in groups.items()])
        best: dict[str, tuple[Any, bool]] = {}
        for group, reads in zip(groups.values(), replies, strict=True):
            for pk, (payload, alive) in zip(group, reads, strict=True):
                held = best.get(pk)
                if held is None or (alive and not held[1]) or (held[0] is None and payload is not None):
                    best[pk] = (payload, alive)
        return [best[pk] for pk in pks]

    def schema_view(self) -> SchemaState:
        """What is complete in every shard (see ``Engine.schema_view``). No I/O."""
        return combined([shard.schema_view() for shard in self.shards])

    def schema_state(self) -> Flow[SchemaState]:
        """Every shard's ``Prefix#meta`` state (those to read again in one round trip),
        combined: complete where every shard holds it complete."""
        return combined((yield from gather([shard.schema_state() for shard in self.shards])))

    def _of_every_shard(self, pks: Callable[[Engine], Flow[list[str]]]) -> Flow[list[str]]:
        """The pks ``pks(shard)`` lists, shard after shard."""
        found: list[str] = []
        for shard in self.shards:
            found += yield from pks(shard)
        return found

    def every_pk(self) -> Flow[list[str]]:
        """``Engine.every_pk`` of every shard."""
        return (yield from self._of_every_shard(Engine.every_pk))

    def each_member_batch(self, handle: Callable[[list[str]], Flow[None]], batch: int = CHUNK) -> Flow[None]:
        """Every shard's members, shard after shard."""
        for shard in self.shards:
            yield from shard.each_member_batch(handle, batch)

    def members(self) -> Flow[list[str]]:
        """Every pk of every shard. O(N), one round trip per page per shard."""
        return (yield from self._of_every_shard(Engine.members))

    def count_all(self) -> Flow[int]:
        """Objects alive in all shards: one SCARD (ZCOUNT) per shard, in one round trip."""
        return sum((yield from gather([shard.count_all() for shard in self.shards])))

    def stored_pks(self) -> Flow[list[str]]:
        """Every pk listed or stored in any shard."""
        return (yield from self._of_every_shard(Engine.stored_pks))

    # -- writes -----------------------------------------------------------------------------
    def delete_all(self) -> Flow[int]:
        """Delete every object of every shard; O(N), shard after shard."""
        deleted = 0
        for shard in self.shards:
            deleted += yield from shard.delete_all()
        return deleted

    def purge_expired(self, batch: int = CHUNK, max_batches: int | None = None) -> Flow[int]:
        """``Engine.purge_expired`` on every shard (``max_batches`` per shard)."""
        purged = 0
        for shard in self.shards:
            purged += yield from shard.purge_expired(batch, max_batches)
        return purged

    def purge_pks(self, pks: Sequence[str]) -> Flow[int]:
        """``Engine.purge_pks`` in the shards listing ``pks``."""
        purged = 0
        for n, group in (yield from self.locate(pks)).items():
            purged += yield from self.shards[n].purge_pks(group)
        return purged


def _one(request: Command) -> Flow[Any]:
    return (yield request)


class ShardedWrites:
    """``ModelWrites`` of a sharded model: each object's write goes to its shard."""

    def __init__(self, engine: ShardedEngine) -> None:
        self.engine = engine
        self.records = engine.records

    def items(self, objs: Sequence[Any], names: tuple[str, ...] | None = None) -> dict[int, list[Item]]:
        """Shard number -> the writes of ``objs`` it gets, every object validated first.

        Raises:
            CrossSlot: two objects of one pk would go to different shards.
        """
        engine = self.engine
        groups: dict[int, list[Any]] = {}
        target: dict[str, int] = {}
        for obj in objs:
            n = engine.number_for(obj)
            pk = self.records.pk_of(obj)
            if pk is not None and target.setdefault(pk, n) != n:
                msg = (
                    f"{engine.name}: two objects with pk {pk!r} in one write have different "
                    f"{engine.shard_by} values, so they would go to different shards; write one."
                )
                raise CrossSlot(msg)
            groups.setdefault(n, []).append(obj)
        return {n: engine.shards[n].writes.items(group, names) for n, group in groups.items()}

    def save(
        self, objs: Sequence[Any], pipeline: Any = None, only: Iterable[str] | None = None
    ) -> Flow[None]:
        """Store objects, each in its shard: ``ModelWrites.save`` per shard (atomic inside
        a shard). With ``__shard_by__`` one round trip first checks that no pk is stored
        in another shard (a changed ``__shard_by__`` value: refused, ``CrossSlot``)."""
        names = None if only is None else self.records.field_names(only)
        groups = self.items(objs, names)
        if self.engine.shard_by is not None:
            yield from self._refuse_moves(groups)
        for n, items in groups.items():
            yield from self.engine.shards[n].writes.save_items(items, pipeline, names is not None)

    def _refuse_moves(self, groups: dict[int, list[Item]]) -> Flow[None]:
        engine = self.engine
        pks = [item.pk for items in groups.values() for item in items]
        going = {n: {i.pk for i in items} for n, items in groups.items()}
        for n, listed in (yield from engine.locate(pks)).items():
            for pk in listed:
                if pk not in going.get(n, ()):
                    shard = engine.shards[n]
                    msg = (
                        f"{engine.name} {pk!r} is stored in shard {shard.keys.base} and this write "
                        f"would put it in another (its {engine.shard_by} changed): an object cannot "
                        "move between shards atomically. Delete it, then set it again; nothing was "
                        "written."
                    )
                    raise CrossSlot(msg)

    def delete_pks(
        self,
        pks: Sequence[str],
        pipeline: Any = None,
        known: dict[str, Any] | None = None,
        keep_if: Callable[[Any], bool] | None = None,
    ) -> Flow[int]:
        """``ModelWrites.delete_pks`` in each shard listing some of ``pks``."""
        pks = list(dict.fromkeys(pks))
        deleted = 0
        for n, group in (yield from self.engine.locate(pks)).items():
            deleted += yield from self.engine.shards[n].writes.delete_pks(group, pipeline, known, keep_if)
        return deleted

    def update(self, pk: str, fn: Callable[[Any], Any], retries: int) -> Flow[Any]:
        """``ModelWrites.update`` in the shard of ``pk``; ``fn`` may not change the
        ``__shard_by__`` value (``CrossSlot``)."""
        engine = self.engine
        located = yield from engine.locate([pk])
        if not located:
            msg = f"{engine.name}.update: no object with pk {pk!r} ({engine.object_key(pk)!r})."
            raise NotFound(msg)
        shard = engine.shards[next(iter(located))]

        def checked(obj: Any) -> Any:
            result = fn(obj)
            if engine.shard_of(obj if result is None else result) is not shard:
                msg = (
                    f"{engine.name}.update({pk!r}): fn changed {engine.shard_by}, which would move "
                    "the object to another shard; that cannot be atomic. Delete and set it instead."
                )
                raise CrossSlot(msg)
            return result

        return (yield from shard.writes.update(pk, checked, retries))
