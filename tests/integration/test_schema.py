"""Indexes that evolve safely: an index is used only once Redis holds it complete.

The deploys of the Operations issue, on every layout and backend (sync and async):
a model with data gets a new index (it must not answer from the new, empty index), an
index changes kind, an index is dropped and declared again later (what was written in
between did not maintain it), the ``Prefix#meta`` hash is lost. Each time the answers
are right before the rebuild (a scan, every row re-checked), ``__strict_performance__``
refuses with ``IndexNotReady`` naming the index and the command, and after
``rebuild_indexes()`` the index answers again. Then rebuilds that run beside writers.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from schematics import types

from redis_schematics import EqualityIndex, IndexNotReady, RangeIndex, StrictPerformanceException, schema
from tests.conftest import full_profile, real_client
from tests.dbstate import key_names

ROWS = [{"pk": f"p{i}", "flavour": "ab"[i % 2], "shop": f"s{i % 3}", "kg": i} for i in range(12)]


def model_of(layout: type, client: Any, indexes: Any, name: str = "Evo", **attrs: Any) -> Any:
    body = {
        "__redis_client__": client,
        "__prefix__": "Evo",
        "__indexes__": indexes,
        "flavour": types.StringType(),
        "shop": types.StringType(),
        "kg": types.IntType(),
        **attrs,
    }
    return type(layout)(name, (layout,), body)


def pks(objs: list[Any]) -> list[str]:
    return sorted(o.pk for o in objs)


def expected(**match: Any) -> list[str]:
    return sorted(r["pk"] for r in ROWS if all(r[k] == v for k, v in match.items()))


def fill(model: Any) -> None:
    model.set_many([model(dict(r)) for r in ROWS])


def test_a_new_index_on_stored_data_is_not_used_until_it_is_built(layout: type, client: Any) -> None:
    before = model_of(layout, client, ("flavour",))
    fill(before)
    after = model_of(layout, client, ("flavour", "shop"))
    # the deploy's bug: the new index is empty, so it must not answer
    assert pks(after.filter(shop="s1")) == expected(shop="s1")
    assert after.count(shop="s1") == len(expected(shop="s1"))
    assert pks(after.filter(shop="s1", flavour="b")) == expected(shop="s1", flavour="b")
    plan = after.explain(shop="s1")
    assert plan.scan
    assert plan.pending == ("EqualityIndex('shop')",)
    assert "EqualityIndex('shop') is not complete" in str(plan)
    assert not after.explain(flavour="a").scan  # the complete index still serves
    # writes maintain the index being built
    after({"pk": "new", "flavour": "a", "shop": "s1", "kg": 99}).set()
    assert "new" in pks(after.filter(shop="s1"))

    strict = model_of(layout, client, ("flavour", "shop"), name="StrictEvo", __strict_performance__=True)
    with pytest.raises(IndexNotReady) as refused:
        strict.filter(shop="s1")
    message = str(refused.value)
    assert "EqualityIndex('shop')" in message
    assert "redis-schematics reindex" in message
    assert refused.value.indexes == ("EqualityIndex('shop')",)
    assert isinstance(refused.value, StrictPerformanceException)
    assert pks(strict.filter(flavour="a", shop="s1")) == sorted([*expected(flavour="a", shop="s1"), "new"])

    assert after.rebuild_indexes() == len(ROWS)
    assert after.check_indexes() == []
    assert not after.explain(shop="s1").scan
    assert after.explain(shop="s1").pending == ()
    assert pks(strict.filter(shop="s1")) == sorted([*expected(shop="s1"), "new"])
    assert strict.count(shop="s1") == len(expected(shop="s1")) + 1


def test_an_index_declared_on_a_model_without_objects_is_complete_at_once(layout: type, client: Any) -> None:
    model = model_of(layout, client, ("flavour",))
    fill(model)
    model.delete_all()
    wider = model_of(layout, client, ("flavour", RangeIndex("kg")), __strict_performance__=True)
    assert wider.filter(kg__gte=0) == []
    fill(wider)
    assert not wider.explain(kg__gte=3).scan
    assert pks(wider.filter(kg__gte=9)) == ["p10", "p11", "p9"]
    assert wider.check_indexes() == []


def test_changing_the_kind_of_an_index_is_a_drop_and_a_build(layout: type, client: Any) -> None:
    fill(model_of(layout, client, (EqualityIndex("kg"),)))
    ranged = model_of(layout, client, (RangeIndex("kg"),))
    assert pks(ranged.filter(kg__gte=10)) == ["p10", "p11"]
    assert ranged.explain(kg__gte=10).pending == ("RangeIndex('kg')",)
    found = {p.kind for p in ranged.check_indexes()}
    assert {"index not complete", "undeclared index", "unknown key"} <= found
    ranged.rebuild_indexes()
    assert ranged.check_indexes() == []
    assert not any("#eq:kg" in k for k in key_names(client))
    assert not ranged.explain(kg__gte=10).scan
    assert [o.pk for o in ranged.query(kg__lt=3).order_by("-kg").all()] == ["p2", "p1", "p0"]


def test_an_index_dropped_then_declared_again_is_built_again(layout: type, client: Any) -> None:
    indexed = model_of(layout, client, ("flavour", "shop"))
    fill(indexed)
    without = model_of(layout, client, ("flavour",))
    without.rebuild_indexes()  # forgets the shop index (and deletes its keys)
    for i in range(4):  # writes that do not maintain a shop index
        without({"pk": f"w{i}", "flavour": "a", "shop": "s1", "kg": i}).set()
    again = model_of(layout, client, ("flavour", "shop"))
    assert pks(again.filter(shop="s1")) == sorted([*expected(shop="s1"), "w0", "w1", "w2", "w3"])
    assert again.explain(shop="s1").scan
    again.rebuild_indexes()
    assert not again.explain(shop="s1").scan
    assert again.count(shop="s1") == len(expected(shop="s1")) + 4


def test_a_lost_meta_hash_makes_queries_scan_until_a_rebuild(layout: type, client: Any) -> None:
    model = model_of(layout, client, ("flavour", RangeIndex("kg")))
    fill(model)
    client.delete("Evo#meta")  # e.g. deleted by hand: the indexes may be anything now
    other = model_of(layout, client, ("flavour", RangeIndex("kg")), name="Fresh")  # a new process
    assert pks(other.filter(flavour="a")) == expected(flavour="a")
    assert other.count() == len(ROWS)
    assert other.explain(flavour="a").scan
    assert not other.explain().members_complete
    kinds = {p.kind for p in other.check_indexes()}
    assert kinds == {"members not complete", "index not complete"}
    other.rebuild_indexes()
    assert other.check_indexes() == []
    assert not other.explain(flavour="a").scan


def test_a_model_without_objects_leaves_no_key_and_starts_complete(layout: type, client: Any) -> None:
    model = model_of(layout, client, ("flavour",), __strict_performance__=True)
    assert model.filter(flavour="a") == []  # a read of an empty model writes nothing
    assert key_names(client) == set()
    fill(model)
    assert "Evo#meta" in key_names(client)
    for pk in [r["pk"] for r in ROWS]:
        model.match_for_pk(pk).delete()
    assert {k for k in key_names(client) if "#once:" not in k} == set()
    client.flushdb()  # then a new life: the first write creates the hash, complete
    fill(model)
    assert pks(model.filter(flavour="b")) == expected(flavour="b")
    assert model.check_indexes() == []


def test_a_rebuild_in_this_process_is_noticed_at_once(layout: type, client: Any) -> None:
    fill(model_of(layout, client, ("flavour",)))
    reader = model_of(layout, client, ("flavour", "shop"), name="Reader")
    builder = model_of(layout, client, ("flavour", "shop"), name="Builder")
    assert pks(reader.filter(shop="s2")) == expected(shop="s2")
    assert reader.explain(shop="s2").scan
    builder.rebuild_indexes()
    assert pks(reader.filter(shop="s2")) == expected(shop="s2")
    assert not reader.explain(shop="s2").scan


def test_a_rebuild_in_another_process_is_noticed_within_the_ttl(
    layout: type, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema, "SCHEMA_TTL", 0.2)
    fill(model_of(layout, client, ("flavour",)))
    reader = model_of(layout, client, ("flavour", "shop"), name="Reader")
    builder = model_of(layout, client, ("flavour", "shop"), name="Builder")
    assert pks(reader.filter(shop="s2")) == expected(shop="s2")
    assert reader.explain(shop="s2").scan
    # as if the reader lived in another process: a rebuild here does not tell it
    schema._LIVE.discard(reader._engine().schema)
    builder.rebuild_indexes()
    assert pks(reader.filter(shop="s2")) == expected(shop="s2")
    assert reader.explain(shop="s2").scan  # what it read less than SCHEMA_TTL ago
    time.sleep(0.3)
    assert pks(reader.filter(shop="s2")) == expected(shop="s2")
    assert not reader.explain(shop="s2").scan


@pytest.mark.parametrize("strict", [False, True], ids=["scan", "strict"])
def test_answers_are_right_at_every_moment_of_a_rebuild_beside_writers(
    layout: type, request: pytest.FixtureRequest, strict: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Objects that no writer touches must be found by every query while the new index
    is built: before (scan, or IndexNotReady when strict), during, after."""
    client = real_client(request.config)
    monkeypatch.setattr(schema, "SCHEMA_TTL", 0.05)
    static = [{"pk": f"st{i}", "flavour": "a", "shop": f"s{i % 2}", "kg": i} for i in range(300)]
    base = model_of(layout, client, ("flavour",))
    base.set_many([base(dict(r)) for r in static])
    declared = ("flavour", "shop")
    builder = model_of(layout, client, declared, name="Builder")
    reader = model_of(layout, client, declared, name="Reader", __strict_performance__=strict)
    writer = model_of(layout, client, declared, name="Writer")
    want = sorted(r["pk"] for r in static if r["shop"] == "s1")
    stop = threading.Event()
    errors: list[BaseException] = []
    seen = {"refused": 0, "answered": 0}

    def write() -> None:
        n = 0
        try:
            while not stop.is_set() and n < 100_000:
                n += 1
                writer({"pk": f"w{n % 40}", "flavour": "b", "shop": f"s{n % 2}", "kg": n}).set()
                if n % 7 == 0:
                    writer.delete_many([f"w{(n * 3) % 40}"])
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                try:
                    got = reader.filter(shop="s1")
                except IndexNotReady:
                    assert strict
                    seen["refused"] += 1
                    continue
                seen["answered"] += 1
                found = {o.pk for o in got}
                assert set(want) <= found, sorted(set(want) - found)[:5]
                assert all(o.shop == "s1" for o in got)
                assert reader.count(shop="s1") >= len(want)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.2)
        builder.rebuild_indexes()
        time.sleep(0.5 if not full_profile() else 2)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[0]
    assert seen["answered"] > 0
    assert builder.check_indexes() == []
    assert not reader.explain(shop="s1").scan
    got = reader.filter(shop="s1")
    assert set(want) <= {o.pk for o in got}
