"""Many writers at once on the real server: indexes stay exact, unique values stay unique.

Threads (and, in the last test, processes) each use their own ``redis.Redis`` client and
their own model class over the same ``__prefix__``, and write, overwrite and delete
overlapping pks with changing indexed values. A monitor reads every object atomically
(one MGET / HMGET / script call) again and again and checks that no two stored objects
ever share a UniqueIndex value. When the writers are done, ``check_indexes()`` must be
empty and every count must match the objects themselves.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
import redis
from schematics import types

from redis_schematics import (
    HashRedisModel,
    RangeIndex,
    SimpleRedisModel,
    UniqueIndex,
    UniqueViolation,
)
from tests.conftest import LAYOUTS, real_client
from tests.dbstate import is_marker
from tests.engine import layout_read

pytestmark = pytest.mark.real

N_PKS = 40
PKS = [f"k{n}" for n in range(N_PKS)]
CODES = [f"c{n}" for n in range(80)]
FLAVOURS = ["vanilla", "mint", "fig", "ube", "yuzu"]
INDEXES = ("flavour", RangeIndex("kg"), UniqueIndex("code"), "vegan")


def model_of(base: type, client: Any, name: str, expire: int | None = None) -> type:
    return type(base)(
        name,
        (base,),
        {
            "__redis_client__": client,
            "__prefix__": "Race",
            "__expire__": expire,
            "__indexes__": INDEXES,
            "flavour": types.StringType(),
            "kg": types.IntType(),
            "code": types.StringType(),
            "vegan": types.BooleanType(),
            "note": types.StringType(),
        },
    )


def random_obj(model: type, rng: random.Random, pk: str) -> Any:
    return model(
        {
            "pk": pk,
            "flavour": rng.choice([*FLAVOURS, None]),
            "kg": rng.choice([None, rng.randrange(20)]),
            "code": None if rng.random() < 0.4 else rng.choice(CODES),
            "vegan": rng.choice([True, False, None]),
            "note": rng.choice(["x", "y"]),
        }
    )


def work(model: type, seed: int, ops: int) -> Counter[str]:
    """``ops`` random writes on overlapping pks; returns what was done."""
    rng = random.Random(seed)
    done: Counter[str] = Counter()
    for _ in range(ops):
        roll = rng.random()
        try:
            if roll < 0.6:
                random_obj(model, rng, rng.choice(PKS)).set()
                done["set"] += 1
            elif roll < 0.75:
                done["deleted"] += model.delete_many([rng.choice(PKS)])
                done["delete"] += 1
            elif roll < 0.88:
                model.set_many([random_obj(model, rng, pk) for pk in rng.sample(PKS, 3)])
                done["set_many"] += 1
            elif roll < 0.94:
                done["deleted"] += model.delete_filter(flavour=rng.choice(FLAVOURS), kg__lt=rng.randrange(20))
                done["delete_filter"] += 1
            else:
                # a read between the writes must never fail either
                model.filter(code__in=rng.sample(CODES, 3))
                done["read"] += 1
        except UniqueViolation:
            done["unique_refused"] += 1
    return done


def stored_codes(model: type) -> list[tuple[str, str]]:
    """(code, pk) of every stored object, read in one atomic command."""
    store = model._engine()
    payloads = layout_read(model, store.settings.sync_client(), PKS)
    out = []
    for pk, payload in zip(PKS, payloads, strict=True):
        if payload is not None:
            code = store.records.hydrate(pk, payload).code
            if code is not None:
                out.append((code, pk))
    return out


def duplicates(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for code, pk in pairs:
        owners.setdefault(code, []).append(pk)
    return {code: pks for code, pks in owners.items() if len(pks) > 1}


def check_final_state(model: type, nonempty: bool = True) -> None:
    assert model.check_indexes() == []
    objs = model.all()
    assert model.count() == len(objs)
    assert objs or not nonempty
    assert not duplicates([(o.code, o.pk) for o in objs if o.code is not None])
    queries: list[dict[str, Any]] = [{"flavour": f} for f in [*FLAVOURS, None]] + [
        {"kg__gte": 10},
        {"kg": None},
        {"kg__lt": 5, "flavour__in": ["mint", "fig"]},
        {"vegan": True},
        {"vegan__not": True},
        {"code__in": CODES[:10]},
        {"code": None},
        {"code__exclude": CODES[:5]},
        {"flavour__exclude": ["vanilla", None], "vegan__in": [False, None]},
        {"note": "x"},
    ]
    for kw in queries:
        found = model.filter(**kw)
        assert model.count(**kw) == len(found), kw
        # and the indexes answer exactly what the objects say
        query = model.query(**kw)
        assert sorted(o.pk for o in objs if all(c.test(o) for c in query.conditions)) == [
            o.pk for o in found
        ], kw
    for code in CODES:
        owners = [o.pk for o in objs if o.code == code]
        assert [o.pk for o in model.filter(code=code)] == owners


@pytest.fixture(params=list(LAYOUTS))
def real_layout(request: pytest.FixtureRequest) -> type:
    return LAYOUTS[request.param]


def test_threads_keep_indexes_exact_and_values_unique(real_layout: type, pytestconfig: pytest.Config) -> None:
    main = real_client(pytestconfig)
    url = pytestconfig.getoption("--redis-url")
    watcher = model_of(real_layout, main, "RaceMain")
    clients = [redis.Redis.from_url(url, socket_timeout=20) for _ in range(8)]
    models = [model_of(real_layout, c, f"RaceWriter{n}") for n, c in enumerate(clients)]
    results: list[Counter[str] | BaseException] = [Counter() for _ in models]
    seen_dupes: list[dict[str, list[str]]] = []
    snapshots = [0]
    stop = threading.Event()

    def run(n: int) -> None:
        try:
            results[n] = work(models[n], seed=n, ops=300)
        except BaseException as exc:  # reported below
            results[n] = exc

    def monitor() -> None:
        monitor_client = redis.Redis.from_url(url, socket_timeout=20)
        mon = model_of(real_layout, monitor_client, "RaceMonitor")
        while not stop.is_set():
            dupes = duplicates(stored_codes(mon))
            if dupes:
                seen_dupes.append(dupes)
            snapshots[0] += 1
        monitor_client.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(models))]
    watch = threading.Thread(target=monitor)
    started = time.monotonic()
    watch.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    stop.set()
    watch.join(timeout=60)
    elapsed = time.monotonic() - started
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    totals: Counter[str] = Counter()
    for r in results:
        assert isinstance(r, Counter)
        totals.update(r)
    assert (
        sum(totals[k] for k in ("set", "delete", "set_many", "delete_filter", "read", "unique_refused"))
        == 8 * 300
    )
    # the workload really contended: unique values were refused, objects deleted
    assert totals["unique_refused"] > 10, totals
    assert totals["deleted"] > 10, totals
    assert snapshots[0] > 5, snapshots
    assert not seen_dupes, seen_dupes[:3]
    check_final_state(watcher)
    print(f"{real_layout.__name__}: {dict(totals)} in {elapsed:.1f}s, {snapshots[0]} snapshots")
    for c in clients:
        c.close()
    main.flushdb()
    main.close()


# -- processes ---------------------------------------------------------------------------------
def process_main(layout_name: str, url: str, seed: int, ops: int, queue: Any) -> None:
    """Runs in a spawned process: its own client, its own model class."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=20)
        model = model_of(LAYOUTS[layout_name], client, f"RaceProc{seed}")
        queue.put((seed, dict(work(model, seed, ops))))
        client.close()
    except BaseException as exc:  # sent to the parent
        queue.put((seed, repr(exc)))


@pytest.mark.parametrize("layout_name", ["simple", "hash"])
def test_processes_keep_indexes_exact_and_values_unique(
    layout_name: str, pytestconfig: pytest.Config
) -> None:
    main = real_client(pytestconfig)
    url = pytestconfig.getoption("--redis-url")
    base = {"simple": SimpleRedisModel, "hash": HashRedisModel}[layout_name]
    watcher = model_of(base, main, "RaceMain")
    ctx = multiprocessing.get_context("spawn")  # no fork of a threaded pytest
    queue = ctx.Queue()
    procs = [ctx.Process(target=process_main, args=(layout_name, url, 100 + n, 300, queue)) for n in range(4)]
    for p in procs:
        p.start()
    dupes_seen = []
    results = {}
    deadline = time.monotonic() + 240
    while len(results) < len(procs) and time.monotonic() < deadline:
        dupes = duplicates(stored_codes(watcher))
        if dupes:
            dupes_seen.append(dupes)
        while not queue.empty():
            seed, outcome = queue.get()
            results[seed] = outcome
        time.sleep(0.005)  # leave the cores to the writers
    for p in procs:
        p.join(timeout=60)
    assert len(results) == 4, results
    errors = [r for r in results.values() if isinstance(r, str)]
    assert not errors, errors
    assert all(sum(r.values()) >= 300 for r in results.values()), results
    assert not dupes_seen, dupes_seen[:3]
    check_final_state(watcher)
    main.flushdb()
    main.close()


# -- expiry under contention --------------------------------------------------------------------
def test_threads_with_expiry_and_purges(real_layout: type, pytestconfig: pytest.Config) -> None:
    """Writers, a "clock" that makes objects expire (deadlines moved to the past), and a
    purger running purge_expired and queries (which purge lazily), all at once."""
    main = real_client(pytestconfig)
    url = pytestconfig.getoption("--redis-url")
    watcher = model_of(real_layout, main, "RaceMain", expire=600)
    clients = [redis.Redis.from_url(url, socket_timeout=20) for _ in range(6)]
    writers = [model_of(real_layout, c, f"RaceExpW{n}", expire=600) for n, c in enumerate(clients[:4])]
    purger = model_of(real_layout, clients[4], "RaceExpP", expire=600)
    clock_client = clients[5]
    stop = threading.Event()
    failures: list[BaseException] = []
    counts: Counter[str] = Counter()
    seen_dupes: list[dict[str, list[str]]] = []

    def guarded(fn: Any) -> Any:
        def run(*args: Any) -> None:
            try:
                fn(*args)
            except BaseException as exc:  # reported below
                failures.append(exc)

        return run

    @guarded
    def write(n: int) -> None:
        counts.update(work(writers[n], seed=200 + n, ops=250))

    @guarded
    def clock() -> None:
        rng = random.Random(7)
        while not stop.is_set():
            sec, usec = clock_client.time()
            past = int(sec) * 1000 + int(usec) // 1000 - 1
            clock_client.zadd("Race#members", dict.fromkeys(rng.sample(PKS, 3), past), xx=True)
            counts["expired"] += 1
            time.sleep(0.002)

    @guarded
    def purge() -> None:
        rng = random.Random(8)
        while not stop.is_set():
            counts["purged"] += purger.purge_expired(batch=5, max_batches=2)
            purger.count(flavour=rng.choice(FLAVOURS))
            purger.filter(kg__lt=rng.randrange(20))
            dupes = duplicates(stored_codes(purger))
            if dupes:
                seen_dupes.append(dupes)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    helpers = [threading.Thread(target=clock), threading.Thread(target=purge)]
    for t in helpers + threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    stop.set()
    for t in helpers:
        t.join(timeout=60)
    assert not failures, failures[:3]
    assert counts["expired"] > 10, counts
    assert counts["purged"] > 10, counts
    assert not seen_dupes, seen_dupes[:3]
    watcher.purge_expired()
    assert watcher.check_indexes() == []
    check_final_state(watcher, nonempty=False)  # the clock may have expired them all
    # and once everything expires and is purged, nothing of the model is left
    alive = list(main.zrange("Race#members", 0, -1))
    if alive:
        sec, _usec = main.time()
        main.zadd("Race#members", dict.fromkeys(alive, int(sec) * 1000 - 1), xx=True)
    watcher.purge_expired()
    assert [k for k in main.scan_iter(match="Race*") if not is_marker(k)] == []
    for c in clients:
        c.close()
    main.flushdb()
    main.close()
