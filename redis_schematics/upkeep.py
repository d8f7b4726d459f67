"""Index upkeep: compare what Redis holds with what the stored objects imply, and repair.

``check`` reads every stored object (members set plus a SCAN/HSCAN for objects written
without one, e.g. by redis-schematics 0.3.x) and every index key, and lists each
difference as a :class:`Problem`. ``rebuild`` repairs them pk by pk, each repair guarded
by the payload it was computed from, so it is safe while the application writes: a pk
that changed meanwhile is simply looked at again in the next round.

Cost: O(N) reads and O(N) memory in Python (every pk and entry of the model).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from redis_schematics.engine import Engine
from redis_schematics.indexes import Entry, kind_of_entry
from redis_schematics.io import Command, Flow, RunScript, Scan
from redis_schematics.util import text
from redis_schematics.write import CHUNK, Batch, diff


@dataclass(frozen=True)
class Problem:
    """One difference between the indexes and the stored objects."""

    kind: str  # missing entry | stale entry | wrong score | orphan unique claim |
    #            missing member | stale member | duplicate unique value | unknown key
    key: str
    member: str
    detail: str = ""

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.kind}: {self.key} {self.member!r}{extra}"


@dataclass
class _Snapshot:
    payloads: dict[str, Any]  # pk -> stored payload (physically present)
    members: set[str]
    expected: dict[str, frozenset[Entry]]  # pk -> entries its payload implies
    actual: dict[str, set[Entry]]  # pk -> entries Redis holds for it
    unknown_keys: list[str]


def _snapshot(engine: Engine) -> Flow[_Snapshot]:
    keys = engine.keys
    members = set((yield from engine.members()))
    pks = members | set((yield from engine.layout.stored_pks(CHUNK)))
    payloads: dict[str, Any] = {}
    ordered = sorted(pks)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        for pk, (payload, _alive) in zip(chunk, (yield from engine.read(chunk)), strict=True):
            if payload is not None:
                payloads[pk] = payload
    expected = {pk: engine.records.stored_entries(pk, p) for pk, p in payloads.items()}

    actual: dict[str, set[Entry]] = defaultdict(set)
    for index in engine.indexes:
        for e in (yield from index.stored_entries()):
            actual[e.member if e.owner is None else e.owner].add(e)
    # Keys are known by their names (each index kind recognises its own), not by having
    # been seen: a key a writer created after the SCAN above is live (rebuild deletes
    # unknown keys).
    known = {keys.members(), *engine.layout.meta_keys()}
    once_prefix = keys.once("")
    unknown = []
    for raw in (yield from Scan("SCAN", match=keys.meta_pattern(), count=CHUNK).items()):
        key = text(raw)
        if key in known or any(i.owns(key) for i in engine.indexes):
            continue
        if not key.startswith(once_prefix):  # update()'s idempotency markers, 10 s
            unknown.append(key)
    return _Snapshot(payloads, members, expected, actual, unknown)


def _problems(engine: Engine, snap: _Snapshot) -> list[Problem]:
    out: list[Problem] = []
    members_key = engine.keys.members()
    claims = {
        (e.key, e.member): e.owner for es in snap.actual.values() for e in es if kind_of_entry(e.kind).claims
    }
    for pk in sorted(set(snap.payloads) - snap.members):
        out.append(Problem("missing member", members_key, pk, "object stored but not listed"))
    for pk in sorted(snap.members - set(snap.payloads)):
        out.append(Problem("stale member", members_key, pk, "listed but nothing stored"))
    for pk in sorted(set(snap.expected) | set(snap.actual)):
        want = snap.expected.get(pk, frozenset())
        have = snap.actual.get(pk, set())
        want_z = {(e.key, e.member): e.score for e in want if kind_of_entry(e.kind).scored}
        for e in sorted(have - want, key=str):
            kind = kind_of_entry(e.kind)
            if kind.scored and (e.key, e.member) in want_z:
                detail = f"score {e.score}, expected {want_z[(e.key, e.member)]}"
                out.append(Problem("wrong score", e.key, pk, detail))
            elif kind.claims:
                out.append(Problem("orphan unique claim", e.key, e.member, f"claimed by {pk!r}"))
            else:
                out.append(Problem("stale entry", e.key, pk))
        have_z = {(e.key, e.member) for e in have if kind_of_entry(e.kind).scored}
        for e in sorted(want - have, key=str):
            kind = kind_of_entry(e.kind)
            if kind.scored and (e.key, e.member) in have_z:
                continue  # reported as a wrong score
            if kind.claims:
                owner = claims.get((e.key, e.member))
                claim = Entry(e.kind, e.key, e.member, owner=owner)
                if owner is not None and owner != pk and claim in snap.expected.get(owner, ()):
                    out.append(Problem("duplicate unique value", e.key, e.member, f"{pk!r} and {owner!r}"))
                    continue
            out.append(Problem("missing entry", e.key, pk, e.member if kind.claims else ""))
    for key in snap.unknown_keys:
        out.append(Problem("unknown key", key, "", "not used by any declared index"))
    return out


def check(engine: Engine) -> Flow[list[Problem]]:
    """Every difference between the indexes and the stored objects; empty when consistent.

    Complexity: O(N) reads (SCAN/SSCAN/ZSCAN/HSCAN and MGET) and O(N) memory; a sharded
    model is checked shard by shard.
    """
    if engine.shards:
        found: list[Problem] = []
        for shard in engine.shards:
            found += yield from check(shard)
        return found
    return _problems(engine, (yield from _snapshot(engine)))


def rebuild(engine: Engine, rounds: int = 5) -> Flow[int]:
    """Repair every index (and the members set) from the stored objects.

    Returns the number of pks repaired. Objects of 0.3.x (no members entry, no index)
    are adopted. Unfixable problems (two objects with one unique value) stay for
    ``check`` to report.

    Complexity: O(N) reads plus one script call per repaired pk, per round; a sharded
    model is rebuilt shard by shard.
    """
    if engine.shards:
        total = 0
        for shard in engine.shards:
            total += yield from rebuild(shard, rounds)
        return total
    repaired = 0
    for _round in range(rounds):
        snap = yield from _snapshot(engine)
        for key in snap.unknown_keys:
            yield Command(("DEL", key))
        todo = []
        for pk in sorted(set(snap.payloads) | snap.members | set(snap.actual)):
            payload = snap.payloads.get(pk)
            want = snap.expected.get(pk, frozenset())
            have = frozenset(snap.actual.get(pk, set()))
            in_members = pk in snap.members
            if want == have and in_members == (payload is not None):
                continue
            todo.append((pk, payload, want, have, in_members))
        if not todo:
            break
        changed = 0
        for pk, payload, want, have, in_members in todo:
            changed += yield from _repair(engine, pk, payload, want, have, in_members)
        repaired += changed
        if not changed:
            break
    return repaired


def _repair(
    engine: Engine,
    pk: str,
    payload: Any,
    want: frozenset[Entry],
    have: frozenset[Entry],
    listed: bool,
) -> Flow[int]:
    """Bring one pk's members entry and index entries in line with its payload (guarded
    by that payload). A unique value another object owns is left out (it stays a
    "duplicate unique value" problem) so the rest of the object is still repaired.
    Returns 1 if something was written."""
    writes = engine.writes
    members = engine.keys.members()
    for _attempt in range(2):
        batch = Batch()
        item = writes.item(pk, payload, want, expected=payload, old=have)
        batch.guard(item, engine.layout.guard(pk, payload))
        guards, ops = diff(have, want)
        for g in guards:
            batch.guard(item, g)
        if payload is not None and not listed:
            batch.op(writes.member_op(pk))
            if engine.expiring:
                batch.op(("EXTEND", members, (engine.settings.physical_ms,)))
        elif payload is None and listed:
            batch.op(writes.unmember_op(pk))
        for op in ops:
            batch.op(op)
        if not batch.n_ops:
            return 0
        reply = yield RunScript("apply_write", batch.keys, batch.argv(False))
        if reply == 1:
            return 1
        taken = set()
        for n in range(0, len(reply), 2):
            _item, g = batch.guards[int(reply[n]) - 1]
            if g.kind != "uniq":
                return 0  # the object changed meanwhile: the next round looks again
            taken.add((g.key, g.field))
        want = frozenset(e for e in want if not (kind_of_entry(e.kind).claims and (e.key, e.member) in taken))
    return 0


__all__ = ["Problem", "check", "rebuild"]
