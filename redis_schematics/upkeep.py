"""Index upkeep: compare what Redis holds with what the stored objects imply, and repair.

``check`` reads every stored object (members set plus a SCAN/HSCAN for objects written
without one, e.g. by redis-schematics 0.3.x) and every index key, and lists each
difference as a :class:`Problem`. ``rebuild`` repairs them pk by pk, each repair guarded
by the payload it was computed from, so it is safe while the application writes: a pk
that changed meanwhile is simply looked at again in the next round.

Cost: O(N) reads and O(N) memory in Python (every pk and entry of the model).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis_schematics.engine import Engine
from redis_schematics.indexes import Entry, kind_of_entry
from redis_schematics.io import Command, Flow, RunScript, Scan
from redis_schematics.schema import SchemaState
from redis_schematics.util import text
from redis_schematics.write import CHUNK, Batch, diff

#: ``progress(phase, done, total)``: how far a long upkeep call is (phases: "read" =
#: objects read of those listed or found, "repair" = pks repaired of those to repair)
Progress = Callable[[str, int, int], None]


def _quiet(phase: str, done: int, total: int) -> None:
    """The progress callback that reports nothing."""


@dataclass(frozen=True)
class Problem:
    """One difference between the indexes and the stored objects."""

    kind: str  # missing entry | stale entry | wrong score | orphan unique claim |
    #            missing member | stale member | duplicate unique value | unknown key |
    #            index not complete | members not complete | undeclared index
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


def _snapshot(engine: Engine, progress: Progress = _quiet) -> Flow[_Snapshot]:
    keys = engine.keys
    members = set((yield from engine.members()))
    pks = members | set((yield from engine.layout.stored_pks(CHUNK)))
    payloads: dict[str, Any] = {}
    ordered = sorted(pks)
    progress("read", 0, len(ordered))
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        for pk, (payload, _alive) in zip(chunk, (yield from engine.read(chunk)), strict=True):
            if payload is not None:
                payloads[pk] = payload
        progress("read", start + len(chunk), len(ordered))
    expected = {pk: engine.records.stored_entries(pk, p) for pk, p in payloads.items()}

    actual: dict[str, set[Entry]] = defaultdict(set)
    for n, index in enumerate(engine.indexes):
        for e in (yield from index.stored_entries()):
            actual[e.member if e.owner is None else e.owner].add(e)
        progress("indexes", n + 1, len(engine.indexes))
    # Keys are known by their names (each index kind recognises its own), not by having
    # been seen: a key a writer created after the SCAN above is live (rebuild deletes
    # unknown keys).
    known = {keys.members(), keys.schema(), *engine.layout.meta_keys()}
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


def schema_problems(engine: Engine, state: SchemaState) -> list[Problem]:
    """What ``Prefix#meta`` says is not complete, or no longer declared."""
    key = engine.keys.schema()
    out = []
    if not state.members:
        detail = "objects stored before it (0.3.x data): queries scan the stored keys"
        out.append(Problem("members not complete", key, "members", detail))
    for name in state.pending:
        out.append(Problem("index not complete", key, name, "queries do not use it until rebuild_indexes()"))
    for name in state.undeclared:
        out.append(Problem("undeclared index", key, name, "no longer declared; rebuild_indexes() forgets it"))
    return out


def fresh_schema(engine: Engine) -> Flow[SchemaState]:
    """The model's ``Prefix#meta`` state read now (not the cached one). One HGETALL."""
    engine.schema.forget()
    return (yield from engine.schema_state())


def check(engine: Engine, progress: Progress = _quiet) -> Flow[list[Problem]]:
    """Every difference between the indexes and the stored objects, and every index
    not complete yet; empty when consistent.

    Complexity: O(N) reads (SCAN/SSCAN/ZSCAN/HSCAN and MGET) and O(N) memory; a sharded
    model is checked shard by shard.
    """
    if engine.shards:
        found: list[Problem] = []
        for shard in engine.shards:
            found += yield from check(shard, progress)
        return found
    state = yield from fresh_schema(engine)
    return schema_problems(engine, state) + _problems(engine, (yield from _snapshot(engine, progress)))


Todo = tuple[str, Any, frozenset[Entry], frozenset[Entry], bool]


def _todo(snap: _Snapshot) -> list[Todo]:
    """(pk, payload, entries wanted, entries held, listed) of every pk to repair."""
    todo = []
    for pk in sorted(set(snap.payloads) | snap.members | set(snap.actual)):
        payload = snap.payloads.get(pk)
        want = snap.expected.get(pk, frozenset())
        have = frozenset(snap.actual.get(pk, set()))
        in_members = pk in snap.members
        if want == have and in_members == (payload is not None):
            continue
        todo.append((pk, payload, want, have, in_members))
    return todo


def rebuild(engine: Engine, rounds: int = 5, progress: Progress = _quiet) -> Flow[int]:
    """Repair every index (and the members set) from the stored objects, then record in
    ``Prefix#meta`` what is complete (queries then use it) and forget indexes no longer
    declared (their keys are deleted).

    Returns the number of pks repaired. Objects of 0.3.x (no members entry, no index)
    are adopted. Unfixable problems (two objects with one unique value) stay for
    ``check`` to report, and that index is not marked complete. Safe while the
    application writes (every repair is guarded by the payload it was computed from, and
    writers maintain every declared index); interrupted, it can simply be run again.

    Complexity: O(N) reads plus one script call per ``REPAIR_CHUNK`` repaired pks (one
    per pk for a chunk that met a concurrent write), per round; a sharded model is
    rebuilt shard by shard.
    """
    return (yield from rebuild_report(engine, rounds, progress)).repaired


@dataclass
class Rebuilt:
    """What :func:`rebuild_report` did."""

    #: pks whose entries or membership were rewritten
    repaired: int = 0
    #: the problems the first read found, by kind (see :class:`Problem`)
    found: dict[str, int] = dataclasses.field(default_factory=dict)
    #: keys deleted: not used by any declared index
    removed_keys: list[str] = dataclasses.field(default_factory=list)
    #: nothing left to repair (else ``check`` says what is)
    clean: bool = True


def rebuild_report(engine: Engine, rounds: int = 5, progress: Progress = _quiet) -> Flow[Rebuilt]:
    """:func:`rebuild`, saying what it found and did. A round reads every object and
    index key, then repairs; another round follows only while concurrent writes changed
    pks being repaired (each repair is guarded, so a repaired pk is exact)."""
    result = Rebuilt()
    if engine.shards:
        for shard in engine.shards:
            part = yield from rebuild_report(shard, rounds, progress)
            result.repaired += part.repaired
            result.removed_keys += part.removed_keys
            result.clean = result.clean and part.clean
            for kind, n in part.found.items():
                result.found[kind] = result.found.get(kind, 0) + n
        return result
    state = yield from fresh_schema(engine)  # creates the hash if missing
    repaired = 0
    todo: list[Todo] = []
    status: dict[str, str] = {}
    for round_ in range(rounds):
        snap = yield from _snapshot(engine, progress)
        if round_ == 0:
            for problem in schema_problems(engine, state) + _problems(engine, snap):
                result.found[problem.kind] = result.found.get(problem.kind, 0) + 1
        for key in snap.unknown_keys:
            yield Command(("DEL", key))
            result.removed_keys.append(key)
        todo = _todo(snap)
        if not todo:
            break
        status = {}
        progress("repair", 0, len(todo))
        for start in range(0, len(todo), REPAIR_CHUNK):
            status.update((yield from _repair_chunk(engine, todo[start : start + REPAIR_CHUNK])))
            progress("repair", min(start + REPAIR_CHUNK, len(todo)), len(todo))
        changed = sum(1 for s in status.values() if s in (REPAIRED, PARTIAL))
        repaired += changed
        if not changed:
            break
        # What is left wrong after this round: every write made meanwhile maintained the
        # members set and every index, also those not complete yet (ModelWrites writes
        # all their entries, changed or not), except unique claims it did not change.
        todo = [t for t in todo if status[t[0]] in _LEFT]
        if not any(status[t[0]] == CHANGED for t in todo):
            break  # what is left cannot change by reading again (a unique collision)

    def still_wrong(index: Any, pk: str) -> bool:
        """Is ``index`` possibly wrong for ``pk``, which this rebuild could not repair?"""
        outcome = status.get(pk)
        if outcome not in _LEFT:
            return True
        if not index.claims:
            return False  # its concurrent writer wrote every entry of a non-unique index
        # a unique value two objects share; or a concurrent writer, which does not write
        # again an unchanged claim of an index not complete yet
        return outcome in (PARTIAL, TAKEN) or index.describe() in state.pending

    dirty = {
        i.describe()
        for i in engine.indexes
        for t in todo
        for e in t[2] ^ t[3]
        if i.owns(e.key) and still_wrong(i, t[0])
    }
    members_dirty = any(
        listed != (payload is not None) and status.get(pk) not in (CHANGED, PARTIAL)
        for pk, payload, _w, _h, listed in todo
    )
    ready = [i.describe() for i in engine.indexes if i.describe() not in dirty]
    yield from engine.schema.mark_complete(not members_dirty, ready)
    result.repaired = repaired
    result.clean = not todo
    return result


#: pks repaired per script call (a chunk that meets a concurrent write is retried pk by pk)
REPAIR_CHUNK = 100


def _repair_chunk(engine: Engine, chunk: Sequence[Todo]) -> Flow[dict[str, str]]:
    """Repair ``chunk`` in one guarded script call; when a guard fails (a concurrent
    write, a taken unique value) pk by pk instead. Returns what happened to each pk
    (see :func:`_repair`)."""
    claims = [
        (e.key, e.member) for t in chunk for e in t[2] - t[3] if kind_of_entry(e.kind).claims
    ]  # two pks of one call claiming one value would both pass their guards
    if len(chunk) > 1 and len(claims) == len(set(claims)):
        batch = Batch()
        wrote = {t[0]: REPAIRED if _add_repair(engine, batch, *t) else NOTHING for t in chunk}
        if REPAIRED not in wrote.values():
            return wrote
        if (yield RunScript("apply_write", batch.keys, batch.argv(False))) == 1:
            return wrote
    found = {}
    for t in chunk:
        found[t[0]] = yield from _repair(engine, *t)
    return found


def _add_repair(
    engine: Engine,
    batch: Batch,
    pk: str,
    payload: Any,
    want: frozenset[Entry],
    have: frozenset[Entry],
    listed: bool,
) -> bool:
    """Add the guards and operations repairing one pk to ``batch``; False when there
    is nothing to write."""
    writes = engine.writes
    members = engine.keys.members()
    before = batch.n_ops
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
    return batch.n_ops > before


def _repair(
    engine: Engine,
    pk: str,
    payload: Any,
    want: frozenset[Entry],
    have: frozenset[Entry],
    listed: bool,
) -> Flow[str]:
    """Bring one pk's members entry and index entries in line with its payload (guarded
    by that payload). A unique value another object owns is left out (it stays a
    "duplicate unique value" problem) so the rest of the object is still repaired.
    Returns ``REPAIRED``, ``NOTHING`` (nothing to write), ``CHANGED`` (the object
    changed meanwhile: its writer maintained every index but the unique claims it did
    not change, and the next round looks again) or ``PARTIAL`` (a unique value is
    another object's)."""
    partial = False
    for _attempt in range(2):
        batch = Batch()
        if not _add_repair(engine, batch, pk, payload, want, have, listed):
            return TAKEN if partial else NOTHING
        reply = yield RunScript("apply_write", batch.keys, batch.argv(False))
        if reply == 1:
            return PARTIAL if partial else REPAIRED
        taken = set()
        for n in range(0, len(reply), 2):
            _item, g = batch.guards[int(reply[n]) - 1]
            if g.kind != "uniq":
                return CHANGED
            taken.add((g.key, g.field))
        partial = True
        want = frozenset(e for e in want if not (kind_of_entry(e.kind).claims and (e.key, e.member) in taken))
    return PARTIAL


#: what :func:`_repair` did to one pk (TAKEN: nothing, only a unique value another
#: object owns was missing)
REPAIRED, NOTHING, CHANGED, PARTIAL, TAKEN = "repaired", "nothing", "changed", "partial", "taken"
#: a pk left wrong for a unique index only, or being rewritten by a concurrent write
_LEFT = (CHANGED, PARTIAL, TAKEN)


__all__ = [
    "Problem",
    "Progress",
    "Rebuilt",
    "check",
    "fresh_schema",
    "rebuild",
    "rebuild_report",
    "schema_problems",
]
