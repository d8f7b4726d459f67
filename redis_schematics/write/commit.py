"""The commit loop: apply items all-or-nothing with compare-and-set, retrying on change.

Every function here is a flow (see ``redis_schematics.io``): the same code runs under the
sync and the async driver.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from typing import Any

from redis_schematics.exceptions import WriteConflict
from redis_schematics.indexes import Entry
from redis_schematics.io import Flow, Queue, RunScript, Sleep
from redis_schematics.util import text
from redis_schematics.write.batch import build
from redis_schematics.write.items import Item

#: attempts of one compare-and-set write before WriteConflict. From the third on, each
#: waits a jittered 0-50 ms and re-reads the objects (see commit), so a writer gives up
#: after ~1 s (at most ~2.2 s) of losing every attempt. 20 attempts without the re-read
#: were not enough for 8 threads hammering 40 keys on a loaded 2-core machine
#: (tests/integration/test_concurrency.py; with both, the worst write took 8 attempts)
MAX_ATTEMPTS = 50


def before_writing(items: Sequence[Item]) -> Flow[None]:
    """Make sure each model's ``Prefix#meta`` hash exists before a process writes it
    for the first time (``Schema.before_write``; no I/O after that)."""
    for schema in {id(i.owner.schema): i.owner.schema for i in items}.values():
        yield from schema.before_write()


def read_state(items: Sequence[Item]) -> Flow[None]:
    """Set each item's ``expected``/``old``/``alive`` from what is stored now (one
    read per model)."""
    by_owner: dict[int, list[Item]] = {}
    for item in items:
        by_owner.setdefault(id(item.owner), []).append(item)
    for group in by_owner.values():
        reads = yield from group[0].owner.read([i.pk for i in group])
        for item, (payload, alive) in zip(group, reads, strict=True):
            item.saw(payload)
            item.alive = alive


def queue(pipeline: Any, items: Sequence[Item]) -> Flow[None]:
    """Queue writes on a user's redis pipeline.

    Their stored state is read now and checked again when the pipeline runs; a change in
    between makes that command fail with an "RSGUARD" error and write nothing (the other
    commands of a non-transactional pipeline still run).
    """
    yield from before_writing(items)
    yield from read_state(items)
    batch = build(items)
    if batch.n_ops:
        yield Queue(pipeline, RunScript("apply_write", batch.keys, batch.argv(True, token_key(items))))


def token_key(items: Sequence[Item]) -> str | None:
    """A new idempotency token key for one write of ``items`` (under the first item's
    model, so in the slot of the write's keys), or None when the write needs none.

    A write that deletes carries one: a resend of an applied call (redis-py retrying
    after a lost reply) returns "applied" and writes nothing again, so the caller's
    result (``delete()``'s True, ``delete_many``'s count) is what the first call did
    (a write that only stores needs none: its resend finds its own payload and stores
    it again). Costs one key (``Prefix#once:<16 hex>``) for 10 s per such call.
    """
    if not any(i.payload is None for i in items):
        return None
    return items[0].owner.keys.once(secrets.token_hex(8))


def _saw(item: Item, expected: Any, old: frozenset[Entry]) -> None:
    """Finish recording what a retry of ``item`` found stored: ``item.expected`` and
    ``item.old`` are set from it, ``expected``/``old`` are what the item held before.

    The entries to remove are the fresh ones, except that an unchanged payload keeps
    ``old`` (it may hold more than the payload implies: purge_pks finds the entries of a
    payload Redis already expired without it), and a delete whose payload is gone now
    removes ``old`` as well (every entry of a pk without a payload is an orphan, so
    removing it is safe; a unique entry is removed only while the pk still owns it).
    A conditional delete re-checks the payload it found."""
    if item.expected == expected:
        item.old = old
    elif item.payload is None and item.expected is None:
        item.old = old | item.old
    if item.keep_if is not None and item.expected is not None:
        item.dropped = not item.keep_if(item.owner.records.hydrate(item.pk, item.expected))


def commit(items: Sequence[Item], attempts: int = MAX_ATTEMPTS, once: str | None = None) -> Flow[None]:
    """Apply ``items`` (of one or several models) all-or-nothing.

    Each attempt is one ``apply_write.lua`` call (one round trip). A failed guard
    returns the current payload, so the first retry needs no extra read; later ones,
    which back off first, read the objects again (one more round trip each). ``once``
    names the idempotency token key (see ``KeySpace.once``; a new one by default, see
    :func:`token_key`), the same for every attempt.

    Raises:
        UniqueViolation: a UniqueIndex value belongs to another object; nothing written.
        WriteConflict: the objects kept changing for ``attempts`` attempts.
    """
    yield from before_writing(items)
    conflicted: dict[int, Item] = {}  # the items whose guard failed in the last attempt
    for attempt in range(attempts):
        if attempt >= 2:
            # Writers racing on one object: back off a little (jittered, capped at 50 ms)
            # so that they stop colliding in lockstep. The first retry, which replaces
            # the optimistic "absent" guess with the stored payload, does not wait.
            yield Sleep(random.uniform(0, min(0.05, 0.0005 * 2**attempt)))
            # The payloads the failed guards returned are as old as that sleep: under
            # contention they are likely stale again. Read those objects afresh (one
            # round trip); any other that changed meanwhile reports itself next attempt.
            live = [i for i in conflicted.values() if not i.dropped]
            before = [(i.expected, i.old) for i in live]
            yield from read_state(live)
            for item, (expected, old) in zip(live, before, strict=True):
                _saw(item, expected, old)
        batch = build(items)
        if not batch.n_ops:
            return
        if once is None:
            once = token_key(items)  # kept for every later attempt (None: not needed)
        reply = yield RunScript("apply_write", batch.keys, batch.argv(False, once))
        if reply == 1:
            return
        stale = False
        violations = []
        conflicted = {}
        for n in range(0, len(reply), 2):
            item, g = batch.guards[int(reply[n]) - 1]
            if g.kind == "uniq":
                violations.append((item, g, reply[n + 1]))
                continue
            stale = True
            if g.kind == "dead":
                item.dropped = True  # renewed since it expired: leave it
                continue
            expected, old = item.expected, item.old
            item.saw(reply[n + 1])
            _saw(item, expected, old)
            conflicted[id(item)] = item
        if not stale and violations:
            # An owner past its deadline is invisible: purge it, then the value is free.
            freed = 0
            for i, _g, owner in violations:
                if i.owner.expiring:
                    freed += yield from i.owner.purge_pks([text(owner)])
            if freed:
                continue
            item, g, owner = violations[0]
            raise item.owner.unique_violation(item, g, owner)
    names = sorted({i.owner.name for i in items})
    msg = (
        f"{', '.join(names)}: gave up writing {[i.pk for i in items][:5]} after {attempts} "
        "attempt(s); other clients kept changing them."
    )
    raise WriteConflict(msg)
