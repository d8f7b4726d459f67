"""Integer pks with indexes, on every layout and backend.

docs/layouts.md#memory recommends integer pks to save memory: Redis then keeps small
all-integer sets (the members set, equality sets) as intsets, a different encoding of the
same set. These tests check that every query, count, delete and check_indexes gives the
same answers as with string pks, and (on a real server) that the sets really are intsets.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from schematics import types

from tests.conftest import real_client

UTC = dt.timezone.utc
PKS = [0, 1, 2, 3, 7, 10, 99, -5, 2**40, 2**62]
FLAVOURS = ["vanilla", "mint", "fig"]


def scoop(layout: type, client: Any) -> Any:
    return type(layout)(
        "Scoop",
        (layout,),
        {
            "__redis_client__": client,
            "__indexes__": ("flavour", "vegan", "amount_kg", "best_before"),
            "id": types.IntType(required=True),
            "flavour": types.StringType(),
            "amount_kg": types.IntType(),
            "best_before": types.DateTimeType(),
            "vegan": types.BooleanType(),
        },
    )


@pytest.fixture
def model(layout: type, backend: Any) -> Any:
    return scoop(layout, backend)


def record(i: int, pk: int) -> dict[str, Any]:
    return {
        "id": pk,
        "flavour": FLAVOURS[i % 3],
        "amount_kg": i * 10,
        "best_before": dt.datetime(2026, 1, 1 + i, tzinfo=UTC),
        "vegan": i % 2 == 0,
    }


@pytest.fixture
def stored(model: Any) -> dict[int, dict[str, Any]]:
    records = {pk: record(i, pk) for i, pk in enumerate(PKS)}
    model.set_many([model(r) for r in records.values()])
    return records


def ids(objs: Any) -> list[int]:
    return sorted(o.id for o in objs)


def expect(records: dict[int, dict[str, Any]], test: Any) -> list[int]:
    return sorted(pk for pk, r in records.items() if test(r))


def test_queries_answer_as_with_string_pks(model: Any, stored: dict[int, dict[str, Any]]) -> None:
    assert ids(model.all()) == sorted(PKS)
    assert model.count() == len(PKS)
    assert ids(model.filter(flavour="mint")) == expect(stored, lambda r: r["flavour"] == "mint")
    assert ids(model.filter(vegan=True, amount_kg__gte=30)) == expect(
        stored, lambda r: r["vegan"] and r["amount_kg"] >= 30
    )
    assert ids(model.filter(flavour__not="fig")) == expect(stored, lambda r: r["flavour"] != "fig")
    cutoff = dt.datetime(2026, 1, 5, tzinfo=UTC)
    assert ids(model.filter(best_before__lt=cutoff)) == expect(stored, lambda r: r["best_before"] < cutoff)
    assert model.count(flavour="vanilla") == len(expect(stored, lambda r: r["flavour"] == "vanilla"))
    assert [o.id for o in model.query().order_by("-amount_kg")][:2] == [2**62, 2**40]
    got = model.match_for_pk(2**62)
    assert (got.id, got.flavour) == (2**62, stored[2**62]["flavour"])
    assert model.check_indexes() == []


def test_updates_and_deletes_keep_indexes_exact(model: Any, stored: dict[int, dict[str, Any]]) -> None:
    obj = model.match_for_pk(7)
    obj.flavour = "fig"
    obj.set()
    stored[7]["flavour"] = "fig"
    model.match_for_pk(-5).delete()
    del stored[-5]
    model.delete_many([0, 2**40])
    del stored[0], stored[2**40]
    assert ids(model.all()) == sorted(stored)
    assert ids(model.filter(flavour="fig")) == expect(stored, lambda r: r["flavour"] == "fig")
    assert ids(model.filter(vegan=False)) == expect(stored, lambda r: not r["vegan"])
    assert model.check_indexes() == []


@pytest.mark.real
def test_small_integer_sets_are_intsets(layout: type, request: pytest.FixtureRequest) -> None:
    """On a real server the sets above are intsets (fakeredis does not model encodings)."""
    client = real_client(request.config)
    try:
        model = scoop(layout, client)
        records = {pk: record(i, pk) for i, pk in enumerate(PKS)}
        model.set_many([model(r) for r in records.values()])
        keys = model._engine().keys
        vegan_sets = list(client.scan_iter(match=keys.equality_pattern("vegan")))
        assert len(vegan_sets) == 2
        encodings = {client.object("encoding", k) for k in [keys.members(), *vegan_sets]}
        assert encodings == {b"intset"}
        assert ids(model.filter(vegan=True)) == expect(records, lambda r: r["vegan"])
        assert model.check_indexes() == []
    finally:
        client.flushdb()
        client.close()
