"""Every public method, on every layout and backend (fakeredis/real, bytes/str replies).

Round trips are counted by wrapping the client's ``execute_command`` (one command = one
round trip) and its pipelines' ``execute`` (one batch = one round trip), as peewee's
``assertQueryCount`` counts queries.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis
from schematics import types
from schematics.types import BaseType

from redis_schematics import MultipleFound, NotFound, Plan, Query, patch_json
from redis_schematics.engine import Engine
from redis_schematics.exceptions import InvalidPrimaryKey, StrictPerformanceException
from redis_schematics.write import CHUNK
from tests.engine import stored
from tests.models import ice_cream
from tests.recorder import Recorder

Factory = Callable[..., Any]
NOW = datetime(2026, 1, 1, 12, 0, 0)


def rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    """n IceCream rows with a spread of values (and some None)."""
    flavours = ["vanilla", "chocolate", "mint", None]
    out = []
    for i in range(start, start + n):
        out.append(
            {
                "id": f"ic{i:04d}",
                "flavour": flavours[i % 4],
                "amount_kg": None if i % 7 == 6 else i % 5,
                "price": round(1.5 + (i % 3), 2),
                "best_before": NOW + timedelta(days=i % 6) if i % 5 else None,
                "vegan": i % 2 == 0,
                "code": f"C{i}",
            }
        )
    return rows_sorted(out)


def rows_sorted(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda r: r["id"])


@pytest.fixture(params=[True, False], ids=["indexed", "unindexed"])
def indexed(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def model(layout: type, client: Any, indexed: bool) -> Any:
    return ice_cream(layout, client, indexed=indexed)


@pytest.fixture
def filled(model: Any) -> Any:
    model.set_many([model(r) for r in rows(24)])
    return model


@pytest.fixture
def make(layout: type, client: Any) -> Factory:
    def factory(name: str, **attrs: Any) -> Any:
        body: dict[str, Any] = {"__redis_client__": client}
        body.update(attrs)
        return type(layout)(name, (layout,), body)

    return factory


def ids(objs: Any) -> list[str]:
    return [o.id for o in objs]


def oracle(pred: Callable[[dict[str, Any]], bool], n: int = 24) -> list[str]:
    return [r["id"] for r in rows(n) if pred(r)]


def consistent(model: Any) -> None:
    assert model.check_indexes() == []


# -- instance methods ------------------------------------------------------------------------------


def test_set_returns_self_and_stores(model: Any) -> None:
    obj = model({"id": "1", "flavour": "vanilla", "amount_kg": 3})
    assert obj.set() is obj
    assert obj.pk == "1"  # inferred from id
    got = model.match_for_pk("1")
    assert got.to_primitive() == obj.to_primitive()
    consistent(model)


def test_set_replaces_and_moves_index_entries(model: Any) -> None:
    obj = model({"id": "1", "flavour": "vanilla", "amount_kg": 3, "code": "A"}).set()
    obj.flavour = "mint"
    obj.amount_kg = 9
    obj.code = "B"
    obj.set()
    assert model.count() == 1
    assert ids(model.filter(flavour="vanilla")) == []
    assert ids(model.filter(flavour="mint")) == ["1"]
    assert ids(model.filter(amount_kg__gt=5)) == ["1"]
    assert ids(model.filter(code="A")) == []
    assert model.match(code="B").id == "1"
    consistent(model)


def test_key(model: Any) -> None:
    assert model({"id": "1"}).key == "IceCream:1"
    assert model({"id": "a:b"}).key == "IceCream:a:b"
    with pytest.raises(InvalidPrimaryKey):
        _ = model({"flavour": "no pk yet"}).key


def test_refresh(model: Any) -> None:
    mine = model({"id": "1", "flavour": "vanilla", "amount_kg": 1}).set()
    theirs = model.match_for_pk("1")
    theirs.flavour = "mint"
    theirs.set()
    mine.amount_kg = 100  # local, unsaved
    assert mine.refresh() is mine
    assert (mine.flavour, mine.amount_kg) == ("mint", 1)
    theirs.delete()
    with pytest.raises(NotFound):
        mine.refresh()


def test_delete(model: Any) -> None:
    obj = model({"id": "1", "flavour": "vanilla", "amount_kg": 1, "code": "X"}).set()
    model({"id": "2", "flavour": "vanilla"}).set()
    assert obj.delete() is True
    assert obj.delete() is False
    with pytest.raises(NotFound):
        model.match_for_pk("1")
    assert ids(model.all()) == ["2"]
    model({"id": "3", "code": "X"}).set()  # the unique value is free again
    consistent(model)


# -- reads -----------------------------------------------------------------------------------------


def test_match_for_pk(filled: Any) -> None:
    first = rows(24)[0]
    obj = filled.match_for_pk(first["id"])
    assert obj.id == first["id"]
    assert obj.flavour == first["flavour"]
    with pytest.raises(NotFound):
        filled.match_for_pk("missing")
    assert filled.match_for_pk(first["id"].encode()).id == first["id"]  # bytes pk


def test_match_for_pks(filled: Any) -> None:
    found = filled.match_for_pks(["ic0003", "nope", "ic0001", "ic0003"])
    assert [o.id if o else None for o in found] == ["ic0003", None, "ic0001", "ic0003"]
    assert filled.match_for_pks([]) == []


def test_match(filled: Any) -> None:
    assert filled.match(id="ic0005").id == "ic0005"
    assert filled.match(pk="ic0005").id == "ic0005"
    assert filled.match(id="ic0005", flavour="chocolate").id == "ic0005"
    with pytest.raises(NotFound):
        filled.match(id="ic0005", flavour="vanilla")  # pk found, other filter fails
    assert filled.match(code="C7").id == "ic0007"
    with pytest.raises(MultipleFound):
        filled.match(flavour="vanilla")
    with pytest.raises(NotFound):
        filled.match(flavour="pistachio")


def test_match_for_values(filled: Any) -> None:
    assert filled.match_for_values(code="C3").id == "ic0003"
    assert filled.match_for_values(flavour="mint", amount_kg=2, price=2.5).id == "ic0022"
    with pytest.raises(MultipleFound):
        filled.match_for_values(vegan=True)
    with pytest.raises(NotFound):
        filled.match_for_values(amount_kg__gt=100)


def test_all_is_sorted_by_pk(model: Any) -> None:
    data = rows(24)
    model.set_many([model(r) for r in reversed(data)])
    assert ids(model.all()) == [r["id"] for r in data]
    assert [o.to_primitive() for o in model.all()] == [
        model(dict(r, pk=r["id"])).to_primitive() for r in data
    ]


FILTERS: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ({"flavour": "vanilla"}, lambda r: r["flavour"] == "vanilla"),
    ({"flavour": None}, lambda r: r["flavour"] is None),
    ({"flavour__not": "vanilla"}, lambda r: r["flavour"] != "vanilla"),
    ({"flavour__in": ["mint", None]}, lambda r: r["flavour"] in ("mint", None)),
    ({"flavour__exclude": ["mint", None]}, lambda r: r["flavour"] not in ("mint", None)),
    ({"amount_kg__gt": 2}, lambda r: r["amount_kg"] is not None and r["amount_kg"] > 2),
    ({"amount_kg__gte": 2}, lambda r: r["amount_kg"] is not None and r["amount_kg"] >= 2),
    ({"amount_kg__lt": 2}, lambda r: r["amount_kg"] is not None and r["amount_kg"] < 2),
    ({"amount_kg__lte": "2"}, lambda r: r["amount_kg"] is not None and r["amount_kg"] <= 2),
    ({"amount_kg": None}, lambda r: r["amount_kg"] is None),
    ({"amount_kg__not": 0}, lambda r: r["amount_kg"] != 0),
    ({"price__gte": 2.5}, lambda r: r["price"] >= 2.5),
    (
        {"best_before__gte": (NOW + timedelta(days=3)).isoformat()},
        lambda r: r["best_before"] is not None and r["best_before"] >= NOW + timedelta(days=3),
    ),
    (
        {"best_before__lt": "2026-01-03T12:00:00+00:00"},
        lambda r: r["best_before"] is not None and r["best_before"] < NOW + timedelta(days=2),
    ),
    ({"vegan": "true", "flavour": "vanilla"}, lambda r: r["vegan"] and r["flavour"] == "vanilla"),
    (
        {"vegan": False, "amount_kg__in": [1, 3], "price__lt": 3},
        lambda r: not r["vegan"] and r["amount_kg"] in (1, 3) and r["price"] < 3,
    ),
    ({"code__in": ["C1", "C2", "nope"]}, lambda r: r["code"] in ("C1", "C2")),
    (
        {"code__exclude": ["C1"], "flavour": "chocolate"},
        lambda r: r["code"] != "C1" and r["flavour"] == "chocolate",
    ),
    (
        {"amount_kg__gt": 1, "amount_kg__lt": 4},
        lambda r: r["amount_kg"] is not None and 1 < r["amount_kg"] < 4,
    ),
]


@pytest.mark.parametrize(("kwargs", "pred"), FILTERS, ids=[str(f[0]) for f in FILTERS])
def test_filter_and_count(
    filled: Any, kwargs: dict[str, Any], pred: Callable[[dict[str, Any]], bool]
) -> None:
    expected = oracle(pred)
    assert expected, "the test data must hit this filter"
    assert ids(filled.filter(**kwargs)) == expected
    assert filled.count(**kwargs) == len(expected)
    assert sorted(ids(filled.query(**kwargs))) == expected  # iteration streams, in storage order


def test_filter_without_arguments_is_all(filled: Any) -> None:
    assert ids(filled.filter()) == ids(filled.all())
    assert filled.count() == 24


def test_delete_filter(filled: Any) -> None:
    expected = oracle(lambda r: r["flavour"] == "mint" or r["flavour"] is None)
    assert filled.delete_filter(flavour__in=["mint", None]) == len(expected)
    assert ids(filled.all()) == oracle(lambda r: r["flavour"] in ("vanilla", "chocolate"))
    assert filled.delete_filter(flavour="mint") == 0
    consistent(filled)


def test_delete_all(filled: Any, client: Any) -> None:
    assert filled.delete_all() == 24
    assert filled.all() == []
    assert filled.count() == 0
    assert filled.delete_all() == 0
    # No index or members key left behind; only the deletes' idempotency markers, which
    # expire within 10 s (write/commit.py: token_key).
    left = [k.decode() if isinstance(k, bytes) else k for k in client.scan_iter()]
    assert [k for k in left if not k.startswith("IceCream#once:")] == []
    assert all(0 < client.pttl(k) <= 10_000 for k in left)


# -- query -----------------------------------------------------------------------------------------


def sort_key(field: str) -> Callable[[dict[str, Any]], Any]:
    return lambda r: (r[field] is not None, r[field] if r[field] is not None else 0)


def ordered(data: list[dict[str, Any]], *spec: str) -> list[str]:
    out = sorted(data, key=lambda r: r["id"])
    for s in reversed(spec):
        desc = s.startswith("-")
        out.sort(key=sort_key(s.lstrip("-")), reverse=desc)
    return [r["id"] for r in out]


@pytest.mark.parametrize(
    "spec",
    [
        ("amount_kg",),
        ("-amount_kg",),
        ("-best_before", "amount_kg"),
        ("price", "-id"),
        ("flavour",),
        ("-vegan", "price"),
    ],
)
def test_order_by(filled: Any, spec: tuple[str, ...]) -> None:
    data = rows(24)
    assert ids(filled.query().order_by(*spec)) == ordered(data, *spec)
    vanilla = [r for r in data if r["flavour"] == "vanilla"]
    assert ids(filled.query(flavour="vanilla").order_by(*spec)) == ordered(vanilla, *spec)


@pytest.mark.parametrize(("offset", "limit"), [(0, 5), (3, 4), (10, None), (0, 0), (22, 10), (30, 5)])
@pytest.mark.parametrize("spec", [(), ("-amount_kg",), ("best_before", "-price")])
def test_offset_and_limit(filled: Any, offset: int, limit: int | None, spec: tuple[str, ...]) -> None:
    data = rows(24)
    expected = ordered(data, *spec)
    stop = None if limit is None else offset + limit
    q = filled.query().order_by(*spec).offset(offset).limit(limit)
    assert ids(q.all()) == expected[offset:stop]
    assert ids(q) == expected[offset:stop]
    assert q.count() == len(expected[offset:stop])
    sub = [r for r in data if r["vegan"]]
    q2 = filled.query(vegan=True).order_by(*spec).offset(offset).limit(limit)
    assert ids(q2.all()) == ordered(sub, *spec)[offset:stop]


def test_first(filled: Any) -> None:
    assert (
        filled.query(flavour="mint").order_by("-amount_kg").first().id
        == ordered([r for r in rows(24) if r["flavour"] == "mint"], "-amount_kg")[0]
    )
    assert filled.query(flavour="pistachio").first() is None
    assert filled.query().first().id == "ic0000"


def test_query_count_and_delete(filled: Any) -> None:
    q = filled.query(vegan=True, amount_kg__gte=1)
    expected = oracle(lambda r: r["vegan"] and r["amount_kg"] is not None and r["amount_kg"] >= 1)
    assert q.count() == len(expected)
    assert q.delete() == len(expected)
    assert q.count() == 0
    assert filled.count() == 24 - len(expected)
    consistent(filled)


def test_query_delete_respects_order_and_limit(filled: Any) -> None:
    q = filled.query(flavour="vanilla").order_by("-amount_kg").limit(2)
    doomed = ids(q.all())
    assert q.delete() == 2
    remaining = set(ids(filled.all()))
    assert not remaining & set(doomed)
    assert len(remaining) == 22


def test_query_is_lazy_and_reusable(filled: Any, client: Any) -> None:
    recorder = Recorder(client)
    q = filled.query(flavour="vanilla").order_by("amount_kg").limit(3)
    assert recorder.round_trips == 0  # building a query touches nothing
    first = ids(q)
    assert ids(q) == first  # iterating twice runs twice, same answer
    assert isinstance(q, Query)


def test_iteration_is_lazy(filled: Any) -> None:
    it = iter(filled.query(flavour="vanilla"))
    assert isinstance(it, Iterator)
    first = next(it)
    assert first.flavour == "vanilla"
    rest = ids(it)
    assert sorted([first.id, *rest]) == oracle(lambda r: r["flavour"] == "vanilla")


def test_explain(filled: Any, indexed: bool) -> None:
    p = filled.explain(flavour="vanilla", price__gt=1)
    assert isinstance(p, Plan)
    assert p == filled.query(flavour="vanilla", price__gt=1).explain()
    assert p.scan is (not indexed)
    assert [c.field for c in p.residual] == (["price"] if indexed else ["flavour", "price"])


def test_streaming_iteration_loads_in_chunks(
    layout: type, backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ice_cream(layout, backend)
    n = CHUNK * 2 + 37
    model.set_many(
        [model({"id": f"{i:05d}", "flavour": "v" if i % 2 else "w", "amount_kg": i}) for i in range(n)]
    )
    batches: list[int] = []
    load = Engine.load

    def spy(self: Engine, pks: Any, only: Any = None) -> Any:
        batches.append(len(pks))
        return load(self, pks, only)

    monkeypatch.setattr(Engine, "load", spy)
    for query in (model.query(), model.query(flavour="v")):
        batches.clear()
        it = iter(query)
        assert next(it).id
        assert len(batches) == 1  # the first object comes after the first batch only
        seen = 1 + sum(1 for _ in it)
        assert seen == (n if not query.conditions else n // 2)
        assert max(batches) <= CHUNK
        assert len(batches) >= seen // CHUNK + (1 if seen % CHUNK else 0)
    assert model.count(flavour="v") == n // 2
    assert model.query(amount_kg__gte=100).order_by("-amount_kg").limit(3).all()[0].amount_kg == n - 1


# -- bulk ------------------------------------------------------------------------------------------


def test_set_many_and_delete_many(model: Any) -> None:
    objs = [model(r) for r in rows(10)]
    model.set_many(objs)
    assert model.count() == 10
    assert model.delete_many([objs[0], objs[1]]) == 2
    assert model.delete_many(["ic0002", "ic0003", "missing"]) == 2
    assert model.delete_many([objs[4], "ic0004", "ic0005"]) == 2  # the same object twice
    assert model.delete_many([]) == 0
    assert ids(model.all()) == [r["id"] for r in rows(10)[6:]]
    consistent(model)


def test_set_many_last_one_wins(model: Any) -> None:
    model.set_many([model({"id": "1", "flavour": "a"}), model({"id": "1", "flavour": "b"})])
    assert model.count() == 1
    assert model.match_for_pk("1").flavour == "b"
    assert ids(model.filter(flavour="a")) == []
    consistent(model)


def test_set_many_updates_existing(model: Any) -> None:
    model.set_many([model(r) for r in rows(6)])
    changed = [model(dict(r, flavour="mint")) for r in rows(6)]
    model.set_many(changed)
    assert model.count(flavour="mint") == 6
    consistent(model)


def test_set_many_more_than_a_chunk(layout: type, backend: Any) -> None:
    model = ice_cream(layout, backend)
    n = CHUNK + 20
    model.set_many([model({"id": str(i), "flavour": "v", "code": f"K{i}"}) for i in range(n)])
    assert model.count() == n
    assert model.count(flavour="v") == n
    assert len(model.match_for_pks([str(i) for i in range(n)])) == n
    assert model.delete_many([str(i) for i in range(n)]) == n
    assert model.count() == 0


# -- pipeline= -------------------------------------------------------------------------------------


@pytest.mark.parametrize("transaction", [True, False])
def test_writes_queued_on_a_user_pipeline(model: Any, client: Any, transaction: bool) -> None:
    model.set_many([model(r) for r in rows(4)])
    pipe = client.pipeline(transaction=transaction)
    model({"id": "new", "flavour": "mint", "amount_kg": 9}).set(pipeline=pipe)
    model.set_many([model({"id": "n2", "flavour": "mint"}), model({"id": "n3"})], pipeline=pipe)
    assert model.match_for_pk("ic0000").delete(pipeline=pipe) is True
    assert model.delete_many(["ic0001", "missing"], pipeline=pipe) == 1
    pipe.set("user-key", "1")  # the user's own command, in the same pipeline
    # nothing has happened yet
    assert model.count() == 4
    assert ids(model.filter(flavour="mint")) == oracle(lambda r: r["flavour"] == "mint", 4)
    with pytest.raises(NotFound):
        model.match_for_pk("new")
    pipe.execute()
    assert ids(model.all()) == ["ic0002", "ic0003", "n2", "n3", "new"]
    assert ids(model.filter(flavour="mint")) == sorted(
        ["n2", "new", *oracle(lambda r: r["flavour"] == "mint" and r["id"] > "ic0001", 4)]
    )
    assert client.get("user-key") in (b"1", "1")
    client.delete("user-key")
    consistent(model)


def test_pipelined_write_refuses_a_concurrent_change(model: Any, client: Any) -> None:
    model({"id": "1", "flavour": "vanilla"}).set()
    pipe = client.pipeline()
    model({"id": "1", "flavour": "queued"}).set(pipeline=pipe)
    model({"id": "1", "flavour": "meanwhile"}).set()  # someone else writes in between
    with pytest.raises(redis.ResponseError, match="RSGUARD"):
        pipe.execute()
    assert model.match_for_pk("1").flavour == "meanwhile"
    assert ids(model.filter(flavour="queued")) == []
    consistent(model)


def test_discarded_pipeline_writes_nothing(model: Any, client: Any) -> None:
    pipe = client.pipeline()
    model({"id": "1", "flavour": "vanilla"}).set(pipeline=pipe)
    pipe.reset()
    assert model.count() == 0
    assert list(client.scan_iter()) == []


# -- settings --------------------------------------------------------------------------------------


def expire_now(model: Any, client: Any, pk: str) -> None:
    """Move the object's deadline into the past (what time would do)."""
    client.zadd(model._engine().keys.members(), {pk: 1})


def test_expired_objects_are_invisible(layout: type, client: Any, indexed: bool) -> None:
    model = ice_cream(layout, client, indexed=indexed, expire=100)
    model.set_many([model(r) for r in rows(8)])
    dead = ["ic0001", "ic0004"]
    for pk in dead:
        expire_now(model, client, pk)
    alive = [r["id"] for r in rows(8) if r["id"] not in dead]
    assert ids(model.all()) == alive
    assert model.count() == 6
    for pk in dead:
        with pytest.raises(NotFound):
            model.match_for_pk(pk)
    assert [o is None for o in model.match_for_pks([*dead, "ic0000"])] == [True, True, False]
    vanilla = oracle(lambda r: r["flavour"] == "vanilla" and r["id"] not in dead, 8)
    assert ids(model.filter(flavour="vanilla")) == vanilla
    assert model.count(flavour="vanilla") == len(vanilla)
    assert ids(model.query().order_by("-amount_kg")) == ordered(
        [r for r in rows(8) if r["id"] in alive], "-amount_kg"
    )
    with pytest.raises(NotFound):
        model.match(code="C1")
    assert model.delete_many(dead) == 0  # nothing alive to delete
    model.purge_expired()
    assert model.check_indexes() == []
    assert model.count() == 6


def test_expired_object_can_be_set_again(layout: type, client: Any) -> None:
    model = ice_cream(layout, client, expire=100)
    model({"id": "1", "flavour": "vanilla", "code": "X"}).set()
    expire_now(model, client, "1")
    model({"id": "1", "flavour": "mint", "code": "X"}).set()
    assert model.match_for_pk("1").flavour == "mint"
    assert ids(model.filter(flavour="vanilla")) == []
    assert ids(model.filter(flavour="mint")) == ["1"]
    assert model.match(code="X").id == "1"
    model.purge_expired()
    assert model.check_indexes() == []


def test_expired_object_does_not_hold_its_unique_value(layout: type, client: Any) -> None:
    """The expired owner is NotFound everywhere, so its value must be free."""
    model = ice_cream(layout, client, expire=100)
    model({"id": "2", "code": "Y"}).set()
    expire_now(model, client, "2")
    with pytest.raises(NotFound):
        model.match_for_pk("2")
    model({"id": "3", "code": "Y"}).set()
    assert model.match(code="Y").id == "3"
    model.purge_expired()
    assert model.check_indexes() == []


def test_expire_in_real_time(layout: type, backend: Any) -> None:
    model = ice_cream(layout, backend, expire=1)
    forever = ice_cream(layout, backend, prefix="Forever")
    model({"id": "1", "flavour": "vanilla"}).set()
    forever({"id": "1", "flavour": "vanilla"}).set()
    assert model.count() == 1
    time.sleep(1.2)
    with pytest.raises(NotFound):
        model.match_for_pk("1")
    assert model.all() == []
    assert model.count() == 0
    assert model.filter(flavour="vanilla") == []
    assert model.count(flavour="vanilla") == 0
    assert forever.match_for_pk("1").flavour == "vanilla"
    model.purge_expired()
    assert model.check_indexes() == []


@pytest.mark.parametrize("attr", ["__unique_together__", "__unique_args__"])
def test_unique_together(make: Factory, client: Any, attr: str) -> None:
    model = make(
        "Batch",
        pk=types.StringType(),
        flavour=types.StringType(),
        amount_kg=types.IntType(),
        note=types.StringType(),
        **{attr: ("flavour", "amount_kg")},
    )
    obj = model({"flavour": "vanilla", "amount_kg": 42, "note": "a"}).set()
    assert obj.pk == "vanilla.42"
    assert obj.key == "Batch:vanilla.42"
    model({"flavour": "vanilla", "amount_kg": 42, "note": "b"}).set()  # same pk: replaces
    assert model.count() == 1
    assert model.match_for_pk("vanilla.42").note == "b"
    recorder = Recorder(client)
    assert recorder.count(lambda: model.match(flavour="vanilla", amount_kg=42)) == 1  # by pk
    assert model.match(flavour="vanilla", amount_kg="42").note == "b"
    assert model.match(flavour="vanilla").note == "b"  # by values
    with pytest.raises(NotFound):
        model.match(flavour="vanilla", amount_kg=41)


def test_prefix(make: Factory, client: Any) -> None:
    fields = {"id": types.StringType(), "flavour": types.StringType()}
    gelato = make("IceCream", __prefix__="gelato", __indexes__=("flavour",), **fields)
    plain = make("IceCream", __indexes__=("flavour",), **fields)
    gelato({"id": "1", "flavour": "vanilla"}).set()
    plain({"id": "1", "flavour": "mint"}).set()
    assert gelato({"id": "1"}).key == "gelato:1"
    assert gelato.match_for_pk("1").flavour == "vanilla"
    assert plain.match_for_pk("1").flavour == "mint"
    assert ids(gelato.filter(flavour="mint")) == []
    names = {k.decode() if isinstance(k, bytes) else k for k in client.scan_iter()}
    assert {n for n in names if n.startswith("gelato")}
    assert all(n.startswith(("gelato", "IceCream")) for n in names)
    assert gelato.delete_all() == 1
    assert plain.count() == 1


def test_strict_performance(layout: type, client: Any) -> None:
    model = ice_cream(layout, client, strict_performance=True)
    model.set_many([model(r) for r in rows(8)])
    with pytest.raises(StrictPerformanceException, match=r"IceCream\.price"):
        model.filter(price__gt=2)
    with pytest.raises(StrictPerformanceException):
        model.count(price=1.5)
    with pytest.raises(StrictPerformanceException):
        model.match_for_values(price=1.5)
    with pytest.raises(StrictPerformanceException):
        model.delete_filter(price=1.5)
    assert model.count() == 8  # nothing was deleted
    assert ids(model.filter(flavour="vanilla", price__gt=2)) == oracle(
        lambda r: r["flavour"] == "vanilla" and r["price"] > 2, 8
    )
    assert len(model.all()) == 8
    assert model.match(id="ic0003").id == "ic0003"  # by pk
    assert model.count(amount_kg__gte=1) == len(oracle(lambda r: (r["amount_kg"] or 0) >= 1, 8))


def test_custom_serializer(make: Factory, client: Any) -> None:
    calls = {"dump": 0, "load": 0}

    def serializer(obj: Any) -> str:
        calls["dump"] += 1
        return "v2|" + json.dumps(obj, sort_keys=True)

    def deserializer(dump: Any) -> Any:
        calls["load"] += 1
        text = dump.decode() if isinstance(dump, bytes) else dump
        assert text.startswith("v2|"), text
        return json.loads(text[3:])

    model = make(
        "Custom",
        __serializer__=staticmethod(serializer),
        __deserializer__=staticmethod(deserializer),
        __indexes__=("flavour", "amount_kg"),
        id=types.StringType(),
        flavour=types.StringType(),
        amount_kg=types.IntType(),
        tags=types.ListType(types.StringType()),  # field layouts serialize compound values
    )
    model({"id": "1", "flavour": "vanilla", "amount_kg": 3, "tags": ["a"]}).set()
    model({"id": "2", "flavour": "mint", "amount_kg": 5, "tags": []}).set()
    obj = model.match_for_pk("1")
    obj.amount_kg = 4
    obj.set()  # replacing reads the stored payload through the deserializer
    assert calls["dump"] >= 3
    assert calls["load"] >= 1
    store = model._engine()
    if store.layout.name in ("simple", "hash"):
        raw = stored(model, ["1"])[0][0]
        assert (raw.decode() if isinstance(raw, bytes) else raw).startswith("v2|")
    assert model.match(flavour="vanilla").amount_kg == 4
    assert model.match_for_pk("1").tags == ["a"]
    assert ids(model.filter(amount_kg__gt=3)) == ["1", "2"]
    assert model.check_indexes() == []
    assert model.delete_filter(flavour="mint") == 1


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __json__(self) -> dict[str, int]:
        return {"cents": self.cents}


class MoneyType(BaseType):
    """A field whose primitive is a Money object: JSON needs patch_json() for it."""

    def to_native(self, value: Any, context: Any = None) -> Any:
        return Money(value["cents"]) if isinstance(value, dict) else value

    def to_primitive(self, value: Any, context: Any = None) -> Any:
        return value


def test_patch_json(make: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json.JSONEncoder, "default", json.JSONEncoder.default)  # restored after
    model = make("Wallet", id=types.StringType(), money=MoneyType())
    with pytest.raises(TypeError):
        json.dumps(Money(1))
    with pytest.raises(TypeError):
        model({"id": "1", "money": Money(5)}).set()
    assert model.count() == 0
    patch_json()
    patch_json()  # idempotent
    assert json.loads(json.dumps({"m": Money(7)})) == {"m": {"cents": 7}}
    with pytest.raises(TypeError):
        json.dumps(object())  # objects without __json__ still fail
    model({"id": "1", "money": Money(5)}).set()
    assert model.match_for_pk("1").money.cents == 5


# -- round trips -----------------------------------------------------------------------------------


@pytest.fixture
def counted(layout: type, client: Any) -> tuple[Any, Recorder]:
    model = ice_cream(layout, client)
    model.set_many([model(r) for r in rows(24)])
    model.filter(flavour="vanilla", amount_kg__gte=0)  # load both scripts before counting
    model({"id": "warm", "flavour": "x"}).set()
    model.delete_many(["warm"])
    return model, Recorder(client)


def test_round_trips_of_reads(counted: tuple[Any, Recorder]) -> None:
    model, rec = counted
    assert rec.count(lambda: model.match_for_pk("ic0001")) == 1
    assert rec.count(lambda: model.match(id="ic0001")) == 1
    assert rec.count(lambda: model.match_for_pks([f"ic{i:04d}" for i in range(20)])) == 1
    assert rec.count(lambda: model({"id": "ic0001"}).refresh()) == 1
    assert rec.count(model.count) == 1
    assert rec.count(lambda: model.count(flavour="vanilla", amount_kg__gte=1)) == 1
    assert rec.count(lambda: model.filter(flavour="vanilla")) == 2  # SMEMBERS + one MGET/HMGET
    assert rec.count(lambda: model.filter(flavour="vanilla", vegan=True)) == 2  # script + one read
    assert rec.count(lambda: model.query(amount_kg__gte=1).order_by("-amount_kg").limit(3).all()) == 2
    assert rec.count(lambda: model.explain(flavour="vanilla")) == 0


def test_round_trips_of_writes(counted: tuple[Any, Recorder]) -> None:
    model, rec = counted
    assert rec.count(lambda: model({"id": "new", "flavour": "mint"}).set()) == 1
    assert rec.count(lambda: model({"id": "new", "flavour": "vanilla"}).set()) == 2
    assert rec.count(lambda: model.set_many([model({"id": f"b{i}"}) for i in range(50)])) == 1
    assert rec.count(lambda: model({"id": "new"}).delete()) == 2
    assert rec.count(lambda: model.delete_many([f"b{i}" for i in range(50)])) == 2


def test_round_trips_of_expiring_reads(layout: type, client: Any) -> None:
    model = ice_cream(layout, client, expire=100)
    model({"id": "1", "flavour": "vanilla"}).set()
    model.filter(flavour="vanilla")
    rec = Recorder(client)
    assert rec.count(lambda: model.match_for_pk("1")) == 1  # payload, deadline and TIME together
    assert rec.count(lambda: model.match_for_pks(["1", "2"])) == 1


def test_counts_of_a_sharded_model_ask_every_shard_in_one_round_trip(layout: type, backend: Any) -> None:
    model = ice_cream(layout, backend, shards=3, indexes=("flavour", "amount_kg"))
    model.set_many(
        [model({"id": str(i), "flavour": "a" if i % 2 else "b", "amount_kg": i}) for i in range(30)]
    )
    model.count(flavour="a", amount_kg__lt=10)  # loads the query script
    rec = Recorder(backend)
    assert rec.count(lambda: model.count(flavour="a")) == 1
    assert rec.count(lambda: model.count(flavour="a", amount_kg__lt=10)) == 1
    assert (model.count(flavour="a"), model.count(flavour="a", amount_kg__lt=10)) == (15, 5)


def test_indexed_filter_cost_does_not_grow_with_the_model(layout: type, backend: Any) -> None:
    model = ice_cream(layout, backend)
    model.set_many([model({"id": f"hit{i}", "flavour": "rare", "amount_kg": i}) for i in range(5)])
    model.filter(flavour="rare")  # loads the read script (field layouts)
    model.count(flavour="rare", amount_kg__lt=3)  # loads the query script
    rec = Recorder(backend)
    costs = []
    for size in (0, 200, 1200):
        model.set_many([model({"id": f"other{i}", "flavour": "common", "amount_kg": i}) for i in range(size)])
        rec.reset()
        assert len(model.filter(flavour="rare")) == 5
        assert model.count(flavour="rare", amount_kg__lt=3) == 3
        assert model.query(flavour="rare").order_by("-amount_kg").first().id == "hit4"
        costs.append(rec.round_trips)
        loaded = sum(argc for cmd, argc in rec.commands if cmd in ("MGET", "HMGET"))
        assert loaded <= 5 + 5 + 1 + 3  # only candidates are loaded (plus HMGET's key)
    assert costs[0] == costs[1] == costs[2]
