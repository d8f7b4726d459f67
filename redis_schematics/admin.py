"""Operations on a model's data, for code and for the ``redis-schematics`` command line.

Each function takes a model class and an optional ``progress(phase, done, total)``
callback, and returns a typed report (a dataclass; ``report.to_json()`` gives a plain
dict, what ``--json`` prints). Nothing here is needed by the library itself.

* :func:`check` lists every inconsistency (``Model.check_indexes()``), both ways:
  index entries without objects, objects missing entries, wrong scores, unique
  collisions, members vs payloads, unknown keys, indexes not complete or no longer
  declared. Suspects are read again before they are reported: a problem is reported
  only when a second, later read still shows it, so concurrent writers give no false
  positives.
* :func:`repair` / :func:`reindex` fix them (``Model.rebuild_indexes()``, every write
  guarded by the payload it was computed from, so a concurrent write is never undone)
  and record the indexes complete; with ``dry_run`` they only say what they would do.
* :func:`purge_expired`, :func:`stats`, :func:`export` (JSON lines, one
  ``to_primitive()`` per object) and :func:`import_` (back through ``set_many``,
  validated) complete the set.

``max_ops_per_sec`` (where a function takes it) throttles: after each batch the call
sleeps long enough that the batches so far average at most that many objects per
second.

Letters in ``Complexity:`` sections: N = objects of the model.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from redis.exceptions import ResponseError
from schematics.exceptions import BaseError

from redis_schematics import upkeep
from redis_schematics.engine import now_ms
from redis_schematics.exceptions import RedisSchematicsError
from redis_schematics.io import Command, Flow
from redis_schematics.schema import SchemaState
from redis_schematics.util import text

#: ``progress(phase, done, total)``
Progress = Callable[[str, int, int], None]


def _quiet(phase: str, done: int, total: int) -> None:
    """The progress callback that reports nothing."""


class Throttle:
    """Sleeps so that the work reported so far averages at most ``per_sec`` per
    second; wraps a progress callback. ``per_sec`` None or 0: no limit."""

    def __init__(self, progress: Progress, per_sec: float | None) -> None:
        self.progress = progress
        self.per_sec = per_sec or None
        self.started = time.monotonic()
        self.last: dict[str, int] = {}
        self.total_done = 0

    def __call__(self, phase: str, done: int, total: int) -> None:
        self.total_done += max(0, done - self.last.get(phase, 0))
        self.last[phase] = done
        self.progress(phase, done, total)
        if self.per_sec is not None:
            ahead = self.total_done / self.per_sec - (time.monotonic() - self.started)
            if ahead > 0:
                time.sleep(ahead)


def _engine(model: type) -> Any:
    engine = getattr(model, "_engine", None)
    if engine is None:
        msg = f"{model!r} is not a redis-schematics model (no _engine)"
        raise TypeError(msg)
    return engine()


def _run(model: type, flow: Flow[Any]) -> Any:
    return _engine(model).sync().run(flow)


def _ask(command: tuple[Any, ...]) -> Flow[Any]:
    """A flow of one command."""
    return (yield Command(command))


@dataclass
class Report:
    """What one admin call did to one model."""

    model: str
    command: str
    #: no problem left (what the command line's exit code 0 says)
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        """A plain dict for ``json.dumps``."""
        return asdict(self)


@dataclass
class ProblemEntry:
    """One problem of a :class:`CheckReport`, as plain data."""

    kind: str
    key: str
    member: str
    detail: str = ""


@dataclass
class CheckReport(Report):
    """What :func:`check` found."""

    command: str = "check"
    objects: int = 0
    problems: list[ProblemEntry] = field(default_factory=list)
    #: problems by kind
    counts: dict[str, int] = field(default_factory=dict)


def _entries(found: Iterable[upkeep.Problem]) -> list[ProblemEntry]:
    return [ProblemEntry(p.kind, p.key, p.member, p.detail) for p in found]


def check(model: type, progress: Progress = _quiet, confirm: bool = True) -> CheckReport:
    """Every inconsistency between the model's objects and its indexes (see
    ``Model.check_indexes``), and, for an expiring model, how many objects are past
    their deadline but not purged yet. With ``confirm`` (the default) a second read follows
    when the first found problems, and only the problems both reads show are reported
    (a write between the reads of one pass can make a pk look inconsistent once).

    Complexity: O(N) reads (SCAN family and MGET, ``CHUNK`` per round trip), twice
    when problems are found; O(N) memory.
    """
    engine = _engine(model)
    found = _run(model, upkeep.check(engine, progress))
    if found and confirm:
        again = set(_run(model, upkeep.check(engine, progress)))
        found = [p for p in found if p in again]
    objects = int(_run(model, engine.count_all()))
    problems = _entries(found)
    if engine.expiring:
        for shard in engine.shards or (engine,):
            due = int(_run(model, _expired(shard)))
            if due:
                detail = f"{due} objects past their deadline still stored; purge-expired removes them"
                problems.append(ProblemEntry("expired not purged", shard.keys.members(), "", detail))
    return CheckReport(
        model=engine.name,
        ok=not problems,
        objects=objects,
        problems=problems,
        counts=dict(Counter(p.kind for p in problems)),
    )


@dataclass
class RepairReport(Report):
    """What :func:`repair` or :func:`reindex` did (or, dry, would do)."""

    command: str = "repair"
    dry_run: bool = False
    #: problems found before repairing
    found: dict[str, int] = field(default_factory=dict)
    #: pks whose entries or membership were rewritten (dry: would be)
    repaired: int = 0
    #: index keys no longer declared that were deleted (dry: would be)
    removed_keys: list[str] = field(default_factory=list)
    #: indexes Redis now holds complete, and those still not complete
    complete: list[str] = field(default_factory=list)
    not_complete: list[str] = field(default_factory=list)
    #: problems left afterwards (e.g. two objects sharing a unique value)
    left: list[ProblemEntry] = field(default_factory=list)


def repair(
    model: type,
    progress: Progress = _quiet,
    dry_run: bool = False,
    max_ops_per_sec: float | None = None,
    command: str = "repair",
) -> RepairReport:
    """Fix what :func:`check` finds and build the indexes that are not complete, then
    record them complete (``Model.rebuild_indexes()``); keys of indexes no longer
    declared are deleted. Safe while the application writes. ``dry_run``: only check,
    and report what would be repaired.

    Complexity: O(N) reads plus one guarded script call per 100 pks to repair, per
    round (another round only while concurrent writes changed pks being repaired); a
    check afterwards only when something could not be repaired.
    """
    engine = _engine(model)
    paced = Throttle(progress, max_ops_per_sec)
    report = RepairReport(model=engine.name, command=command, dry_run=dry_run)
    if dry_run:
        before = _run(model, upkeep.check(engine, paced))
        pks = {p.member for p in before if p.kind in _PER_PK}
        pks |= {p.detail.split("'")[1] for p in before if p.kind == "orphan unique claim" and "'" in p.detail}
        report.found = dict(Counter(p.kind for p in before))
        report.removed_keys = sorted(p.key for p in before if p.kind == "unknown key")
        report.repaired = len(pks)
        state = _state(model, fresh=False)
        report.complete = sorted(state.ready)
        report.not_complete = list(state.pending)
        report.left = _entries(before)
        report.ok = not before
        return report
    done = _run(model, upkeep.rebuild_report(engine, progress=paced))
    report.repaired, report.found, report.removed_keys = done.repaired, done.found, sorted(done.removed_keys)
    state = _state(model, fresh=True)
    if done.clean:  # every repair held: what can be left is what the hash says
        left = upkeep.schema_problems(engine, state) if not engine.shards else []
        if engine.shards:
            for shard in engine.shards:
                left += upkeep.schema_problems(shard, _run(model, upkeep.fresh_schema(shard)))
    else:
        left = _run(model, upkeep.check(engine, paced))
    report.complete = sorted(state.ready)
    report.not_complete = list(state.pending)
    report.left = _entries(left)
    report.ok = not left
    return report


#: problem kinds that name a pk in ``member``
_PER_PK = frozenset({"missing member", "stale member", "missing entry", "stale entry", "wrong score"})


def reindex(
    model: type, progress: Progress = _quiet, dry_run: bool = False, max_ops_per_sec: float | None = None
) -> RepairReport:
    """Build every declared index from the stored objects (online, in guarded batches,
    while writes maintain it), mark it complete, and drop the keys of indexes no longer
    declared: what a deploy that adds or changes an index needs. The same work as
    :func:`repair` (which also fixes any other inconsistency)."""
    return repair(model, progress, dry_run, max_ops_per_sec, command="reindex")


def _state(model: type, fresh: bool) -> SchemaState:
    engine = _engine(model)
    if fresh:
        return _run(model, upkeep.fresh_schema(engine))  # type: ignore[no-any-return]
    return _run(model, engine.schema_state())  # type: ignore[no-any-return]


@dataclass
class PurgeReport(Report):
    """What :func:`purge_expired` removed (dry: how many are past their deadline)."""

    command: str = "purge-expired"
    dry_run: bool = False
    expired: int = 0
    purged: int = 0


def purge_expired(
    model: type, progress: Progress = _quiet, dry_run: bool = False, batch_size: int = 500
) -> PurgeReport:
    """Remove expired objects and their index entries (``Model.purge_expired()``),
    ``batch_size`` at a time; ``dry_run``: count them only (one ZCOUNT per shard).

    Complexity: O(E log N) for E expired objects, four round trips per batch.
    """
    engine = _engine(model)
    report = PurgeReport(model=engine.name, dry_run=dry_run)
    if not engine.expiring:
        return report
    report.expired = sum(_run(model, _expired(e)) for e in engine.shards or (engine,))
    if dry_run:
        return report
    purged = 0
    for shard in engine.shards or (engine,):
        while True:
            n = int(_run(model, shard.purge_expired(batch_size, max_batches=1)))
            purged += n
            progress("purge", purged, report.expired)
            if n < batch_size:
                break
    report.purged = purged
    return report


def _expired(engine: Any) -> Flow[int]:
    now = now_ms((yield Command(("TIME",))))
    return int((yield Command(("ZCOUNT", engine.keys.members(), "-inf", now))))


@dataclass
class IndexStats:
    """One index in a :class:`StatsReport`."""

    index: str
    complete: bool
    #: distinct values (keys of an EqualityIndex, fields of a UniqueIndex), or None
    values: int | None
    #: entries (pks listed)
    entries: int
    #: the values listing the most pks, with their counts (EqualityIndex)
    largest: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class StatsReport(Report):
    """What :func:`stats` measured."""

    command: str = "stats"
    objects: int = 0
    indexes: list[IndexStats] = field(default_factory=list)
    #: bytes per object (``MEMORY USAGE`` of sampled objects; None when unavailable)
    bytes_per_object: float | None = None
    sampled: int = 0
    #: seconds left before the deadlines of an expiring model: min, median, max
    ttl_seconds: tuple[float, float, float] | None = None


def stats(model: type, progress: Progress = _quiet, sample: int = 50) -> StatsReport:
    """Objects, per-index cardinality and largest values, memory per object (``MEMORY
    USAGE`` of up to ``sample`` objects, ``SAMPLES 0``), and the spread of the
    deadlines of an expiring model.

    Complexity: O(N) (the index keys are scanned, the members set too when expiring);
    ``sample`` MEMORY USAGE calls.
    """
    engine = _engine(model)
    state = _state(model, fresh=True)
    report = StatsReport(model=engine.name, objects=int(_run(model, engine.count_all())))
    for n, index in enumerate(engine.indexes):
        entries = []
        for shard in engine.shards or (engine,):
            shard_index = shard.indexes[n]
            entries += _run(model, shard_index.stored_entries())
        by_key = Counter(e.key for e in entries)
        claims = getattr(index, "claims", False)
        scored = getattr(index, "scored", False)
        values = len(entries) if claims else (None if scored else len(by_key))
        largest = [] if claims or scored else [(_value_of(k), n) for k, n in by_key.most_common(5)]
        report.indexes.append(
            IndexStats(index.describe(), index.describe() in state.ready, values, len(entries), largest)
        )
        progress("stats", n + 1, len(engine.indexes))
    try:
        report.bytes_per_object, report.sampled = _memory(model, engine, sample)
    except ResponseError:  # a server without MEMORY USAGE (fakeredis): not measured
        report.bytes_per_object, report.sampled = None, 0
    if engine.expiring:
        report.ttl_seconds = _ttl_spread(model, engine)
    return report


def _value_of(key: str) -> str:
    """The value part of an equality key (``Prefix#eq:field:value`` -> ``value``)."""
    return key.rsplit("#", 1)[-1].split(":", 2)[-1] if "#eq:" in key else key


def _memory(model: type, engine: Any, sample: int) -> tuple[float | None, int]:
    """Mean ``MEMORY USAGE`` of up to ``sample`` objects' keys (a model whose objects
    share one key, the Hash and column layouts: that key over its objects)."""
    pks: list[str] = []
    for shard in engine.shards or (engine,):
        reply = _run(model, _ask(_random_members(shard, sample)))
        pks += [text(p) for p in reply or ()]
    if not pks:
        return None, 0
    if engine.layout.name in ("hash", "distributed_hash"):  # objects share keys
        shared = []
        for shard in engine.shards or (engine,):
            layout = shard.layout
            shared += [layout.keys.model_hash()] if layout.name == "hash" else list(layout.columns)
        used = sum(_usage(model, k) for k in shared)
        return used / max(1, report_objects(model, engine)), len(pks)
    sizes = [_usage(model, engine.object_key(pk)) for pk in pks]
    return sum(sizes) / len(sizes), len(sizes)


def _usage(model: type, key: str) -> int:
    return int(_run(model, _ask(("MEMORY", "USAGE", key, "SAMPLES", "0"))) or 0)


def report_objects(model: type, engine: Any) -> int:
    """Objects of the model (SCARD/ZCOUNT)."""
    return int(_run(model, engine.count_all()))


def _random_members(engine: Any, count: int) -> tuple[Any, ...]:
    if engine.expiring:
        return ("ZRANDMEMBER", engine.keys.members(), count)
    return ("SRANDMEMBER", engine.keys.members(), count)


def _ttl_spread(model: type, engine: Any) -> tuple[float, float, float] | None:
    deadlines: list[float] = []
    now = 0
    for shard in engine.shards or (engine,):
        now = now_ms(_run(model, _ask(("TIME",))))
        pairs = _run(model, _ask(("ZRANGE", shard.keys.members(), 0, -1, "WITHSCORES")))
        deadlines += [float(score) for _m, score in _pairs(pairs)]
    left = sorted((d - now) / 1000 for d in deadlines if d > now)
    if not left:
        return None
    return (left[0], left[len(left) // 2], left[-1])


def _pairs(reply: Any) -> Iterator[tuple[Any, Any]]:
    if reply and isinstance(reply[0], (list, tuple)):
        yield from ((m, s) for m, s in reply)
        return
    yield from zip(reply[::2], reply[1::2], strict=True)


@dataclass
class ExportReport(Report):
    """What :func:`export` wrote."""

    command: str = "export"
    exported: int = 0


def export(model: type, out: IO[str], progress: Progress = _quiet, batch_size: int = 500) -> ExportReport:
    """Write every object as one line of JSON (its ``to_primitive()``), streaming
    (500 objects per read); progress is reported every ``batch_size`` objects.

    Complexity: O(N): one round trip per batch (and the members set's SSCAN pages).
    """
    engine = _engine(model)
    total = report_objects(model, engine)
    done = 0
    for obj in model.query():  # type: ignore[attr-defined]  # streams CHUNK objects per read
        out.write(json.dumps(obj.to_primitive(), sort_keys=True, default=str) + "\n")
        done += 1
        if done % batch_size == 0:
            progress("export", done, total)
    progress("export", done, total)
    return ExportReport(model=engine.name, exported=done)


@dataclass
class ImportReport(Report):
    """What :func:`import_` stored (dry: validated)."""

    command: str = "import"
    dry_run: bool = False
    imported: int = 0
    #: (line number, message) of each line refused; nothing of those is written
    refused: list[tuple[int, str]] = field(default_factory=list)


def import_(
    model: type,
    lines: Iterable[str],
    progress: Progress = _quiet,
    batch_size: int = 500,
    dry_run: bool = False,
    max_ops_per_sec: float | None = None,
) -> ImportReport:
    """Read JSON lines (as :func:`export` writes them) back into the model through
    ``set_many`` (``batch_size`` objects per call), every object validated first. A
    line that does not parse or validate is refused (and listed) and nothing of it is
    written; the other lines are imported. ``dry_run``: validate only.

    Complexity: one ``set_many`` (one or two round trips) per batch.
    """
    engine = _engine(model)
    report = ImportReport(model=engine.name, dry_run=dry_run)
    paced = Throttle(progress, max_ops_per_sec)
    pending: list[Any] = []

    def flush() -> None:
        if pending and not dry_run:
            model.set_many(pending)  # type: ignore[attr-defined]
        report.imported += len(pending)
        pending.clear()
        paced("import", report.imported, 0)

    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = model(json.loads(line))
            engine.records.prepare(obj)  # validates; no I/O
        except (ValueError, TypeError, RedisSchematicsError, BaseError) as exc:
            report.refused.append((number, f"{type(exc).__name__}: {exc}"))
            continue
        pending.append(obj)
        if len(pending) >= batch_size:
            flush()
    flush()
    report.ok = not report.refused
    return report


__all__ = [
    "CheckReport",
    "ExportReport",
    "ImportReport",
    "IndexStats",
    "Progress",
    "PurgeReport",
    "RepairReport",
    "Report",
    "StatsReport",
    "Throttle",
    "check",
    "export",
    "import_",
    "purge_expired",
    "reindex",
    "repair",
    "stats",
]
