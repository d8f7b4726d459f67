"""The argument contract of ``scripts/apply_write.lua``: :class:`Batch` packs the guards
and operations of one or several objects into one call (see the script's header)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis_schematics.exceptions import UniqueViolation
from redis_schematics.indexes import kind_of_entry
from redis_schematics.ops import GUARD_KINDS, Guard, Op
from redis_schematics.write.items import Item

#: what apply_write.lua reads as "absent" in a guard
ABSENT = "\0"
#: commands whose one-member operations ``Batch`` merges: command -> (argc, member index)
_MERGEABLE = {"SADD": (1, 0), "SREM": (1, 0), "ZREM": (1, 0), "HDEL": (1, 0), "ZADD": (2, 1), "HSET": (2, 0)}
#: at most this many arguments in one merged operation (apply_write.lua unpacks them)
MERGE_ARGS = 1000
#: operations that can grow memory (Redis checks ``maxmemory`` at the first of them, if
#: the script has written nothing before it)
GROWING = frozenset({"SET", "HSET", "SADD", "ZADD", "MEMBER+"})
#: every operation apply_write.lua knows
OPERATIONS = frozenset(
    {
        "SET",
        "HSET",
        "HDEL",
        "SADD",
        "SREM",
        "ZADD",
        "ZREM",
        "DEL",
        "MEMBER+",
        "EXTEND",
        "UNIQ-",
        "PROBE",
        "SCHEMA",
        "SCHEMADROP",
        "HSETIFEMPTY",
    }
)


@dataclass
class Batch:
    """Arguments of one ``apply_write.lua`` call."""

    keys: list[str] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)
    guard_args: list[Any] = field(default_factory=list)
    #: operations, with the position of their key in ``keys``
    ops: list[tuple[str, int, tuple[Any, ...]]] = field(default_factory=list)
    guards: list[tuple[Item, Guard]] = field(default_factory=list)
    #: unique values another object of this call gives up: (hash key, token) -> its pk
    releases: dict[tuple[str, str], str] = field(default_factory=dict)

    def pos(self, key: str) -> int:
        """The position (1-based) of ``key`` in KEYS, added if new."""
        if key not in self.positions:
            self.keys.append(key)
            self.positions[key] = len(self.keys)
        return self.positions[key]

    def guard(self, item: Item, g: Guard) -> None:
        """Check ``g`` (for ``item``) before anything is written."""
        if g.kind not in GUARD_KINDS:
            msg = f"apply_write.lua has no guard kind {g.kind!r}"
            raise ValueError(msg)
        expected = ABSENT if g.expected is None else g.expected
        if g.kind == "uniq" and (g.key, g.field) in self.releases:
            # Claiming a value another object of this call releases: at check time that
            # object owns it (its own guard pins its stored state); the conditional
            # release (UNIQ-) and the claim (HSET) then apply in either order.
            expected = self.releases[(g.key, g.field)]
        where: Any = self.pos(g.key)
        if g.more_keys:  # "p1,p2,...": a guard reading several keys (layouts/base.py)
            where = ",".join(str(self.pos(k)) for k in (g.key, *g.more_keys))
        self.guard_args += [g.kind, where, g.field, expected]
        self.guards.append((item, g))

    def op(self, op: Op) -> None:
        """Apply ``op`` once every guard held."""
        cmd, key, args = op
        if cmd not in OPERATIONS:
            msg = f"apply_write.lua has no operation {cmd!r}"
            raise ValueError(msg)
        self.ops.append((cmd, self.pos(key), args))

    @property
    def n_ops(self) -> int:
        return len(self.ops)

    @property
    def shrinks_first(self) -> bool:
        """Does the write delete before it grows memory (``DEL`` then ``HSET``)? Redis
        then would not check ``maxmemory`` (it checks only at a script's first write):
        :func:`build` puts a ``PROBE`` first (see ``apply_write.lua``). A ``SCHEMA``
        operation (which writes only when the model's meta hash is missing) does not
        count."""
        ops = [op for op in self.ops if op[0] not in ("SCHEMA", "SCHEMADROP")]
        return bool(ops) and ops[0][0] not in GROWING and any(op[0] in GROWING for op in ops)

    def _merged(self) -> list[tuple[str, int, tuple[Any, ...]]]:
        """The operations, with those of one command on one key that add or remove one
        member (field) each merged into one command (``SADD k a b ...``), placed where
        the first of them was: far fewer arguments and calls for a batch of objects.

        Only when no (key, member) is touched twice: then these operations commute with
        each other, and the merged one still runs after what came before its first part
        (e.g. after the object's DEL) and before what an object does after its own part
        (e.g. EXTEND of that key)."""
        seen: set[tuple[int, Any]] = set()
        out: list[tuple[str, int, Any]] = []  # a merged operation holds a list, filled below
        groups: dict[tuple[str, int], list[Any]] = {}
        for op in self.ops:
            cmd, pos, args = op
            shape = _MERGEABLE.get(cmd)
            if shape is None or len(args) != shape[0]:
                out.append(op)
                continue
            touched = (pos, args[shape[1]])
            if touched in seen:
                return self.ops
            seen.add(touched)
            group = groups.get((cmd, pos))
            if group is None or len(group) >= MERGE_ARGS:
                group = groups[(cmd, pos)] = []
                out.append((cmd, pos, group))
            group += args
        return [(cmd, pos, tuple(args)) for cmd, pos, args in out]

    def argv(self, strict: bool, once: str | None = None) -> list[Any]:
        """ARGV for ``apply_write.lua``; ``strict`` reports a failed guard as an error
        reply; ``once`` names a token key making the call idempotent (a resend of an
        applied call returns 1 and writes nothing)."""
        ops = self._merged()
        head = ["1" if strict else "0", "" if once is None else self.pos(once), len(self.guards)]
        return [
            *head,
            *self.guard_args,
            len(ops),
            *(x for op in ops for x in (op[0], op[1], len(op[2]), *op[2])),
        ]


def refuse_shared_claims(items: Sequence[Item]) -> None:
    """Two objects of one write claiming one unique value: refuse before writing.

    (The script checks claims against what is stored, before any of the write's own
    operations, so it cannot see a clash between two objects of the same call.)

    Raises:
        UniqueViolation: naming both pks.
    """
    claims: dict[tuple[str, str], Item] = {}
    for item in items:
        if item.dropped:
            continue
        for e in item.entries:
            if not kind_of_entry(e.kind).claims:
                continue
            first = claims.setdefault((e.key, e.member), item)
            if first.pk != item.pk:
                taken = item.owner.unique_violation(item, Guard("uniq", e.key, e.member, item.pk), first.pk)
                msg = (
                    f"{item.owner.name}.{taken.field} = {e.member!r} is claimed by both "
                    f"{first.pk!r} and {item.pk!r} in one write; nothing was written. Values of a "
                    "UniqueIndex field must differ between objects."
                )
                raise UniqueViolation(msg, field=taken.field, value=e.member, owner=first.pk)


def build(items: Sequence[Item]) -> Batch:
    """One ``apply_write.lua`` call for ``items`` (of one or several models)."""
    refuse_shared_claims(items)
    batch = Batch()
    for item in items:
        if item.dropped:
            continue
        kept = {(e.key, e.member) for e in item.entries if kind_of_entry(e.kind).claims}
        for e in item.old:
            if kind_of_entry(e.kind).claims and (e.key, e.member) not in kept:
                batch.releases[(e.key, e.member)] = item.pk
    live = [item for item in items if not item.dropped]
    for item in live:
        item.owner.add_to(batch, item)
    emptied = {id(i.owner): i.owner for i in live if i.payload is None}
    for owner in emptied.values():  # last: after the members set lost its pks
        batch.op(owner.schema.drop_op(batch.pos(owner.keys.members())))
    if live and batch.shrinks_first:
        batch.ops.insert(0, ("PROBE", batch.pos(live[0].owner.keys.probe()), ()))
    return batch
