"""Query execution: a plan's steps sent to ``scripts/run_query.lua`` (one round trip, no
temporary keys), the candidates loaded in chunks and every condition re-checked on every
object, so a stale index entry can never produce a wrong row.

Every function here is a flow over a :class:`QuerySpec` (see ``redis_schematics.io``);
``redis_schematics.query.Query`` runs them with the sync or the async driver.

Order: ``order_by`` fields first (``None`` sorts before any value, "-field" descending),
then pk ascending. Without ``order_by`` lists come sorted by pk; lazy iteration of an
unpaged query streams in storage order instead.

Letters in ``Complexity:`` sections: N = objects of the model, M = matches, K = filters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from redis_schematics.engine import Engine
from redis_schematics.hydration import snapshot
from redis_schematics.indexes import Atom, kind_of_atom
from redis_schematics.io import Emit, Flow, RunScript, collect, gather
from redis_schematics.lookups import Condition, compile_test
from redis_schematics.planner import Plan, plan
from redis_schematics.records import Projection
from redis_schematics.serializers import normalize
from redis_schematics.util import text
from redis_schematics.write import CHUNK

Row = tuple[str, Any, Any]


@dataclass(frozen=True)
class QuerySpec:
    """What a query asks: conditions, order, page and fields. Immutable."""

    engine: Engine
    conditions: tuple[Condition, ...] = ()
    order: tuple[tuple[str, bool], ...] = ()
    offset_: int = 0
    limit_: int | None = None
    #: the fields ``only()`` asked for (None: every field)
    only_: tuple[str, ...] | None = None

    def explain(self) -> Plan:
        """The plan this query runs (which indexes, what is checked in Python, which
        shards). No I/O."""
        found = plan(self.engine.settings, self.conditions, self.order)
        if self.engine.shards:
            tags = tuple(s.keys.base for s in self.engine.shards_for(self.conditions))
            found = replace(found, shards=tags, of_shards=len(self.engine.shards))
        return found

    def per_shard(self) -> list[QuerySpec]:
        """This query on each shard it must ask (a sharded model's shards)."""
        return [replace(self, engine=s) for s in self.engine.shards_for(self.conditions)]

    def projection(self) -> Projection | None:
        """What a partial read loads (None: whole objects)."""
        if self.only_ is None:
            return None
        also = [c.field for c in self.conditions] + [name for name, _desc in self.order]
        return self.engine.records.projection(self.only_, also, "query().only()")

    @cached_property
    def _test(self) -> Callable[[Any], bool]:
        return compile_test(self.conditions)

    def matches(self, obj: Any) -> bool:
        """Does ``obj`` satisfy every condition (the re-check of loaded rows)?"""
        if not self.conditions:
            return True
        # one plain dict instead of an attribute read per condition
        return self._test(snapshot(obj))

    @property
    def paged(self) -> bool:
        """Is this query ordered or cut (so that it is answered as one list)?"""
        return bool(self.order or self.offset_ or self.limit_ is not None)


def script_args(q: QuerySpec, p: Plan, mode: str, offset: int, limit: int) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of ``run_query.lua`` for plan ``p`` (see the script's header)."""
    keys = [q.engine.keys.members()]
    positions: dict[str, int] = {}

    def pos(key: str) -> int:
        if key not in positions:
            keys.append(key)
            positions[key] = len(keys)
        return positions[key]

    args: list[Any] = ["1" if q.engine.expiring else "0", mode, offset, limit, len(p.order_keys)]
    # order_keys is empty when some order field has no RangeIndex: Python sorts then
    for key, (_field, desc) in zip(p.order_keys, p.order if p.order_keys else (), strict=True):
        args += [pos(key), "1" if desc else "0"]
    args.append(len(p.steps))
    for step in p.steps:
        args += ["1" if step.negated else "0", len(step.atoms)]
        for atom in step.atoms:
            kind_of_atom(atom.kind)  # a kind no index declares is a bug, not a query
            args += [atom.kind, "1" if atom.negated else "0", pos(atom.key), atom.lo, atom.hi]
    return keys, args


def _run(q: QuerySpec, p: Plan, mode: str, offset: int, limit: int) -> Flow[list[Any]]:
    keys, args = script_args(q, p, mode, offset, limit)
    reply = list((yield RunScript("run_query", keys, args)))
    expired = int(reply[1] if mode == "count" else reply[0])
    if expired:  # not returned nor counted; purged unless reads never write (see ReadCleanup)
        yield from q.engine.purge_after_read()
    return reply


def _single_atom(q: QuerySpec, p: Plan) -> Atom | None:
    """The one positive index atom of a plan with a single indexed condition on a model
    that never expires: one command answers it, as the script would. None otherwise."""
    if q.engine.expiring or len(p.steps) != 1:
        return None
    (step,) = p.steps
    if step.negated or len(step.atoms) != 1 or step.atoms[0].negated:
        return None
    return step.atoms[0]


def candidate_pks(q: QuerySpec, p: Plan) -> Flow[tuple[list[str], int]]:
    """Candidate pks from the indexes (or every member), and how many were skipped."""
    if p.pageable and (q.offset_ or q.limit_ is not None):
        # sorted and cut on the server (also with no condition at all)
        limit = -1 if q.limit_ is None else q.limit_
        reply = yield from _run(q, p, "pks", q.offset_, limit)
    elif p.scan:
        return (yield from q.engine.members()), 0
    elif (atom := _single_atom(q, p)) is not None:
        # SMEMBERS / ZRANGE BYSCORE / HGET, without the script copying every pk twice
        kind = kind_of_atom(atom.kind)
        found = kind.members_of((yield kind.members_command(atom)))
        return [text(pk) for pk in found], 0
    else:
        reply = yield from _run(q, p, "pks", 0, -1)
    return [text(pk) for pk in reply[2:]], int(reply[1])


def sort_rows(rows: list[Row], order: tuple[tuple[str, bool], ...]) -> None:
    """Sort (pk, payload, obj) rows in place: order fields (None first), then pk."""
    rows.sort(key=lambda r: str(r[0]))
    for name, desc in reversed(order):
        rows.sort(key=_field_key(name), reverse=desc)


def _field_key(name: str) -> Callable[[Row], tuple[bool, Any]]:
    return lambda row: _order_key(getattr(row[2], name, None))


def _order_key(value: Any) -> tuple[bool, Any]:
    value = normalize(value)
    return (value is not None, value) if value is not None else (False, 0)


def rows(q: QuerySpec) -> Flow[list[Row]]:
    """(pk, payload, object) for every row of the page, in order.

    Complexity: one script call (O(C*K) for C candidates) plus one round trip per
    ``CHUNK`` candidates loaded; a scan reads all N objects. A sharded model: the same on
    every shard asked, the shards in the same round trips, each asked for at most
    offset + limit rows, merged in O(R log R) for the R rows they return.
    """
    if q.engine.shards:
        return (yield from _merged_rows(q))
    p = q.explain()
    pks, skipped = yield from candidate_pks(q, p)
    loaded = yield from q.engine.load(pks, q.projection())
    found = [r for r in loaded if q.matches(r[2])]
    sort_rows(found, q.order)
    start = q.offset_ - skipped
    stop = None if q.limit_ is None else start + q.limit_
    return found[start:stop]


def _merged_rows(q: QuerySpec) -> Flow[list[Row]]:
    """:func:`rows` of a sharded model: each shard's first offset + limit rows (each
    list exact and in order, ties included), merged and cut here."""
    stop = None if q.limit_ is None else q.offset_ + q.limit_
    parts = [replace(part, offset_=0, limit_=stop) for part in q.per_shard()]
    merged = [row for found in (yield from gather([rows(part) for part in parts])) for row in found]
    sort_rows(merged, q.order)
    return merged[q.offset_ : stop]


def objects(q: QuerySpec) -> Flow[list[Any]]:
    """Every matching object of the page, as a list."""
    return [obj for _pk, _payload, obj in (yield from rows(q))]


def stream(q: QuerySpec) -> Flow[None]:
    """Emit the matching objects: without order/offset/limit, ``CHUNK`` objects are
    loaded at a time and emitted, so a huge result never sits in memory at once."""
    if q.paged:
        yield Emit((yield from objects(q)))
        return
    if q.engine.shards:
        for part in q.per_shard():
            yield from stream(part)
        return
    engine = q.engine
    projection = q.projection()

    def emit(batch: list[str]) -> Flow[None]:
        loaded = yield from engine.load(batch, projection)
        yield Emit([obj for _pk, _payload, obj in loaded if q.matches(obj)])

    p = q.explain()
    if p.scan:
        yield from engine.each_member_batch(emit)
        return
    pks, _ = yield from candidate_pks(q, p)
    for start in range(0, len(pks), CHUNK):
        yield from emit(pks[start : start + CHUNK])


def count(q: QuerySpec) -> Flow[int]:
    """Number of matching objects.

    Complexity: without conditions O(1) (SCARD); one indexed value or range on a model
    that never expires: one SCARD / ZCOUNT / HEXISTS; other exact indexed conditions:
    one script call and no object loaded; otherwise the candidates are loaded.
    """
    if q.paged:
        return len((yield from rows(q)))
    if not q.conditions:
        return (yield from q.engine.count_all())
    if q.engine.shards:
        return sum((yield from gather([count(part) for part in q.per_shard()])))
    p = q.explain()
    if not p.countable:
        return len((yield from collect(stream(q))))
    atom = _single_atom(q, p)
    if atom is not None:
        return int((yield kind_of_atom(atom.kind).count_command(atom)))
    return int((yield from _run(q, p, "count", 0, -1))[0])


def delete(q: QuerySpec) -> Flow[int]:
    """Delete the matching objects; one changed since it was read is re-checked.

    Returns the number deleted. Complexity: as :func:`rows`, plus one write round trip
    per ``CHUNK`` objects.
    """
    found = yield from rows(replace(q, only_=None))  # whole payloads: the deletes guard on them
    known = {pk: payload for pk, payload, _obj in found}
    return (yield from q.engine.writes.delete_pks(list(known), known=known, keep_if=q.matches))
