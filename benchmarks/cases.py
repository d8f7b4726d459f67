"""The six benchmark sections. Each appends :class:`~benchmarks.report.Row` objects.

Ours is always the library's own public (or load-path) call; the baseline is what a
careful application would write by hand with redis-py for the same result, timed in the
same run and sampled interleaved with ours (see ``timing``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import redis

from benchmarks import workload as w
from benchmarks.report import Row, Target
from benchmarks.timing import Settings, compare, once
from redis_schematics.keys import KeySpace

SIMPLE = "SimpleRedisMixin"
#: objects per set_many call while loading data sets
LOAD_CHUNK = 5000
#: the query ~2 % filters ask for over a range: 2 % of the year, starting at day 100
RANGE_START = w.YEAR_START + dt.timedelta(days=100)
RANGE_END = RANGE_START + dt.timedelta(seconds=int(0.02 * w.YEAR_SECONDS))
#: the compound query: COMMON_FLAVOUR (~2 %) and amount_kg < 500 (~25 %): ~0.5 %
COMPOUND_AMOUNT = 500


@dataclass
class Bench:
    """What every section shares: the client, how hard to sample, and the results."""

    client: redis.Redis
    settings: Settings
    quick: bool
    rows: list[Row] = field(default_factory=list)
    series: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: the benchmark's private redis-server (not --url): server settings may be changed
    own_server: bool = False

    def flush(self) -> None:
        self.client.flushdb()

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def say(self, text: str) -> None:
        print(f"... {text}", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"note: {text}", file=sys.stderr, flush=True)


def load(model: Any, recs: Iterable[dict[str, Any]], chunk: int = LOAD_CHUNK) -> int:
    """Store ``recs`` through ``model.set_many`` (untimed); returns how many."""
    n = 0
    it = iter(recs)
    while batch := list(islice(it, chunk)):
        model.set_many([model(r) for r in batch])
        n += len(batch)
    return n


def _each(items: list[Any], fn: Callable[[Any], Any]) -> Callable[[], int]:
    def batch() -> int:
        for item in items:
            fn(item)
        return len(items)

    return batch


def _one_each(pool: Iterator[Any], fn: Callable[[Any], Any]) -> Callable[[], int]:
    def batch() -> int:
        fn(next(pool))
        return 1

    return batch


# -- 1. hydration ---------------------------------------------------------------------------
def hydration(b: Bench) -> None:
    """Payload bytes -> object: ``Records.hydrate`` vs schematics vs ``json.loads``."""
    b.say("hydration")
    b.flush()
    model = w.make_model(SIMPLE, b.client, indexed=False, prefix="Bench")
    recs = list(w.records(1000))
    load(model, recs)
    engine = model._engine()
    pks = [r["id"] for r in recs]
    payloads = [p for p, _alive in engine.sync().run(engine.read(pks))]  # what the library stored
    pairs = list(zip(pks, payloads, strict=True))
    hydrate, loads = engine.records.hydrate, json.loads
    t = compare(
        {
            "ours": _each(pairs, lambda pp: hydrate(pp[0], pp[1])),
            "schematics": _each(pairs, lambda pp: model(loads(pp[1]))),
            "floor": _each(pairs, lambda pp: loads(pp[1])),
        },
        b.settings,
    )
    case = "Records.hydrate(pk, payload), per object"
    b.add(
        Row("1 hydration", case, t["ours"], "s", "json.loads(payload)", t["floor"], Target("ratio", "<=", 3))
    )
    b.add(Row("1 hydration", case, t["ours"], "s", "Model(json.loads(payload))", t["schematics"]))
    b.flush()


# -- 2. writes ------------------------------------------------------------------------------
def _hand_writer(client: redis.Redis, ks: KeySpace) -> Callable[[list[dict[str, Any]]], None]:
    """Hand-written redis-py: the same writes as ``set`` (payload, members set, 2 SETs,
    2 ZSETs), MULTI/EXEC in one round trip per call."""

    def write(recs: list[dict[str, Any]]) -> None:
        pipe = client.pipeline(transaction=True)
        members = ks.members()
        for rec in recs:
            pk = rec["id"]
            pipe.set(ks.object(pk), w.hand_payload(rec))
            pipe.sadd(members, pk)
            pipe.sadd(ks.equality("flavour", rec["flavour"]), pk)
            pipe.sadd(ks.equality("vegan", "true" if rec["vegan"] else "false"), pk)
            pipe.zadd(ks.range("amount_kg"), {pk: rec["amount_kg"]})
            pipe.zadd(ks.range("best_before"), {pk: rec["best_before"].timestamp()})
        pipe.execute()

    return write


def writes(b: Bench) -> None:
    """``set()`` per new object and ``set_many`` throughput, 4 indexes, vs hand-written."""
    b.say("writes: set() per object")
    b.flush()
    model = w.make_model(SIMPLE, b.client, indexed=True, prefix="Bench")
    hand = _hand_writer(b.client, KeySpace("Hand"))
    per_sample = 40 if b.quick else 300
    total = per_sample * b.settings.repeat + 1
    recs = list(w.records(total, seed=w.WRITE_SEED))
    objs = iter([model(r) for r in recs])
    hand_recs = iter(recs)
    cases = {
        "ours": _one_each(objs, lambda o: o.set()),
        "hand": _one_each(hand_recs, lambda r: hand([r])),
    }
    for batch in cases.values():
        batch()  # warm-up (loads the write script)
    t = compare(cases, b.settings, calls={"ours": per_sample, "hand": per_sample})
    b.add(
        Row(
            "2 writes",
            "obj.set(), new object, 4 indexes",
            t["ours"],
            "s",
            "MULTI: SET+SADD x3+ZADD x2",
            t["hand"],
        )
    )

    b.say("writes: set_many throughput")
    n = 1000 if b.quick else 10_000
    recs = list(w.records(n, seed=w.WRITE_SEED))
    objs_list = [model(r) for r in recs]
    chunk = 500  # the library's own chunk size: one atomic write per 500 objects

    def ours() -> None:
        model.set_many(objs_list)

    def by_hand() -> None:
        for start in range(0, n, chunk):
            hand(recs[start : start + chunk])

    times: dict[str, list[float]] = {"ours": [], "hand": []}
    for _ in range(max(1, b.settings.repeat // 3)):
        for name, fn in (("ours", ours), ("hand", by_hand)):
            b.flush()
            times[name].append(once(fn))
    ours_rate = n / sorted(times["ours"])[len(times["ours"]) // 2]
    hand_rate = n / sorted(times["hand"])[len(times["hand"]) // 2]
    b.add(
        Row(
            "2 writes",
            f"set_many({n:,} new objects), 4 indexes",
            ours_rate,
            "obj/s",
            "MULTI pipeline per 500 objects",
            hand_rate,
            Target("ratio", ">=", 0.5),
        )
    )
    b.flush()


# -- 3. reads by pk -------------------------------------------------------------------------
def read_set(b: Bench) -> tuple[Any, list[str]]:
    """The indexed Simple model with 10k objects (1k with --quick) stored, and 200 of
    their pks: the data of the by-pk read cases (sync and async)."""
    b.flush()
    model = w.make_model(SIMPLE, b.client, indexed=True, prefix="Bench")
    recs = list(w.records(1000 if b.quick else 10_000))
    load(model, recs)
    return model, random.Random(w.SEED).sample([r["id"] for r in recs], 200)


def reads(b: Bench) -> None:
    """``match_for_pk`` vs GET + json.loads (+ schematics)."""
    b.say("reads: match_for_pk")
    model, pks = read_set(b)
    client: Any = b.client
    loads = json.loads
    t = compare(
        {
            "ours": _each(pks, model.match_for_pk),
            "get": _each(pks, lambda pk: loads(client.get("Bench:" + pk))),
            "get_model": _each(pks, lambda pk: model(loads(client.get("Bench:" + pk)))),
        },
        b.settings,
    )
    case = "Model.match_for_pk(pk)"
    b.add(Row("3 read by pk", case, t["ours"], "s", "GET + json.loads", t["get"], Target("ratio", "<=", 1.5)))
    b.add(Row("3 read by pk", case, t["ours"], "s", "GET + json.loads + Model(data)", t["get_model"]))
    b.flush()


# -- 4 + 5. indexed queries and scale ----------------------------------------------------------
class HandQueries:
    """Hand-written redis-py reading the library's own index keys, then the same hydration."""

    def __init__(self, client: redis.Redis, store: Any) -> None:
        self.client: Any = client  # redis-py's reply types are unions; keep them loose here
        self.store = store
        self.ks: KeySpace = store.keys

    def _load(self, pks: Iterable[bytes]) -> list[Any]:
        ordered = sorted(p.decode() for p in pks)  # filter() returns rows in pk order
        if not ordered:
            return []
        payloads = self.client.mget([self.ks.prefix + ":" + pk for pk in ordered])
        hydrate = self.store.records.hydrate
        return [hydrate(pk, p) for pk, p in zip(ordered, payloads, strict=True) if p is not None]

    def equal(self, flavour: str) -> list[Any]:
        return self._load(self.client.smembers(self.ks.equality("flavour", flavour)))

    def between(self, lo: dt.datetime, hi: dt.datetime) -> list[Any]:
        key = self.ks.range("best_before")
        return self._load(self.client.zrangebyscore(key, w.micros(lo), w.micros(hi)))

    def _compound_pks(self, flavour: str, below: int) -> list[Any]:
        # the smaller side generates, the other is probed: SMEMBERS, then ZMSCORE
        pks = list(self.client.smembers(self.ks.equality("flavour", flavour)))
        if not pks:
            return []
        scores = self.client.zmscore(self.ks.range("amount_kg"), pks)
        return [pk for pk, s in zip(pks, scores, strict=True) if s is not None and s < below]

    def compound(self, flavour: str, below: int) -> list[Any]:
        return self._load(self._compound_pks(flavour, below))

    def count_equal(self, flavour: str) -> int:
        return int(self.client.scard(self.ks.equality("flavour", flavour)))

    def count_compound(self, flavour: str, below: int) -> int:
        return len(self._compound_pks(flavour, below))


def _query_pair(
    b: Bench, case: str, ours: Callable[[], Any], hand: Callable[[], Any], target: Target | None = None
) -> float:
    got, expected = ours(), hand()
    size = got if isinstance(got, int) else len(got)
    want = expected if isinstance(expected, int) else len(expected)
    if size != want:
        msg = f"{case}: the library returned {size} rows, the hand-written baseline {want}"
        raise AssertionError(msg)

    def run(fn: Callable[[], Any]) -> Callable[[], int]:
        def batch() -> int:
            fn()
            return 1

        return batch

    t = compare({"ours": run(ours), "hand": run(hand)}, b.settings)
    b.add(
        Row(
            "4 filters",
            f"{case} -> {size:,} rows" if not isinstance(got, int) else f"{case} = {size:,}",
            t["ours"],
            "s",
            "hand-written redis-py + same hydration" if not isinstance(got, int) else "hand-written redis-py",
            t["hand"],
            target,
        )
    )
    return t["ours"]


def filters(b: Bench, model: Any, n: int) -> None:
    """Indexed filters at N = n vs hand-written redis-py, and the scan path once."""
    b.say(f"filters at N={n:,}")
    hand = HandQueries(b.client, model._engine())
    ratio_target = Target("ratio", "<=", 1.5)
    rare, common = w.RARE_FLAVOUR, w.COMMON_FLAVOUR
    _query_pair(
        b,
        f"filter(flavour={rare!r}) ~0.05%",
        lambda: model.filter(flavour=rare),
        lambda: hand.equal(rare),
        ratio_target,
    )
    eq_time = _query_pair(
        b,
        f"filter(flavour={common!r}) ~2%",
        lambda: model.filter(flavour=common),
        lambda: hand.equal(common),
        ratio_target,
    )
    _query_pair(
        b,
        "filter(best_before in 7.3 days) ~2%",
        lambda: model.filter(best_before__gte=RANGE_START, best_before__lte=RANGE_END),
        lambda: hand.between(RANGE_START, RANGE_END),
        ratio_target,
    )
    _query_pair(
        b,
        f"filter(flavour={common!r}, amount_kg__lt={COMPOUND_AMOUNT})",
        lambda: model.filter(flavour=common, amount_kg__lt=COMPOUND_AMOUNT),
        lambda: hand.compound(common, COMPOUND_AMOUNT),
        ratio_target,
    )
    _query_pair(
        b,
        f"count(flavour={common!r})",
        lambda: model.count(flavour=common),
        lambda: hand.count_equal(common),
    )
    _query_pair(
        b,
        f"count(flavour={common!r}, amount_kg__lt={COMPOUND_AMOUNT})",
        lambda: model.count(flavour=common, amount_kg__lt=COMPOUND_AMOUNT),
        lambda: hand.count_compound(common, COMPOUND_AMOUNT),
    )

    b.say(f"scan path at N={n:,} (same filter, unindexed model; timed once)")
    plain = w.make_model(SIMPLE, b.client, indexed=False, prefix="Scan")
    load(plain, w.records(n))
    found: list[Any] = []
    scan_time = once(lambda: found.extend(plain.filter(flavour=common)))
    indexed_rows = len(model.filter(flavour=common))
    if len(found) != indexed_rows:
        msg = f"scan found {len(found)} rows, the indexed filter {indexed_rows}"
        raise AssertionError(msg)
    b.add(
        Row(
            "4 filters",
            f"filter(flavour={common!r}) ~2%, indexed",
            eq_time,
            "s",
            f"scan path: unindexed model, N={n:,}",
            scan_time,
            Target("ratio", "<=", 1 / 50),
        )
    )
    # the unindexed copy stays until the section's final flush (deleting it costs minutes)


def scale_and_filters(b: Bench, ns: list[int], filter_n: int | None) -> None:
    """A range query returning ~100 and ~50 rows as N grows (one data set, grown in
    place); the filter section runs when N reaches ``filter_n``."""
    b.flush()
    model = w.make_model(SIMPLE, b.client, indexed=True, prefix="Bench")
    source = w.records(max(ns))
    dates: list[dt.datetime] = []
    times: dict[int, dict[int, float]] = {100: {}, 50: {}}
    for n in sorted(ns):
        b.say(f"scale: loading up to N={n:,}")
        fresh = list(islice(source, n - len(dates)))
        load(model, fresh)
        dates += [r["best_before"] for r in fresh]
        ordered = sorted(dates)
        cases = {}
        for rows in (100, 50):
            lo, hi = ordered[n // 2 - rows // 2], ordered[n // 2 - rows // 2 + rows - 1]
            got = len(model.filter(best_before__gte=lo, best_before__lte=hi))
            if abs(got - rows) > 2:
                msg = f"the scale window at N={n} returned {got} rows, not ~{rows}"
                raise AssertionError(msg)

            def query(lo: dt.datetime = lo, hi: dt.datetime = hi) -> int:
                model.filter(best_before__gte=lo, best_before__lte=hi)
                return 1

            cases[rows] = query
        t = compare({str(k): v for k, v in cases.items()}, b.settings)
        for rows in (100, 50):
            times[rows][n] = t[str(rows)]
        if n == filter_n:
            filters(b, model, n)
    base_n = min(ns)
    for rows in (100, 50):
        for n in sorted(ns):
            value = times[rows][n]
            case = f"range query ~{rows} rows, N={n:,}"
            if n == base_n:
                b.add(Row("5 scale", case, value, "s"))
            else:
                b.add(Row("5 scale", case, value, "s", f"same query at N={base_n:,}", times[rows][base_n]))
    if 10_000 in times[50] and 100_000 in times[50]:
        b.add(
            Row(
                "5 scale",
                "range query ~50 rows, N=100,000",
                times[50][100_000],
                "s",
                "same query at N=10,000",
                times[50][10_000],
                Target("ratio", "<=", 1.5),
            )
        )
    b.series["scale"] = {
        f"~{rows} rows": {str(n): t for n, t in sorted(times[rows].items())} for rows in (100, 50)
    }
    b.flush()


# -- 6. memory ------------------------------------------------------------------------------
def _breakdown(client: Any, meta_prefix: str, n: int) -> dict[str, float]:
    """Bytes per object in the library's own keys (``Prefix#kind...``), by kind.

    ``MEMORY USAGE key SAMPLES 0`` counts every element; it leaves out the main
    dictionary's per-key overhead, so the parts add up to a little less than the total.
    """
    sizes: dict[str, float] = {}
    for raw in client.scan_iter(match=meta_prefix + "*", count=1000):
        key = raw.decode()
        kind = key[len(meta_prefix) :].split(":", 1)[0]
        kind = {"eq": "equality sets", "range": "range zsets", "members": "members set"}.get(
            kind, kind + " keys"
        )
        usage = client.memory_usage(key, samples=0) or 0
        sizes[kind] = sizes.get(kind, 0.0) + usage / n
    return dict(sorted(sizes.items()))


#: half of rom's memory per object (issue 5: "less than half its memory"). The issue
#: cites ~1,070 B; rom 1.1.2 measured on this workload needs 1,020 B (docs/benchmarks.md)
MEMORY_TARGET = Target("value", "<", 510)
#: the server setting that lets Redis keep all-integer sets of this size as intsets
INTSET_ENTRIES = 100_000


def _memory_row(
    b: Bench, mixin: str, n: int, *, indexed: bool, int_pk: bool, case: str, plain: float
) -> float:
    """Load n objects through ``set_many`` on a flushed database; add and return bytes/object."""
    b.say(f"memory: {case}")
    b.flush()
    model = w.make_model(mixin, b.client, indexed=indexed, prefix="Bench", int_pk=int_pk)
    recs = w.records(n)
    before = b.used_memory()
    load(model, w.with_int_pks(recs) if int_pk else recs)
    per_object = (b.used_memory() - before) / n
    parts = _breakdown(b.client, model._engine().keys.base + "#", n)
    b.add(
        Row(
            "6 memory",
            case,
            per_object,
            "B/obj",
            "plain SET key -> JSON",
            plain,
            MEMORY_TARGET if indexed else None,
            note="of which (MEMORY USAGE): " + ", ".join(f"{k} {v:,.0f} B" for k, v in parts.items()),
            extra={"breakdown_bytes_per_object": parts},
        )
    )
    return per_object


def memory(b: Bench, n: int) -> None:
    """Redis ``used_memory`` per object, per layout, without and with the 4 indexes.

    Every layout with the workload's 32-hex pks, without and with indexes; then with
    integer pks (1..n) and 4 indexes; then, on the benchmark's own server only, Simple
    with integer pks and ``set-max-intset-entries`` raised so that the members set and
    the equality sets stay intsets (the setting is restored afterwards).
    """
    b.say(f"memory at N={n:,}: plain SET baseline")
    b.flush()
    before = b.used_memory()
    pipe = b.client.pipeline(transaction=False)
    for i, rec in enumerate(w.records(n)):
        pipe.set("Bench:" + rec["id"], w.hand_payload(rec))
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    plain = (b.used_memory() - before) / n
    b.add(Row("6 memory", f"plain SET key -> JSON, N={n:,}", plain, "B/obj"))
    per_layout: dict[str, dict[str, float]] = {}
    available = []
    for label, mixin in w.LAYOUTS:
        if not w.layout_available(mixin):
            b.note(f"memory: redis_schematics exports no {mixin} yet; layout {label} skipped")
            continue
        available.append((label, mixin))
        for indexed in (False, True):
            kind = "4 indexes" if indexed else "no index"
            case = f"{label} layout, {kind} (members set incl.)"
            per_layout.setdefault(label, {})[kind] = _memory_row(
                b, mixin, n, indexed=indexed, int_pk=False, case=case, plain=plain
            )
    for label, mixin in available:
        case = f"{label} layout, 4 indexes, integer pk"
        per_layout[label]["4 indexes, integer pk"] = _memory_row(
            b, mixin, n, indexed=True, int_pk=True, case=case, plain=plain
        )
    if b.own_server and w.layout_available(SIMPLE):
        setting = "set-max-intset-entries"
        previous = b.client.config_get(setting)[setting]
        b.client.config_set(setting, INTSET_ENTRIES)
        try:
            case = f"Simple layout, 4 indexes, integer pk, {setting} {INTSET_ENTRIES}"
            per_layout["Simple"]["4 indexes, integer pk, intsets"] = _memory_row(
                b, SIMPLE, n, indexed=True, int_pk=True, case=case, plain=plain
            )
        finally:
            b.client.config_set(setting, previous)
    b.series["memory"] = {"plain SET": plain, **per_layout}
    b.flush()
