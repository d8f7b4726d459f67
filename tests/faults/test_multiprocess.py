"""Concurrent writers in several processes (``spawn``), on the real server.

Four processes (a pool started once for the module; code in tests/faults/workers.py)
write the same pks at the same time. Afterwards:

* overlapping writes with changing indexed values lose no index entry: the library's
  ``check_indexes()`` and the independent tests/faults/checks.py find nothing, and the
  counts answered by the indexes equal those of the stored objects;
* unique constraints hold: when every process claims one value at once, exactly one
  wins and the others get ``UniqueViolation``; no two stored objects ever share a value;
* ``Model.update`` never loses an increment: processes x increments = the exact total.

Figures are printed: run with ``-s`` to see them.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.conftest import LAYOUTS
from tests.faults import workers
from tests.faults.checks import index_differences, stored_objects

pytestmark = pytest.mark.real

#: per process; the module stays well under a minute on 2 busy cores
MIXED_OPS = 300
RACE_ROUNDS = 24
INCREMENTS = 60


@pytest.fixture(scope="module")
def pool(request: pytest.FixtureRequest) -> Iterator[Any]:
    with multiprocessing.get_context("spawn").Pool(workers.PROCESSES) as processes:
        yield processes
        processes.close()
        processes.join()


def run_all(pool: Any, fn: Any, *args: Any) -> list[Any]:
    """Run ``fn(url, base, worker, *args)`` once per process, all at the same time."""
    tasks = [(*args[:2], worker, *args[2:]) for worker in range(workers.PROCESSES)]
    return pool.starmap(fn, tasks, chunksize=1)


@pytest.fixture
def url(upstream: redis.Redis, request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--redis-url"))


@pytest.mark.parametrize("layout_name", list(LAYOUTS))
def test_overlapping_writers_lose_no_index_entry(
    layout_name: str, pool: Any, url: str, upstream: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    base = LAYOUTS[layout_name]
    results = run_all(pool, workers.mixed_writer, url, base, MIXED_OPS, 25, 30)
    total = Counter[str]()
    for r in results:
        total.update(r)
    model = workers.shared_model(base, upstream)

    assert model.check_indexes() == []
    assert index_differences(model) == []
    objects = stored_objects(model)
    assert model.count() == len(objects) == len(model.all())
    for flavour in workers.FLAVOURS:
        expected = sorted(pk for pk, d in objects.items() if d.get("flavour") == flavour)
        assert model.count(flavour=flavour) == len(expected)
        assert sorted(o.id for o in model.filter(flavour=flavour)) == expected
    assert model.count(n__gte=25) == sum(1 for d in objects.values() if (d.get("n") or 0) >= 25)
    codes = [d["code"] for d in objects.values() if d.get("code") is not None]
    assert len(codes) == len(set(codes)), "two objects share a unique value"
    for code in set(codes):
        assert model.match(code=code).code == code
    # the pool of codes is small: the processes must have collided on unique values
    assert total["unique_violations"] > 0
    with capsys.disabled():
        print(
            f"\n[faults/multiprocess mixed, {layout_name}] {workers.PROCESSES} processes x "
            f"{MIXED_OPS} calls: writes={total['writes']} unique violations={total['unique_violations']} "
            f"update of a deleted pk={total['not_found']} write conflicts={total['conflicts']} "
            f"stored={len(objects)}; check_indexes clean"
        )


@pytest.mark.parametrize("layout_name", list(LAYOUTS))
def test_one_winner_per_unique_value_claimed_by_every_process_at_once(
    layout_name: str, pool: Any, url: str, upstream: redis.Redis
) -> None:
    base = LAYOUTS[layout_name]
    results = run_all(pool, workers.unique_racer, url, base, RACE_ROUNDS)
    model = workers.shared_model(base, upstream)
    for rnd in range(RACE_ROUNDS):
        winners = [w for w, r in enumerate(results) if rnd in r["won"]]
        losers = [w for w, r in enumerate(results) if rnd in r["lost"]]
        assert len(winners) == 1, f"round {rnd}: winners {winners}"
        assert len(losers) == workers.PROCESSES - 1  # each got UniqueViolation
        holder = model.match(code=f"race{rnd}") if rnd % 2 == 0 or rnd == RACE_ROUNDS - 1 else None
        if holder is not None:
            assert holder.writer == winners[0]
    objects = stored_objects(model)
    codes = [d["code"] for d in objects.values() if d.get("code") is not None]
    assert len(codes) == len(set(codes))
    # even rounds: one new object per round, none written by the losers
    assert sorted(pk for pk in objects if pk.startswith("w")) == sorted(
        f"w{results.index(next(r for r in results if rnd in r['won']))}r{rnd}"
        for rnd in range(0, RACE_ROUNDS, 2)
    )
    assert model.check_indexes() == []
    assert index_differences(model) == []


@pytest.mark.parametrize("layout_name", list(LAYOUTS))
def test_update_never_loses_an_increment_across_processes(
    layout_name: str, pool: Any, url: str, upstream: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    base = LAYOUTS[layout_name]
    model = workers.shared_model(base, upstream)
    model({"id": "counter", "flavour": "vanilla", "n": 0, "code": "n0", "writer": -1}).set()
    results = run_all(pool, workers.incrementer, url, base, INCREMENTS)
    total = workers.PROCESSES * INCREMENTS
    counter = model.match_for_pk("counter")
    assert sum(r["increments"] for r in results) == total
    assert counter.n == total
    assert counter.code == f"n{total}"
    assert model.match(code=f"n{total}").id == "counter"
    assert model.count(n=total) == 1
    assert model.count(code=f"n{total - 1}") == 0  # the previous claim was released
    assert model.check_indexes() == []
    assert index_differences(model) == []
    fn_calls = sum(r["fn_calls"] for r in results)
    assert fn_calls > total, "no update ever had to retry: the processes did not contend"
    with capsys.disabled():
        print(
            f"\n[faults/multiprocess increments, {layout_name}] {workers.PROCESSES} processes x "
            f"{INCREMENTS} increments = {counter.n}; fn ran {fn_calls} times (the rest were "
            f"re-reads after a concurrent change), ConcurrentModification retried: "
            f"{sum(r['concurrent_modification'] for r in results)}"
        )
