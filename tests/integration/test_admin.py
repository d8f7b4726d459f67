"""``redis_schematics.admin``: check, repair, reindex, purge-expired, stats, export and
import on every layout and backend, each report checked against what Redis holds."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from schematics import types

from redis_schematics import RangeIndex, SimpleRedisModel, UniqueIndex, admin, upkeep
from tests.dbstate import db_state

ROWS = [{"pk": f"p{i:02}", "flavour": "ab"[i % 2], "kg": i, "code": f"c{i}"} for i in range(30)]


INDEXES = ("flavour", RangeIndex("kg"))


def model_of(layout: type, client: Any, indexes: Any = INDEXES, **attrs: Any) -> Any:
    body = {
        "__redis_client__": client,
        "__prefix__": "Adm",
        "__indexes__": indexes,
        "flavour": types.StringType(),
        "kg": types.IntType(),
        "code": types.StringType(),
        **attrs,
    }
    return type(layout)("Adm", (layout,), body)


def filled(layout: type, client: Any, **attrs: Any) -> Any:
    model = model_of(layout, client, **attrs)
    model.set_many([model(dict(r)) for r in ROWS])
    return model


def progress_log() -> tuple[list[tuple[str, int, int]], Any]:
    calls: list[tuple[str, int, int]] = []
    return calls, lambda phase, done, total: calls.append((phase, done, total))


def test_check_of_a_consistent_model(layout: type, client: Any) -> None:
    model = filled(layout, client)
    calls, progress = progress_log()
    report = admin.check(model, progress)
    assert report.ok
    assert report.problems == []
    assert report.objects == len(ROWS)
    assert ("read", len(ROWS), len(ROWS)) in calls
    assert calls[-1] == ("indexes", 2, 2)
    assert json.loads(json.dumps(report.to_json()))["objects"] == len(ROWS)


def test_check_reports_a_broken_index_and_repair_fixes_it(layout: type, client: Any) -> None:
    model = filled(layout, client)
    client.srem("Adm#eq:flavour:a", "p00")
    client.zadd("Adm#range:kg", {"ghost": 3})
    report = admin.check(model)
    assert not report.ok
    assert report.counts == {"missing entry": 1, "stale entry": 1}
    assert {(p.kind, p.member) for p in report.problems} == {
        ("missing entry", "p00"),
        ("stale entry", "ghost"),
    }

    before = db_state(client)
    dry = admin.repair(model, dry_run=True)
    assert dry.dry_run
    assert dry.repaired == 2
    assert not dry.ok
    assert db_state(client) == before  # a dry run writes nothing

    fixed = admin.repair(model)
    assert fixed.ok
    assert fixed.repaired == 2
    assert fixed.left == []
    assert fixed.found == {"missing entry": 1, "stale entry": 1}
    assert sorted(fixed.complete) == ["EqualityIndex('flavour')", "RangeIndex('kg')"]
    assert admin.check(model).ok


def test_check_confirms_a_problem_before_reporting_it(
    layout: type, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A problem the second read no longer shows (a writer was between two reads of the
    first pass) is not reported; one still there is."""
    model = filled(layout, client)
    client.srem("Adm#eq:flavour:a", "p00")
    client.srem("Adm#eq:flavour:b", "p01")
    real = upkeep.check

    def first_pass_then_fix(engine: Any, progress: Any = None) -> Any:
        found = yield from real(engine)
        client.sadd("Adm#eq:flavour:a", "p00")  # "the writer finished": p00 is right again
        return found

    monkeypatch.setattr(upkeep, "check", first_pass_then_fix)
    report = admin.check(model)
    assert [(p.kind, p.member) for p in report.problems] == [("missing entry", "p01")]


def test_reindex_builds_an_index_declared_after_the_data(layout: type, client: Any) -> None:
    filled(layout, client)
    wider = model_of(layout, client, ("flavour", RangeIndex("kg"), UniqueIndex("code")))
    calls, progress = progress_log()
    dry = admin.reindex(wider, progress, dry_run=True)
    assert dry.command == "reindex"
    assert dry.not_complete == ["UniqueIndex('code')"]
    assert wider.explain(code="c3").scan
    report = admin.reindex(wider, progress)
    assert report.ok
    assert report.repaired == len(ROWS)
    assert report.not_complete == []
    assert "UniqueIndex('code')" in report.complete
    assert ("repair", len(ROWS), len(ROWS)) in calls
    assert not wider.explain(code="c3").scan
    assert wider.match(code="c3").pk == "p03"


def test_repair_leaves_a_unique_collision_reported_and_that_index_not_complete(
    layout: type, client: Any
) -> None:
    plain = model_of(layout, client)
    plain.set_many([plain(dict(r)) for r in ROWS] + [plain({"pk": "dup", "code": "c1", "kg": 1})])
    unique = model_of(layout, client, ("flavour", UniqueIndex("code")))
    report = admin.repair(unique)
    assert not report.ok
    assert {p.kind for p in report.left} == {"duplicate unique value", "index not complete"}
    assert report.not_complete == ["UniqueIndex('code')"]
    assert "EqualityIndex('flavour')" in report.complete
    assert unique.explain(code="c5").scan  # not answered from an index that is wrong
    assert sorted(o.pk for o in unique.filter(code="c1")) == ["dup", "p01"]


def test_purge_expired_counts_then_purges(layout: type, client: Any) -> None:
    model = filled(layout, client, __expire__=1)
    assert admin.purge_expired(model, dry_run=True).expired == 0
    time.sleep(1.1)
    dry = admin.purge_expired(model, dry_run=True)
    assert dry.expired == len(ROWS)
    assert dry.purged == 0
    assert client.zcard("Adm#members") == len(ROWS)
    calls, progress = progress_log()
    done = admin.purge_expired(model, progress, batch_size=7)
    assert done.purged == len(ROWS)
    assert client.zcard("Adm#members") == 0
    assert calls[-1][1] == len(ROWS)
    assert admin.check(model).ok


def test_stats(layout: type, client: Any) -> None:
    model = filled(layout, client, __expire__=3600)
    report = admin.stats(model)
    assert report.objects == len(ROWS)
    by_name = {i.index: i for i in report.indexes}
    flavour = by_name["EqualityIndex('flavour')"]
    assert flavour.complete
    assert flavour.values == 2
    assert flavour.entries == len(ROWS)
    assert sorted(flavour.largest) == [("a", 15), ("b", 15)]
    assert by_name["RangeIndex('kg')"].entries == len(ROWS)
    assert report.ttl_seconds is not None
    lo, mid, hi = report.ttl_seconds
    assert 3500 < lo <= mid <= hi <= 3600
    if report.bytes_per_object is not None:  # MEMORY USAGE: the real server
        assert report.bytes_per_object > 10
        assert report.sampled > 0


def test_export_then_import_round_trips(layout: type, client: Any) -> None:
    model = filled(layout, client)
    out = io.StringIO()
    assert admin.export(model, out).exported == len(ROWS)
    lines = out.getvalue().splitlines()
    assert sorted(json.loads(line)["pk"] for line in lines) == [r["pk"] for r in ROWS]
    model.delete_all()
    bad = ['{"pk": "x1", "kg": "not a number"}', "not json", ""]
    report = admin.import_(model, [*lines[:10], *bad, *lines[10:]], batch_size=7)
    assert report.imported == len(ROWS)
    assert [n for n, _msg in report.refused] == [11, 12]
    assert not report.ok
    assert sorted(o.pk for o in model.all()) == [r["pk"] for r in ROWS]
    assert model.match_for_pk("p03").to_primitive() == json.loads(
        next(line for line in lines if '"p03"' in line)
    )
    assert admin.check(model).ok


def test_import_dry_run_writes_nothing(layout: type, client: Any) -> None:
    model = model_of(layout, client)
    report = admin.import_(model, [json.dumps(r) for r in ROWS], dry_run=True)
    assert report.imported == len(ROWS)
    assert report.ok
    assert model.count() == 0
    assert db_state(client) == {}


def test_the_throttle_spaces_the_work() -> None:
    slept: list[tuple[str, int, int]] = []
    throttle = admin.Throttle(lambda *a: slept.append(a), per_sec=1000)
    started = time.monotonic()
    for done in range(50, 301, 50):
        throttle("import", done, 300)
    assert time.monotonic() - started >= 0.28  # 300 objects at 1000/s
    assert len(slept) == 6
    unthrottled = admin.Throttle(lambda *a: None, per_sec=None)
    started = time.monotonic()
    unthrottled("import", 10**6, 10**6)
    assert time.monotonic() - started < 0.1


def test_check_reports_expired_objects_not_purged(layout: type, client: Any) -> None:
    model = filled(layout, client, __expire__=1, __purge_on_read__=False)
    time.sleep(1.1)
    report = admin.check(model)
    assert [(p.kind, p.detail.split()[0]) for p in report.problems] == [
        ("expired not purged", str(len(ROWS)))
    ]
    admin.purge_expired(model)
    assert admin.check(model).ok


def test_admin_on_a_sharded_model(sync_cluster: Any) -> None:
    base = model_of(SimpleRedisModel, sync_cluster, __shards__=3)
    base.set_many([base(dict(r)) for r in ROWS])
    wider = model_of(SimpleRedisModel, sync_cluster, ("flavour", RangeIndex("kg"), "code"), __shards__=3)
    assert admin.check(wider).counts["index not complete"] == 3  # one per shard
    assert wider.explain(code="c3").scan
    report = admin.reindex(wider)
    assert report.ok
    assert report.repaired == len(ROWS)
    assert not wider.explain(code="c3").scan
    assert admin.check(wider).ok
    stats = admin.stats(wider)
    assert stats.objects == len(ROWS)
    assert {i.index: i.entries for i in stats.indexes}["EqualityIndex('code')"] == len(ROWS)
