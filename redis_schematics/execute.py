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
from redis_schematics.io import Emit, Evicting, Flow, RunScript, collect, gather
from redis_schematics.lookups import Condition, compile_test
from redis_schematics.planner import Plan, plan
from redis_schematics.records import Projection
from redis_schematics.serializers import normalize, score_is_exact
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
        shards), using the indexes Redis holds complete as this process last read them
        (``schema.py``; before any read, it assumes every index is). No I/O."""
        found = plan(self.engine.settings, self.conditions, self.order, self.engine.schema_view())
        if self.engine.shards:
            tags = tuple(s.keys.base for s in self.engine.shards_for(self.conditions))
            found = replace(found, shards=tags, of_shards=len(self.engine.shards))
        return found

    def ready(self) -> Flow[None]:
        """Refuse what ``__strict_performance__`` refuses whatever Redis holds (before any
        I/O), then make sure the model's ``Prefix#meta`` state is fresh (``schema.py``),
        so that :meth:`explain` plans with the indexes that are complete."""
        if self.engine.strict:
            plan(self.engine.settings, self.conditions, self.order)
        if not self.engine.shards:
            yield from self.engine.schema_state()
            return
        # only the shards asked (their reads in one round trip)
        yield from gather([shard.schema_state() for shard in self.engine.shards_for(self.conditions)])

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


#: the work one ``run_query.lua`` call does at most, in pks read plus probes made (1,000
#: candidates probed against one more condition): a few ms of server time (at 500k
#: objects: 3.7 ms per call on average, 8 ms at worst), so no query holds Redis long
BUDGET = 2000


def script_args(
    q: QuerySpec,
    p: Plan,
    mode: str,
    cursor: str = "",
    order_keys: tuple[str, ...] = (),
    need: int = 0,
    last: str = "",
    spent: int = 0,
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of ``run_query.lua`` for plan ``p`` (see the script's header)."""
    keys = [q.engine.keys.members()]
    positions: dict[str, int] = {}

    def pos(key: str) -> int:
        if key not in positions:
            keys.append(key)
            positions[key] = len(keys)
        return positions[key]

    expiring = "1" if q.engine.expiring else "0"
    args: list[Any] = [expiring, mode, BUDGET, cursor, need, last, spent, len(order_keys)]
    by_key = dict(zip(p.order_keys, (desc for _f, desc in p.order), strict=False))
    for key in order_keys:
        args += [pos(key), "1" if by_key[key] else "0"]
    args.append(len(p.steps))
    for step in p.steps:
        args += ["1" if step.negated else "0", len(step.atoms)]
        for atom in step.atoms:
            kind_of_atom(atom.kind)  # a kind no index declares is a bug, not a query
            args += [atom.kind, "1" if atom.negated else "0", pos(atom.key), atom.lo, atom.hi]
    return keys, args


def _pieces(q: QuerySpec, p: Plan, mode: str, order_keys: tuple[str, ...] = ()) -> Flow[list[list[Any]]]:
    """Every reply of ``run_query.lua`` in ``mode``, one bounded call per piece until
    the cursor comes back empty; expired objects met are purged once at the end."""
    replies: list[list[Any]] = []
    cursor, expired = "", 0
    while True:
        keys, args = script_args(q, p, mode, cursor, order_keys)
        reply = list((yield RunScript("run_query", keys, args)))
        replies.append(reply)
        expired += int(reply[0])
        cursor = text(reply[1])
        if not cursor:
            break
    if expired:  # not returned nor counted; purged unless reads never write (see ReadCleanup)
        yield from q.engine.purge_after_read()
    return replies


def matching_pks(q: QuerySpec, p: Plan) -> Flow[list[str]]:
    """The pks the indexed steps of ``p`` select, in bounded script calls (``BUDGET``
    units of work each). Complexity: O(C * K) server work for C candidates and K
    steps, about C * (K + 1) / BUDGET round trips."""
    replies = yield from _pieces(q, p, "pks")
    return list(dict.fromkeys(text(pk) for reply in replies for pk in reply[3:]))


def _server_count(q: QuerySpec, p: Plan) -> Flow[int]:
    replies = yield from _pieces(q, p, "count")
    exact = int(replies[0][3])
    if exact >= 0:
        return exact
    return len({text(pk) for reply in replies for pk in reply[4:]})


Scored = tuple[str, tuple[float | None, ...]]


def _score(raw: Any) -> float | None:
    value = text(raw)
    return float(value) if value else None


def _scored(q: QuerySpec, p: Plan) -> Flow[list[Scored]]:
    """Every matching pk with its score under each order key (None: not in it)."""
    replies = yield from _pieces(q, p, "scores", p.order_keys)
    found: dict[str, tuple[float | None, ...]] = {}
    for reply in replies:
        width = int(reply[3]) + 1
        items = reply[4:]
        for at in range(0, len(items), width):
            found[text(items[at])] = tuple(_score(v) for v in items[at + 1 : at + width])
    return list(found.items())


def _walked(q: QuerySpec, p: Plan, need: int) -> Flow[list[Scored] | None]:
    """The first ``need`` matching rows in the order of the one order key (and the
    rest of the last group of equal scores), walking that index in bounded calls; None
    when the walk cannot give the page or would probe more pks than there are
    candidates (then scoring the candidates is cheaper: the script does it in the same
    call when they are few, status "scored", and the rows are every match)."""
    key = p.order_keys[0]
    desc = p.order[0][1]
    found: dict[str, tuple[float | None, ...]] = {}
    cursor, last, probes, expired = "", "", 0, 0
    status = "more"
    while status == "more":
        keys, args = script_args(q, p, "walk", cursor, (key,), need - len(found), last, probes)
        reply = list((yield RunScript("run_query", keys, args)))
        expired += int(reply[0])
        cursor, status = text(reply[1]), text(reply[3])
        probes += int(reply[4])
        for at in range(5, len(reply), 2):
            last = text(reply[at + 1])
            found.setdefault(text(reply[at]), (_score(last),))
    if expired:
        yield from q.engine.purge_after_read()
    if status in ("full", "scored") or (status == "end" and (len(found) >= need or not desc)):
        return list(found.items())
    return None  # "no", "costly", or a descending walk that ran out (None rows come last)


def _sort_key(order: tuple[tuple[str, bool], ...]) -> Callable[[Scored], tuple[Any, ...]]:
    """Sort key of scored rows: each order key's score (None first ascending, last
    descending), then the pk (the order :func:`sort_rows` gives loaded rows)."""
    descending = [desc for _name, desc in order]

    def key(row: Scored) -> tuple[Any, ...]:
        parts: list[Any] = []
        for score, desc in zip(row[1], descending, strict=True):
            if desc:
                parts.append((0, -score) if score is not None else (1, 0.0))
            else:
                parts.append((1, score) if score is not None else (0, 0.0))
        parts.append(row[0])
        return tuple(parts)

    return key


def _exact_order(rows: list[Row], order: tuple[tuple[str, bool], ...]) -> bool:
    """Do the scores of these rows order them exactly (no two values share a score)?"""
    return all(
        (value := getattr(obj, name, None)) is None or score_is_exact(value)
        for _pk, _payload, obj in rows
        for name, _desc in order
    )


def _page(q: QuerySpec, p: Plan) -> Flow[tuple[list[Row], int]]:
    """The rows of an ordered page the server can sort (and how many rows come before
    the first one): the matching pks with their scores (the walk, or every candidate
    scored), sorted here, and only the page loaded. When a loaded value is one a double
    cannot hold (so its score may be shared by other values) the page widens to whole
    groups of equal scores, re-sorted on exact values by the caller."""
    stop = None if q.limit_ is None else q.offset_ + q.limit_
    scored = None
    if stop is not None and len(p.order_keys) == 1:
        scored = yield from _walked(q, p, stop)
    if scored is None:
        scored = yield from _scored(q, p)
    key = _sort_key(q.order)
    scored.sort(key=key)
    first, last = q.offset_, len(scored) if stop is None else min(stop, len(scored))
    projection = q.projection()
    loaded = yield from q.engine.load([pk for pk, _s in scored[first:last]], projection)
    if first < last and not _exact_order(loaded, q.order):
        while first > 0 and scored[first - 1][1] == scored[first][1]:
            first -= 1
        while last < len(scored) and scored[last][1] == scored[last - 1][1]:
            last += 1
        loaded = yield from q.engine.load([pk for pk, _s in scored[first:last]], projection)
    return loaded, first


def _single_atom(q: QuerySpec, p: Plan) -> Atom | None:
    """The one positive index atom of a plan with a single indexed condition on a model
    that never expires: one command counts it (SCARD / ZCOUNT / HEXISTS), and a cursor
    read may list it. None otherwise."""
    if q.engine.expiring or len(p.steps) != 1:
        return None
    (step,) = p.steps
    if step.negated or len(step.atoms) != 1 or step.atoms[0].negated:
        return None
    return step.atoms[0]


def candidate_pks(q: QuerySpec, p: Plan) -> Flow[list[str]]:
    """Candidate pks from the indexes, or every member when no index helps."""
    if p.scan:
        return (yield from q.engine.every_pk())
    atom = _single_atom(q, p)
    if atom is not None:  # nothing to probe: direct reads, without the script copying pks
        kind = kind_of_atom(atom.kind)
        scan = kind.members_scan(atom, BUDGET)
        if scan is not None:
            return list(dict.fromkeys(text(pk) for pk in (yield from scan.items())))
        first = kind.first_members(atom, BUDGET)
        if first is not None:
            found = kind.members_of((yield first))
            if len(found) < BUDGET:  # that was all of them (else the script pages them)
                return [text(pk) for pk in found]
    return (yield from matching_pks(q, p))


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
    yield from q.ready()
    if q.engine.shards:
        return (yield from _merged_rows(q))
    p = q.explain()
    if p.pageable:
        loaded, skipped = yield from _page(q, p)
    else:
        loaded, skipped = (yield from q.engine.load((yield from candidate_pks(q, p)), q.projection())), 0
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
    yield from q.ready()
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
    if p.scan and p.members_complete:
        yield from engine.each_member_batch(emit)
        return
    pks = yield from candidate_pks(q, p)
    for start in range(0, len(pks), CHUNK):
        yield from emit(pks[start : start + CHUNK])


def count(q: QuerySpec) -> Flow[int]:
    """Number of matching objects.

    Complexity: without conditions O(1) (SCARD); one indexed value or range on a model
    that never expires: one SCARD / ZCOUNT / HEXISTS; other exact indexed conditions:
    about C * K / BUDGET script calls for C candidates and no object loaded; otherwise the
    candidates are loaded. On a server whose ``maxmemory-policy`` can evict our keys,
    index cardinalities may count evicted objects, so every count loads the candidates
    (as ``filter`` does, without building objects) and counts the stored ones.
    """
    if q.paged:
        return len((yield from rows(q)))
    yield from q.ready()
    p = q.explain()  # before any other I/O: a strict model refuses a scan here
    loads = not p.countable or (yield Evicting())  # asked once, not once per shard
    return (yield from _count(q, p, loads))


def _count(q: QuerySpec, p: Plan, loads: bool) -> Flow[int]:
    """:func:`count` once it knows whether to load the candidates; the shards of a
    sharded model side by side (their requests share round trips)."""
    if q.engine.shards:
        parts = q.per_shard()
        return sum((yield from gather([_count(part, part.explain(), loads) for part in parts])))
    if loads:
        return len((yield from collect(stream(q))))
    if not q.conditions:
        return (yield from q.engine.count_all())
    atom = _single_atom(q, p)
    if atom is not None:
        return int((yield kind_of_atom(atom.kind).count_command(atom)))
    return (yield from _server_count(q, p))


def delete(q: QuerySpec) -> Flow[int]:
    """Delete the matching objects; one changed since it was read is re-checked.

    Returns the number deleted. Complexity: as :func:`rows`, plus one write round trip
    per ``CHUNK`` objects.
    """
    found = yield from rows(replace(q, only_=None))  # whole payloads: the deletes guard on them
    known = {pk: payload for pk, payload, _obj in found}
    return (yield from q.engine.writes.delete_pks(list(known), known=known, keep_if=q.matches))
