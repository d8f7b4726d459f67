"""Which structures of a model Redis holds complete: the ``Prefix#meta`` hash.

A query may use an index only when that index lists every stored object, and may
enumerate the members set only when it lists every object. Neither is true of a model
whose data predates them: an index added in a new deploy, or data written by
redis-schematics 0.3.x (no members set at all). So Redis remembers, per model (per shard
of a sharded model, under its hash tag), what is complete:

* ``members`` = ``1``: the members set lists every stored object;
* ``index:<describe()>`` = ``1``: that index (e.g. ``index:EqualityIndex('flavour')``)
  holds exactly the entries of every stored object. Another kind on the same field is
  another field of the hash, so changing an index's kind is a drop plus a build.

How the hash comes to be (every change inside ``apply_write.lua``, atomic with the
check it depends on):

* The first write that stores an object of a model with no hash and an empty members set
  creates it, everything complete (a ``SCHEMA`` operation at the start of every write
  that stores: one ``EXISTS`` when the hash exists). A write that leaves the members set
  empty drops a complete hash (``SCHEMADROP``), so an empty model keeps no key.
* A process that finds no hash looks once for objects stored without it: 0.3.x objects
  (:meth:`Layout.legacy_objects`: one ``EXISTS``, or a ``SCAN`` of the keyspace stopped
  at the first hit, only for untagged Simple and Hash models, the only ones 0.3.x could
  write), or a members set (a hash lost with objects left). Then it creates the hash
  with nothing complete. With neither, the model is empty and everything is complete
  (nothing is written: a read leaves no key). Before a process first writes a model it
  reads the hash (:meth:`Schema.before_write`), so 0.3.x objects are seen before a
  write lists a new object.
* An index declared later (a new deploy) finds the hash without its field: it is not
  complete, except on a model without objects, where it is marked complete at once
  (``HSETIFEMPTY``).
* ``rebuild_indexes()`` marks complete what it leaves consistent, not complete what it
  could not (a unique value two objects share), and forgets indexes no longer declared
  (``upkeep.rebuild_report``, :meth:`Schema.mark_complete`).

Writes always maintain every declared index, complete or not, and while one is not
complete they also write again its unchanged entries (``ModelWrites.building``; unique
claims excepted), so a write made during a build leaves its object exact whatever the
build read. Each process re-reads the hash at most every :data:`SCHEMA_TTL` seconds,
before a query (every ``Schema`` of the key in the process learns what one reads, and
forgets on a rebuild): a rebuild finished in another process is used within that time.
Cost: one ``HGETALL`` of a hash of a few fields per model per ``SCHEMA_TTL`` per
process before a query; in each write script one ``EXISTS``.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis_schematics.io import Command, Flow, RunScript
from redis_schematics.ops import Op
from redis_schematics.util import text

if TYPE_CHECKING:
    from redis_schematics.indexes import Index
    from redis_schematics.keys import KeySpace
    from redis_schematics.layouts import Layout

#: seconds a process trusts what it read of a ``Prefix#meta`` hash before reading it again
SCHEMA_TTL = 5.0
#: the field saying the members set is complete
MEMBERS = "members"
#: the start of the field saying one index is complete
INDEX = "index:"


def index_field(index: Index) -> str:
    """The ``Prefix#meta`` field of ``index``."""
    return INDEX + index.describe()


@dataclass(frozen=True)
class SchemaState:
    """What one read of ``Prefix#meta`` says, against what this process declares."""

    #: the members set lists every stored object
    members: bool
    #: ``describe()`` of each declared index that is complete
    ready: frozenset[str]
    #: ``describe()`` of each declared index that is not (yet) complete
    pending: tuple[str, ...]
    #: ``describe()`` of each index Redis has but this model no longer declares
    undeclared: tuple[str, ...]


#: what a process assumes before it has read anything (never used to answer a query:
#: queries read the hash first; only ``explain()`` before any I/O shows it)
ASSUMED = SchemaState(members=True, ready=frozenset(), pending=(), undeclared=())


def combined(states: Sequence[SchemaState]) -> SchemaState:
    """The state of several shards: complete where every shard holds it complete."""
    ready = frozenset.intersection(*(s.ready for s in states))
    return SchemaState(
        members=all(s.members for s in states),
        ready=ready,
        pending=tuple(dict.fromkeys(d for s in states for d in s.pending)),
        undeclared=tuple(sorted({d for s in states for d in s.undeclared})),
    )


def parse(raw: Any, indexes: Sequence[Index]) -> SchemaState:
    """The state an ``HGETALL`` reply of ``Prefix#meta`` describes."""
    fields = fields_of(raw)
    declared = [i.describe() for i in indexes]
    return SchemaState(
        members=fields.get(MEMBERS) == "1",
        ready=frozenset(d for d in declared if fields.get(INDEX + d) == "1"),
        pending=tuple(d for d in declared if fields.get(INDEX + d) != "1"),
        undeclared=tuple(
            sorted(f[len(INDEX) :] for f in fields if f.startswith(INDEX) and f[len(INDEX) :] not in declared)
        ),
    )


#: every Schema of this process, so that a rebuild makes the others of its key read the
#: hash again (two model classes on one prefix, e.g. an application's and a script's)
_LIVE: weakref.WeakSet[Schema] = weakref.WeakSet()


class Schema:
    """The ``Prefix#meta`` hash of one model (or of one shard), cached per process."""

    def __init__(self, keys: KeySpace, indexes: Sequence[Index], layout: Layout, ttl_ms: int | None) -> None:
        self.key = keys.schema()
        #: an expiring model's hash lives as long as its objects (writes extend it)
        self.ttl_ms = ttl_ms
        self.members_key = keys.members()
        self.indexes = tuple(indexes)
        self.layout = layout
        self.known: SchemaState | None = None
        self.fresh_until = 0.0
        #: whether this process looked for 0.3.x objects yet, and found some
        self.probed = False
        self.legacy = False
        _LIVE.add(self)

    def state(self) -> SchemaState:
        """The last state read (:data:`ASSUMED` before any). No I/O."""
        return ASSUMED if self.known is None else self.known

    def current(self) -> Flow[SchemaState]:
        """The state, read again when older than :data:`SCHEMA_TTL`; a missing hash is
        created first (see the module docstring). Complexity: usually no I/O; one
        ``HGETALL`` per ``SCHEMA_TTL``; creating it: up to a keyspace SCAN (untagged
        Simple models only, once per model and Redis) plus one script call."""
        if self.known is not None and time.monotonic() < self.fresh_until:
            return self.known
        raw = yield Command(("HGETALL", self.key))
        if not raw:
            if not self.probed:  # 0.3.x objects do not appear later: asked once per process
                self.legacy = yield from self.layout.legacy_objects()
                self.probed = True
            if not self.legacy and not (yield Command(("EXISTS", self.members_key))):
                # a model with no object: everything is complete, and a read leaves no
                # key (its first write creates the hash, complete, in the same script)
                return self._learn(None)
            # objects stored before the hash: nothing is complete until a rebuild
            ops = self._create(2, True)
            if self.ttl_ms is not None:  # as long as the objects a write would store
                ops += ["EXTEND", 1, 1, self.ttl_ms]
            count = 2 if self.ttl_ms is not None else 1
            yield RunScript("apply_write", [self.key, self.members_key], ["0", "", 0, count, *ops])
            raw = yield Command(("HGETALL", self.key))
        state = parse(raw, self.indexes)
        if state.members and state.pending:
            raw = yield from self._adopt_if_empty(state)
        return self._learn(raw)

    def _learn(self, raw: Any) -> SchemaState:
        """Keep what was read (None: no hash, no object), for this Schema and every other
        of its key in the process (each parses it against its own declaration), so that
        ``explain()`` of another model class on the prefix shows it too."""
        until = time.monotonic() + SCHEMA_TTL
        mine = SchemaState(True, frozenset(i.describe() for i in self.indexes), (), ())
        for other in [self, *(s for s in list(_LIVE) if s.key == self.key and s is not self)]:
            if raw is None:
                known = SchemaState(True, frozenset(i.describe() for i in other.indexes), (), ())
            else:
                known = parse(raw, other.indexes)
            other.known, other.fresh_until = known, until
            if other is self:
                mine = known
        return mine

    def before_write(self) -> Flow[None]:
        """Make sure the hash exists before this process writes the model for the first
        time (so that 0.3.x objects are seen before a write lists a new one). No I/O
        once the state is known."""
        if self.known is None:
            yield from self.current()

    def drop_op(self, members_position: int) -> Op:
        """The ``SCHEMADROP`` operation ending a write that deletes: the hash goes when
        the model has no object left and its members set was complete (so a model whose
        last object goes leaves no key; its next write creates the hash again)."""
        return ("SCHEMADROP", self.key, (members_position,))

    def op(self, members_position: int) -> Op:
        """The ``SCHEMA`` operation a write of a new object carries (see
        ``apply_write.lua``): create the hash, complete, when it is missing and the
        members set is empty. ``members_position``: the members key's place in KEYS."""
        return ("SCHEMA", self.key, tuple(self._create(members_position, False)[3:]))

    def _create(self, members_position: int, legacy: bool) -> list[Any]:
        """One ``SCHEMA`` operation in ``apply_write.lua``'s ARGV form (key at 1)."""
        fields = [MEMBERS, *(index_field(i) for i in self.indexes)]
        return ["SCHEMA", 1, 2 + len(fields), members_position, "1" if legacy else "0", *fields]

    def _adopt_if_empty(self, state: SchemaState) -> Flow[Any]:
        """An index declared after the model has data is not complete; on a model with
        no object it is, at once (one guarded script: the members set must be empty)."""
        fields = [INDEX + d for d in state.pending]
        argv = [
            "0",
            "",
            0,
            1,
            "HSETIFEMPTY",
            1,
            1 + 2 * len(fields),
            2,
            *(x for f in fields for x in (f, "1")),
        ]
        yield RunScript("apply_write", [self.key, self.members_key], argv)
        return (yield Command(("HGETALL", self.key)))

    def emptied(self) -> Flow[None]:
        """After ``delete_all()`` deleted every object, also those no members set listed:
        the model is empty, so its hash goes (when the members set is still empty; the
        next write creates it afresh, complete). One script call."""
        argv = ["0", "", 0, 2, "HSETIFEMPTY", 1, 3, 2, MEMBERS, "1", "SCHEMADROP", 1, 1, 2]
        yield RunScript("apply_write", [self.key, self.members_key], argv)
        self.forget_everywhere()

    def mark_complete(self, members: bool, indexes: Sequence[str]) -> Flow[None]:
        """Record what a rebuild left complete: the members set (if ``members``) and
        ``indexes`` (``describe()`` names); the other declared indexes are marked not
        complete (a unique value two objects share: queries then do not trust that
        index), and the indexes no longer declared are forgotten. A model left without
        objects keeps no hash. Two round trips (HGETALL, one script call); every cached
        state of this key in the process is dropped, so the next query reads it."""
        raw = yield Command(("HGETALL", self.key))
        declared = [i.describe() for i in self.indexes]
        fields = ([MEMBERS, "1"] if members else []) + [x for d in indexes for x in (INDEX + d, "1")]
        drop = [INDEX + d for d in declared if d not in indexes]
        drop += [f for f in fields_of(raw) if f.startswith(INDEX) and f[len(INDEX) :] not in declared]
        if not members:
            drop.append(MEMBERS)
        ops: list[Any] = ["HSET", 1, len(fields) + 2, "v", "1", *fields]
        ops += ["HDEL", 1, len(drop), *drop] if drop else []
        ops += ["SCHEMADROP", 1, 1, 2]
        count = 3 if drop else 2
        yield RunScript("apply_write", [self.key, self.members_key], ["0", "", 0, count, *ops])
        self.forget_everywhere()

    def forget(self) -> None:
        """Drop the cached state (the next query reads the hash). No I/O."""
        self.known = None

    def forget_everywhere(self) -> None:
        """Drop the cached state of every Schema of this key in this process. No I/O."""
        for other in list(_LIVE):
            if other.key == self.key:
                other.known = None


def fields_of(raw: Any) -> dict[str, str]:
    """An ``HGETALL`` reply (a dict, or a flat list under RESP2 parsers) as text."""
    pairs = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2], strict=True)
    return {text(k): text(v) for k, v in pairs}


__all__ = ["SCHEMA_TTL", "Schema", "SchemaState", "combined", "index_field", "parse"]
