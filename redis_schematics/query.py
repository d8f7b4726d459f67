"""Queries: filter kwargs -> conditions -> Plan -> execution.

:func:`plan` does no I/O: it picks an index for each condition it can (a :class:`Step`),
leaves the rest as residual conditions checked on loaded objects, and says whether the
server can count and page. Execution sends the steps to ``scripts/run_query.lua`` (one
round trip, no temporary keys), loads the candidates in chunks and re-checks every
condition on every object, so a stale index entry can never produce a wrong row.

Order: ``order_by`` fields first (``None`` sorts before any value, "-field" descending),
then pk ascending. Without ``order_by`` lists come sorted by pk; lazy iteration of an
unpaged query streams in storage order instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from redis_schematics.exceptions import QueryError, StrictPerformanceException, UnknownField
from redis_schematics.hydration import snapshot
from redis_schematics.indexes import Atom, RangeIndex, Step
from redis_schematics.indexes.range import merge_ranges
from redis_schematics.lookups import COMPOUND_TYPES, Condition, compile_test, parse_filters
from redis_schematics.serializers import normalize
from redis_schematics.store import CHUNK, Projection, Store, script
from redis_schematics.util import text

if TYPE_CHECKING:
    from typing_extensions import Self


@dataclass(frozen=True)
class Plan:
    """How a query will run; plain data, so it can be compared in tests and printed.

    ``steps`` are answered by indexes on the server; ``residual`` conditions are checked
    on loaded objects; ``scan`` means no index helps and every object is read;
    ``order_keys`` are the ZSETs the server sorts by (empty when it cannot).
    """

    model: str
    steps: tuple[Step, ...]
    residual: tuple[Condition, ...]
    order: tuple[tuple[str, bool], ...]
    order_keys: tuple[str, ...]
    scan: bool

    @property
    def countable(self) -> bool:
        """The server's count is exact: every condition (if any) is indexed exactly."""
        return not self.residual and all(s.exact for s in self.steps)

    @property
    def pageable(self) -> bool:
        """The server can sort and cut the page."""
        return self.countable and bool(self.order) and len(self.order_keys) == len(self.order)

    def __str__(self) -> str:
        lines = [f"{self.model} query:"]
        if self.scan:
            lines.append("  scan every object (no indexed condition)" if self.residual else "  every object")
        for s in self.steps:
            lines.append(f"  index {s.index}: {s.describe()}" + ("" if s.exact else " (re-checked)"))
        for c in self.residual:
            lines.append(f"  check on loaded objects: {c}")
        if self.order:
            by = ", ".join(("-" if d else "") + f for f, d in self.order)
            where = "on the server" if self.pageable else "in Python"
            lines.append(f"  order by {by} ({where})")
        return "\n".join(lines)


def parse_order(store: Store, names: Sequence[str]) -> tuple[tuple[str, bool], ...]:
    """``("-best_before", "amount_kg")`` -> ((field, descending), ...)."""
    out = []
    for raw in names:
        desc = raw.startswith("-")
        name = raw[1:] if desc else raw
        if name not in store.fields:
            close = difflib.get_close_matches(name, list(store.fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "."
            msg = (
                f"{store.name}.order_by({raw!r}): no field {name!r}{hint} Fields: {', '.join(store.fields)}."
            )
            raise UnknownField(msg)
        if isinstance(store.fields[name], COMPOUND_TYPES):
            msg = f"{store.name}.order_by({raw!r}): list, dict and model fields have no order."
            raise QueryError(msg)
        out.append((name, desc))
    return tuple(out)


def _merge_ranges(steps: list[Step]) -> list[Step]:
    """Fold the range steps of each RangeIndex (only it serves gt/gte/lt/lte) into one
    window step, so ``a <= x < b`` reads the window, not everything above ``a``."""
    groups: dict[str, list[Step]] = {}
    for step in steps:
        if step.condition.lookup.ordered:
            groups.setdefault(step.index, []).append(step)
    merged = {index: merge_ranges(group) for index, group in groups.items() if len(group) > 1}
    out: list[Step] = []
    for step in steps:
        if step.condition.lookup.ordered and step.index in merged:
            window = merged.pop(step.index)
            out.append(window)
        elif not (step.condition.lookup.ordered and len(groups[step.index]) > 1):
            out.append(step)
    return out


def plan(store: Store, conditions: Sequence[Condition], order: tuple[tuple[str, bool], ...] = ()) -> Plan:
    """Choose an index for each condition; no I/O.

    Raises:
        StrictPerformanceException: under ``__strict_performance__``, when no condition
            is indexed (names the index that would serve the first condition).
    """
    steps: list[Step] = []
    residual: list[Condition] = []
    for cond in conditions:
        step = None
        for index in store.indexes:
            if index.field == cond.field:
                step = index.step(cond)
                if step is not None:
                    break
        if step is None:
            residual.append(cond)
        else:
            steps.append(step)
    steps = _merge_ranges(steps)
    ranges = {i.field: i.key for i in store.indexes if isinstance(i, RangeIndex)}
    order_keys = tuple(ranges[f] for f, _ in order if f in ranges)
    if len(order_keys) != len(order):
        order_keys = ()
    result = Plan(store.name, tuple(steps), tuple(residual), order, order_keys, scan=not steps)
    if result.scan and conditions and store.strict:
        first = conditions[0]
        kind = "an index"
        if first.lookup.ordered:
            kind = "a RangeIndex"
        elif first.value is None or (first.lookup.many and None in first.value):
            kind = "an EqualityIndex or RangeIndex (a UniqueIndex does not list None)"
        have = [i.describe() for i in store.indexes if i.field == first.field]
        has = f" ({', '.join(have)} cannot answer it)" if have else ""
        msg = (
            f"{store.name}.filter({', '.join(map(str, conditions))}) would read every object: "
            f"{first.field}__{first.lookup.lookup_name} needs {kind} on {store.name}.{first.field}"
            f"{has}; declare one in __indexes__ or turn off __strict_performance__."
        )
        raise StrictPerformanceException(msg)
    return result


def _script_args(store: Store, p: Plan, mode: str, offset: int, limit: int) -> tuple[list[str], list[Any]]:
    keys = [store.keys.members()]
    positions: dict[str, int] = {}

    def pos(key: str) -> int:
        if key not in positions:
            keys.append(key)
            positions[key] = len(keys)
        return positions[key]

    args: list[Any] = ["1" if store.expiring else "0", mode, offset, limit, len(p.order_keys)]
    # order_keys is empty when some order field has no RangeIndex: Python sorts then
    for key, (_field, desc) in zip(p.order_keys, p.order if p.order_keys else (), strict=True):
        args += [pos(key), "1" if desc else "0"]
    args.append(len(p.steps))
    for step in p.steps:
        args += ["1" if step.negated else "0", len(step.atoms)]
        for atom in step.atoms:
            args += _atom_args(atom, pos)
    return keys, args


def _atom_args(atom: Atom, pos: Any) -> list[Any]:
    return [atom.kind, "1" if atom.negated else "0", pos(atom.key), atom.lo, atom.hi]


def sort_objects(rows: list[tuple[str, Any, Any]], order: tuple[tuple[str, bool], ...]) -> None:
    """Sort (pk, payload, obj) rows in place: order fields (None first), then pk."""
    rows.sort(key=lambda r: str(r[0]))
    for name, desc in reversed(order):
        rows.sort(key=_field_key(name), reverse=desc)


def _field_key(name: str) -> Callable[[tuple[str, Any, Any]], tuple[bool, Any]]:
    return lambda row: _order_key(getattr(row[2], name, None))


def _order_key(value: Any) -> tuple[bool, Any]:
    value = normalize(value)
    return (value is not None, value) if value is not None else (False, 0)


@dataclass(frozen=True)
class Query:
    """A lazy, immutable query: every refinement returns a new Query.

    Nothing touches Redis until the query is iterated, counted, listed or deleted.
    """

    store: Store
    conditions: tuple[Condition, ...] = ()
    order: tuple[tuple[str, bool], ...] = ()
    offset_: int = 0
    limit_: int | None = None
    #: the fields ``only()`` asked for (None: every field)
    only_: tuple[str, ...] | None = None

    # -- refinements ----------------------------------------------------------------------
    def filter(self, **kwargs: Any) -> Self:
        """More conditions, ANDed with the existing ones."""
        more = parse_filters(self.store.name, self.store.fields, kwargs)
        return replace(self, conditions=self.conditions + more)

    def order_by(self, *fields: str) -> Self:
        """Order by fields (``"-field"`` descending); replaces any earlier order."""
        return replace(self, order=parse_order(self.store, fields))

    def limit(self, n: int | None) -> Self:
        """At most ``n`` rows."""
        if n is not None and (not isinstance(n, int) or n < 0):
            msg = f"{self.store.name} query: limit must be a non-negative int or None, not {n!r}."
            raise QueryError(msg)
        return replace(self, limit_=n)

    def offset(self, n: int) -> Self:
        """Skip the first ``n`` rows."""
        if not isinstance(n, int) or n < 0:
            msg = f"{self.store.name} query: offset must be a non-negative int, not {n!r}."
            raise QueryError(msg)
        return replace(self, offset_=n)

    def only(self, *fields: str) -> Self:
        """Load just these fields (plus those filtered or ordered on, which the rows are
        re-checked and sorted by, and those the pk comes from); see
        ``Model.match_for_pk(pk, only=...)`` for what such objects allow."""
        self.store.field_names(fields, "query().only()")
        return replace(self, only_=tuple(fields))

    def _projection(self) -> Projection | None:
        if self.only_ is None:
            return None
        also = [c.field for c in self.conditions] + [name for name, _desc in self.order]
        return self.store.projection(self.only_, also, "query().only()")

    # -- inspection -------------------------------------------------------------------------
    def explain(self) -> Plan:
        """The plan this query runs (which indexes, what is checked in Python). No I/O."""
        return plan(self.store, self.conditions, self.order)

    # -- execution ----------------------------------------------------------------------------
    def _candidates(self, p: Plan, mode: str, offset: int, limit: int) -> list[Any]:
        client = self.store.client
        keys, args = _script_args(self.store, p, mode, offset, limit)
        reply = list(script(client, "run_query")(keys, args, client=client))
        expired = int(reply[1] if mode == "count" else reply[0])
        if expired:
            self.store.purge_expired(max_batches=1)
        return reply

    def _candidate_pks(self, p: Plan) -> tuple[list[str], int]:
        """Candidate pks from the indexes (or every member), and how many were skipped."""
        if p.pageable and (self.offset_ or self.limit_ is not None):
            # sorted and cut on the server (also with no condition at all)
            limit = -1 if self.limit_ is None else self.limit_
            reply = self._candidates(p, "pks", self.offset_, limit)
        elif p.scan:
            pks = [pk for batch in self.store.member_batches(self.store.client) for pk in batch]
            return pks, 0
        elif (direct := self._direct_pks(p)) is not None:
            return direct, 0
        else:
            reply = self._candidates(p, "pks", 0, -1)
        return [text(pk) for pk in reply[2:]], int(reply[1])

    def _single_atom(self, p: Plan) -> Atom | None:
        """The one positive index atom of a plan with a single indexed condition on a
        model that never expires: one command answers it, as the script would run it.
        None otherwise: the script answers."""
        if self.store.expiring or len(p.steps) != 1:
            return None
        (step,) = p.steps
        if step.negated or len(step.atoms) != 1 or step.atoms[0].negated:
            return None
        return step.atoms[0]

    def _direct_count(self, p: Plan) -> int | None:
        """The count of a countable plan that one command answers (SCARD, ZCOUNT or
        HEXISTS, what the script returns for it), or None."""
        atom = self._single_atom(p)
        if atom is None:
            return None
        client = self.store.client
        if atom.kind == "S":
            return int(client.scard(atom.key))
        if atom.kind == "Z":
            return int(client.zcount(atom.key, atom.lo, atom.hi))
        if atom.kind == "U":
            return int(client.hexists(atom.key, atom.lo))
        return None  # pragma: no cover - every atom kind is handled above

    def _direct_pks(self, p: Plan) -> list[str] | None:
        """The candidates of a plan that one command answers (SMEMBERS, ZRANGE BYSCORE or
        HGET, as the script would run them, without it copying every pk twice), or None."""
        atom = self._single_atom(p)
        if atom is None:
            return None
        client = self.store.client
        if atom.kind == "S":
            found = client.smembers(atom.key)
        elif atom.kind == "Z":
            found = client.zrange(atom.key, atom.lo, atom.hi, byscore=True)
        elif atom.kind == "U":
            owner = client.hget(atom.key, atom.lo)
            found = [] if owner is None else [owner]
        else:  # pragma: no cover - every atom kind is handled above
            return None
        return [text(pk) for pk in found]

    def _matches(self, obj: Any) -> bool:
        """Does ``obj`` satisfy every condition (the re-check of loaded rows)?"""
        if not self.conditions:
            return True
        # one plain dict instead of an attribute read per condition
        return self._test(snapshot(obj))

    @cached_property
    def _test(self) -> Callable[[Any], bool]:
        return compile_test(self.conditions)

    def rows(self) -> list[tuple[str, Any, Any]]:
        """(pk, payload, object) for every row of the page, in order.

        Complexity: one script call (O(C*K) for C candidates) plus one round trip per
        ``CHUNK`` candidates loaded; a scan reads all N objects.
        """
        p = self.explain()
        pks, skipped = self._candidate_pks(p)
        rows = [r for r in self.store.load(self.store.client, pks, self._projection()) if self._matches(r[2])]
        sort_objects(rows, self.order)
        start = self.offset_ - skipped
        stop = None if self.limit_ is None else start + self.limit_
        return rows[start:stop]

    def all(self) -> list[Any]:
        """Every matching object of the page, as a list."""
        return [obj for _pk, _payload, obj in self.rows()]

    def __iter__(self) -> Iterator[Any]:
        """Iterate the rows. Without order/offset/limit, objects are loaded ``CHUNK`` at a
        time and streamed, so a huge result never sits in memory at once."""
        if self.order or self.offset_ or self.limit_ is not None:
            yield from self.all()
            return
        p = self.explain()
        client = self.store.client
        if p.scan:
            batches: Iterator[Sequence[str]] = self.store.member_batches(client)
        else:
            pks, _ = self._candidate_pks(p)
            batches = (pks[i : i + CHUNK] for i in range(0, len(pks), CHUNK))
        projection = self._projection()
        for batch in batches:
            for _pk, _payload, obj in self.store.load(client, batch, projection):
                if self._matches(obj):
                    yield obj

    def first(self) -> Any | None:
        """The first row, or None."""
        rows = self.limit(1).all()
        return rows[0] if rows else None

    def count(self) -> int:
        """Number of matching objects.

        Complexity: without conditions O(1) (SCARD); one indexed value or range on a
        model that never expires: one SCARD / ZCOUNT / HEXISTS; other exact indexed
        conditions: one script call and no object loaded; otherwise the candidates are
        loaded.
        """
        if self.order or self.offset_ or self.limit_ is not None:
            return len(self.rows())
        if not self.conditions:
            return self.store.count_all(self.store.client)
        p = self.explain()
        if p.countable:
            direct = self._direct_count(p)
            if direct is not None:
                return direct
            return int(self._candidates(p, "count", 0, -1)[0])
        return sum(1 for _ in self)

    def delete(self) -> int:
        """Delete the matching objects; one changed since it was read is re-checked.

        Returns the number deleted. Complexity: as :meth:`rows`, plus one write round
        trip per ``CHUNK`` objects.
        """
        rows = replace(self, only_=None).rows()  # whole payloads: the deletes guard on them
        known = {pk: payload for pk, payload, _obj in rows}
        return self.store.delete_pks(list(known), known=known, keep_if=self._matches)
