"""Query planning, without I/O: conditions -> a :class:`Plan` of index steps.

:func:`plan` picks an index for each condition it can (a :class:`Step`), leaves the rest
as residual conditions checked on loaded objects, and says whether the server can count
and page. A Plan is plain data, compared in tests and printed by ``explain()``; the
executor (``redis_schematics.execute``) runs it.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from redis_schematics.exceptions import IndexNotReady, QueryError, StrictPerformanceException, UnknownField
from redis_schematics.indexes import Step
from redis_schematics.indexes.range import RangeIndex, merge_ranges
from redis_schematics.lookups import COMPOUND_TYPES, Condition
from redis_schematics.schema import ASSUMED, SchemaState
from redis_schematics.settings import Settings


@dataclass(frozen=True)
class Plan:
    """How a query will run; plain data, so it can be compared in tests and printed.

    ``steps`` are answered by indexes on the server; ``residual`` conditions are checked
    on loaded objects; ``scan`` means no index helps and every object is read;
    ``order_keys`` are the ZSETs the server sorts by (empty when it cannot). For a
    sharded model, ``shards`` are the hash tags of the shards the query runs on (the same
    plan on each, merged on the client) out of ``of_shards``.
    """

    model: str
    steps: tuple[Step, ...]
    residual: tuple[Condition, ...]
    order: tuple[tuple[str, bool], ...]
    order_keys: tuple[str, ...]
    scan: bool
    shards: tuple[str, ...] = ()
    of_shards: int = 0
    #: declared indexes left unused because Redis does not hold them complete yet
    pending: tuple[str, ...] = ()
    #: the members set lists every object (False: data of 0.3.x not adopted yet, so a
    #: scan enumerates the stored keys instead)
    members_complete: bool = True

    @property
    def countable(self) -> bool:
        """The server's count is exact: every condition (if any) is indexed exactly,
        and a count of every object can trust the members set."""
        return (
            not self.residual
            and all(s.exact for s in self.steps)
            and (self.members_complete or not self.scan)
        )

    @property
    def pageable(self) -> bool:
        """The server can sort and cut the page."""
        return self.countable and bool(self.order) and len(self.order_keys) == len(self.order)

    def __str__(self) -> str:
        lines = [f"{self.model} query:"]
        if self.scan:
            lines.append("  scan every object (no indexed condition)" if self.residual else "  every object")
            if not self.members_complete:
                lines.append("  members set not complete (data older than it): SCAN of the stored keys")
        for name in self.pending:
            lines.append(f"  not used: {name} is not complete yet (rebuild_indexes() builds it)")
        for s in self.steps:
            lines.append(f"  index {s.index}: {s.describe()}" + ("" if s.exact else " (re-checked)"))
        for c in self.residual:
            lines.append(f"  check on loaded objects: {c}")
        if self.order:
            by = ", ".join(("-" if d else "") + f for f, d in self.order)
            where = "on the server" if self.pageable else "in Python"
            lines.append(f"  order by {by} ({where})")
        if self.shards:
            which = "every shard" if len(self.shards) == self.of_shards else "one shard"
            lines.append(f"  on {which} ({len(self.shards)} of {self.of_shards}): {', '.join(self.shards)}")
        return "\n".join(lines)


def parse_order(settings: Settings, names: Sequence[str]) -> tuple[tuple[str, bool], ...]:
    """``("-best_before", "amount_kg")`` -> ((field, descending), ...).

    Raises:
        UnknownField, QueryError: a name is not a field, or a field with no order.
    """
    out = []
    for raw in names:
        desc = raw.startswith("-")
        name = raw[1:] if desc else raw
        if name not in settings.fields:
            close = difflib.get_close_matches(name, list(settings.fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "."
            fields = ", ".join(settings.fields)
            msg = f"{settings.name}.order_by({raw!r}): no field {name!r}{hint} Fields: {fields}."
            raise UnknownField(msg)
        if isinstance(settings.fields[name], COMPOUND_TYPES):
            msg = f"{settings.name}.order_by({raw!r}): list, dict and model fields have no order."
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


def plan(
    settings: Settings,
    conditions: Sequence[Condition],
    order: tuple[tuple[str, bool], ...] = (),
    state: SchemaState = ASSUMED,
) -> Plan:
    """Choose an index for each condition among the complete ones (``state``: what
    Redis holds complete, see ``schema.py``); no I/O.

    Raises:
        IndexNotReady: under ``__strict_performance__``, when the query would read every
            object because an index that would serve it (or the members set) is not
            complete yet.
        StrictPerformanceException: under ``__strict_performance__``, when no condition
            is indexed (names the index that would serve the first condition).
    """
    steps: list[Step] = []
    residual: list[Condition] = []
    skipped: list[str] = []
    for cond in conditions:
        step = None
        for index in settings.indexes:
            if index.field == cond.field:
                candidate = index.step(cond)
                if candidate is None:
                    continue
                if index.describe() in state.pending:
                    skipped.append(index.describe())
                    continue
                step = candidate
                break
        if step is None:
            residual.append(cond)
        else:
            steps.append(step)
    steps = _merge_ranges(steps)
    ranges = {
        i.field: i.key
        for i in settings.indexes
        if isinstance(i, RangeIndex) and i.describe() not in state.pending
    }
    order_keys = tuple(ranges[f] for f, _ in order if f in ranges)
    if len(order_keys) != len(order):
        order_keys = ()
    pending = tuple(dict.fromkeys(skipped))
    result = Plan(
        settings.name,
        tuple(steps),
        tuple(residual),
        order,
        order_keys,
        scan=not steps,
        pending=state.pending,
        members_complete=state.members,
    )
    if result.scan and settings.strict and (pending or (conditions and not state.members)):
        raise _not_ready(settings, pending)
    if result.scan and conditions and settings.strict:
        raise _strict_refusal(settings, conditions)
    return result


def _not_ready(settings: Settings, pending: Sequence[str]) -> IndexNotReady:
    name = settings.name
    what = ", ".join(pending) if pending else f"the members set of {name}"
    target = f"{settings.model.__module__}:{settings.model.__qualname__}"
    msg = (
        f"{name}: {what} is not complete yet (objects were stored before it was declared, "
        f"or by redis-schematics 0.3.x), so this query would read every object, which "
        f"__strict_performance__ refuses. Build it with `redis-schematics reindex {target}` "
        f"or {name}.rebuild_indexes(); until it is complete nothing is answered from it."
    )
    return IndexNotReady(msg, indexes=tuple(pending))


def _strict_refusal(settings: Settings, conditions: Sequence[Condition]) -> StrictPerformanceException:
    first = conditions[0]
    kind = "an index"
    if first.lookup.ordered:
        kind = "a RangeIndex"
    elif first.value is None or (first.lookup.many and None in first.value):
        kind = "an EqualityIndex or RangeIndex (a UniqueIndex does not list None)"
    have = [i.describe() for i in settings.indexes if i.field == first.field]
    has = f" ({', '.join(have)} cannot answer it)" if have else ""
    name = settings.name
    msg = (
        f"{name}.filter({', '.join(map(str, conditions))}) would read every object: "
        f"{first.field}__{first.lookup.lookup_name} needs {kind} on {name}.{first.field}"
        f"{has}; declare one in __indexes__ or turn off __strict_performance__."
    )
    return StrictPerformanceException(msg)
