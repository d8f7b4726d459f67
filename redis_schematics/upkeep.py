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

from redis_schematics.indexes import Entry, EqualityIndex, RangeIndex, UniqueIndex
from redis_schematics.store import CHUNK, Store, _Batch, _diff, script
from redis_schematics.util import text


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


def _snapshot(store: Store) -> _Snapshot:
    client = store.client
    keys = store.keys
    members = {pk for batch in store.member_batches(client) for pk in batch}
    pks = set(members)
    for batch in store.layout.stored_pks(client, CHUNK):
        pks.update(batch)
    payloads: dict[str, Any] = {}
    ordered = sorted(pks)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        for pk, (payload, _alive) in zip(chunk, store.read(client, chunk), strict=True):
            if payload is not None:
                payloads[pk] = payload
    expected = {pk: store.stored_entries(pk, p) for pk, p in payloads.items()}

    actual: dict[str, set[Entry]] = defaultdict(set)
    known = {keys.members()}
    if store.codec is not None:  # a field layout's own keys, e.g. its column hashes
        known.update(store.codec.meta_keys())
    for index in store.indexes:
        if isinstance(index, EqualityIndex):
            for key in client.scan_iter(match=keys.equality_pattern(index.field), count=CHUNK):
                key = text(key)
                known.add(key)
                for pk in client.sscan_iter(key, count=CHUNK):
                    actual[text(pk)].add(Entry("set", key, text(pk)))
        elif isinstance(index, RangeIndex):
            known.add(index.key)
            for pk, sc in client.zscan_iter(index.key, count=CHUNK):
                actual[text(pk)].add(Entry("zset", index.key, text(pk), float(sc)))
        elif isinstance(index, UniqueIndex):
            known.add(index.key)
            for token, owner in client.hscan_iter(index.key, count=CHUNK):
                actual[text(owner)].add(Entry("unique", index.key, text(token), owner=text(owner)))
    # An equality key is known by its name, not by having been seen: one a writer
    # created after the SCAN above is still a live index key (rebuild deletes unknown keys).
    eq_names = [
        (keys.equality(i.field, ""), keys.equality(i.field, None))
        for i in store.indexes
        if isinstance(i, EqualityIndex)
    ]
    once_prefix = keys.once("")
    unknown = [
        text(k)
        for k in client.scan_iter(match=keys.meta_pattern(), count=CHUNK)
        if text(k) not in known
        and not any(text(k).startswith(v) or text(k) == n for v, n in eq_names)
        and not text(k).startswith(once_prefix)  # update()'s idempotency markers, 10 s
    ]
    return _Snapshot(payloads, members, expected, actual, unknown)


def _problems(store: Store, snap: _Snapshot) -> list[Problem]:
    out: list[Problem] = []
    members_key = store.keys.members()
    claims = {(e.key, e.member): e.owner for es in snap.actual.values() for e in es if e.kind == "unique"}
    for pk in sorted(set(snap.payloads) - snap.members):
        out.append(Problem("missing member", members_key, pk, "object stored but not listed"))
    for pk in sorted(snap.members - set(snap.payloads)):
        out.append(Problem("stale member", members_key, pk, "listed but nothing stored"))
    for pk in sorted(set(snap.expected) | set(snap.actual)):
        want = snap.expected.get(pk, frozenset())
        have = snap.actual.get(pk, set())
        want_z = {(e.key, e.member): e.score for e in want if e.kind == "zset"}
        for e in sorted(have - want, key=str):
            if e.kind == "zset" and (e.key, e.member) in want_z:
                detail = f"score {e.score}, expected {want_z[(e.key, e.member)]}"
                out.append(Problem("wrong score", e.key, pk, detail))
            elif e.kind == "unique":
                out.append(Problem("orphan unique claim", e.key, e.member, f"claimed by {pk!r}"))
            else:
                out.append(Problem("stale entry", e.key, pk))
        have_z = {(e.key, e.member) for e in have if e.kind == "zset"}
        for e in sorted(want - have, key=str):
            if e.kind == "zset" and (e.key, e.member) in have_z:
                continue  # reported as a wrong score
            if e.kind == "unique":
                owner = claims.get((e.key, e.member))
                claim = Entry("unique", e.key, e.member, owner=owner)
                if owner is not None and owner != pk and claim in snap.expected.get(owner, ()):
                    out.append(Problem("duplicate unique value", e.key, e.member, f"{pk!r} and {owner!r}"))
                    continue
            out.append(Problem("missing entry", e.key, pk, e.member if e.kind == "unique" else ""))
    for key in snap.unknown_keys:
        out.append(Problem("unknown key", key, "", "not used by any declared index"))
    return out


def check(store: Store) -> list[Problem]:
    """Every difference between the indexes and the stored objects; empty when consistent."""
    return _problems(store, _snapshot(store))


def rebuild(store: Store, rounds: int = 5) -> int:
    """Repair every index (and the members set) from the stored objects.

    Returns the number of pks repaired. Objects of 0.3.x (no members entry, no index)
    are adopted. Unfixable problems (two objects with one unique value) stay for
    ``check`` to report.
    """
    client = store.client
    run = script(client, "apply_write")
    repaired = 0
    for _round in range(rounds):
        snap = _snapshot(store)
        for key in snap.unknown_keys:
            client.delete(key)
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
            changed += _repair(store, run, pk, payload, want, have, in_members)
        repaired += changed
        if not changed:
            break
    return repaired


def _repair(
    store: Store,
    run: Any,
    pk: str,
    payload: Any,
    want: frozenset[Entry],
    have: frozenset[Entry],
    listed: bool,
) -> int:
    """Bring one pk's members entry and index entries in line with its payload (guarded
    by that payload). A unique value another object owns is left out (it stays a
    "duplicate unique value" problem) so the rest of the object is still repaired.
    Returns 1 if something was written."""
    members = store.keys.members()
    for _attempt in range(2):
        batch = _Batch()
        item = store.item(pk, payload, want, expected=payload, old=have)
        batch.guard(item, store.layout.guard(pk, payload))
        guards, ops = _diff(have, want)
        for g in guards:
            batch.guard(item, g)
        if payload is not None and not listed:
            batch.op(store.member_op(pk))
            if store.expiring:
                batch.op(("EXTEND", members, (store.physical_ms,)))
        elif payload is None and listed:
            batch.op(("ZREM" if store.expiring else "SREM", members, (pk,)))
        for op in ops:
            batch.op(op)
        if not batch.n_ops:
            return 0
        reply = run(batch.keys, batch.argv(False), client=store.client)
        if reply == 1:
            return 1
        taken = set()
        for n in range(0, len(reply), 2):
            _item, g = batch.guards[int(reply[n]) - 1]
            if g.kind != "uniq":
                return 0  # the object changed meanwhile: the next round looks again
            taken.add((g.key, g.field))
        want = frozenset(e for e in want if not (e.kind == "unique" and (e.key, e.member) in taken))
    return 0


__all__ = ["Problem", "check", "rebuild"]
