"""Partial reads: ``match_for_pk(pk, only=...)``, ``match_for_pks(..., only=...)`` and
``query(...).only(...)``, on every layout (``layout`` fixture) and client kind.

What is pinned here: the fields loaded hold exactly the stored values (``None`` and
"absent" included), the others hold their defaults and are listed nowhere in
``loaded_fields``; queries still filter and sort on fields ``only()`` left out; the
Distributed layouts do not even read the other fields (a corrupt value there does not
matter); and an object read partially refuses, with ``PartiallyLoaded`` and without
writing anything, a ``set()`` that would store fields it never loaded. The property
machine (``tests/property/machine.py``) checks partial reads and partial writes after
every step against its oracle.
"""

from __future__ import annotations

from typing import Any

import pytest
from schematics import types

from redis_schematics import (
    DistributedHashRedisModel,
    DistributedRedisModel,
    NotFound,
    RangeIndex,
    transaction,
)
from redis_schematics.exceptions import InvalidModel, PartiallyLoaded, UnknownField
from redis_schematics.io import sync_driver
from tests.dbstate import db_state
from tests.models import ice_cream

ROWS = [
    {"id": "v1", "flavour": "vanilla", "amount_kg": 42, "price": 1.5, "vegan": True, "code": "A"},
    {"id": "c1", "flavour": "chocolate", "amount_kg": 7, "price": None, "vegan": False, "code": "B"},
    {"id": "s1", "flavour": "strawberry", "amount_kg": 19, "price": 2.25, "vegan": None, "code": "C"},
]


def stored(layout: type, client: Any, **settings: Any) -> Any:
    model = ice_cream(layout, client, **settings)
    model.set_many([model(row) for row in ROWS])
    return model


def test_match_for_pk_only_loads_the_fields_asked_and_the_pk(layout: type, client: Any) -> None:
    model = stored(layout, client)
    whole = model.match_for_pk("v1").to_primitive()
    obj = model.match_for_pk("v1", only=["amount_kg", "vegan"])
    assert obj.loaded_fields == {"amount_kg", "vegan", "pk", "id"}
    got = obj.to_primitive()
    assert {n: got[n] for n in obj.loaded_fields} == {n: whole[n] for n in obj.loaded_fields}
    blank = model({}).to_primitive()  # the others hold their defaults, not the stored values
    assert {n: got[n] for n in ("flavour", "price", "code")} == {
        n: blank[n] for n in ("flavour", "price", "code")
    }
    assert model.match_for_pk("v1").loaded_fields == set(model.fields)


def test_only_keeps_none_and_absent_apart(layout: type, client: Any) -> None:
    attrs = {
        "__redis_client__": client,
        "id": types.StringType(),
        "price": types.FloatType(),
        "note": types.StringType(serialize_when_none=False),  # absent from storage when None
        "size": types.IntType(default=3),
    }
    model = type(layout)("Soft", (layout,), attrs)
    model({"id": "n1", "price": None, "size": 5}).set()
    obj = model.match_for_pk("n1", only=["price", "note"])
    assert obj.loaded_fields == {"price", "note", "pk", "id"}
    assert obj.to_primitive() == {"pk": "n1", "id": "n1", "price": None, "size": 3}  # size: not loaded


def test_only_of_a_missing_object_is_not_found(layout: type, client: Any) -> None:
    model = stored(layout, client)
    with pytest.raises(NotFound):
        model.match_for_pk("nope", only=["flavour"])
    found = model.match_for_pks(["c1", "nope", "v1"], only=["flavour"])
    assert found[1] is None
    assert [(o.pk, o.flavour, o.amount_kg) for o in (found[0], found[2])] == [
        ("c1", "chocolate", None),
        ("v1", "vanilla", None),
    ]


def test_only_of_an_expired_object_is_not_found(layout: type, client: Any) -> None:
    model = stored(layout, client, expire=60)
    client.zadd(model._engine().keys.members(), {"v1": 1})  # its deadline: long past
    with pytest.raises(NotFound):
        model.match_for_pk("v1", only=["flavour"])
    assert model.match_for_pk("c1", only=["flavour"]).flavour == "chocolate"


def test_only_with_unknown_field_says_which(layout: type, client: Any) -> None:
    model = stored(layout, client)
    with pytest.raises(
        UnknownField, match=r"match_for_pk\(only=\.\.\.\): no field 'flavor'; did you mean 'flavour'"
    ):
        model.match_for_pk("v1", only=["flavor"])
    with pytest.raises(UnknownField, match=r"query\(\)\.only\(\): no field 'amount'"):
        model.query().only("amount")


def test_query_only_filters_and_sorts_on_fields_it_did_not_ask_for(layout: type, client: Any) -> None:
    model = stored(layout, client)
    # price is not indexed: the rows are re-checked in Python, so price must be loaded
    rows = model.query(price__gte=1, vegan__in=[True, None]).order_by("-amount_kg").only("flavour").all()
    assert [(o.pk, o.flavour) for o in rows] == [("v1", "vanilla"), ("s1", "strawberry")]
    assert {frozenset(o.loaded_fields) for o in rows} == {
        frozenset({"flavour", "price", "vegan", "amount_kg", "pk", "id"})
    }
    assert [o.price for o in rows] == [1.5, 2.25]
    assert [o.code for o in rows] == [None, None]  # not loaded


def test_query_only_on_every_path(layout: type, client: Any) -> None:
    model = stored(layout, client)
    q = model.query(flavour__in=["vanilla", "chocolate"]).only("code")
    assert sorted((o.pk, o.code, o.amount_kg) for o in q) == [
        ("c1", "B", None),
        ("v1", "A", None),
    ]  # streamed
    assert q.count() == 2
    assert q.order_by("-code").first().code == "B"
    assert [o.code for o in q.order_by("-code").offset(1).limit(1)] == ["A"]
    everything = model.query().only("amount_kg").all()
    assert [(o.pk, o.amount_kg, o.flavour) for o in everything] == [
        ("c1", 7, None),
        ("s1", 19, None),
        ("v1", 42, None),
    ]


def test_query_delete_with_only_removes_whole_objects(layout: type, client: Any) -> None:
    model = stored(layout, client)
    assert model.query(amount_kg__lt=20).only("code").delete() == 2
    assert [o.pk for o in model.all()] == ["v1"]
    assert model.check_indexes() == []


def test_partial_object_refuses_writing_fields_it_did_not_load(layout: type, client: Any) -> None:
    model = stored(layout, client)
    obj = model.match_for_pk("v1", only=["amount_kg"])
    before = db_state(client)
    with pytest.raises(
        PartiallyLoaded, match=r"'v1' was read with only=\[amount_kg, id, pk\]; set\(\) would store"
    ):
        obj.set()
    with pytest.raises(PartiallyLoaded, match=r"would store flavour without having loaded") as err:
        obj.set(only=["amount_kg", "flavour"])
    assert err.value.missing == ("flavour",)
    with pytest.raises(PartiallyLoaded):
        model.set_many([model(ROWS[1]), obj])
    with pytest.raises(PartiallyLoaded), transaction(client) as tx:
        obj.set(pipeline=tx)
    assert db_state(client) == before  # nothing written, not even the valid object


def test_partial_object_writes_what_it_loaded_and_keeps_the_rest(layout: type, client: Any) -> None:
    model = stored(layout, client)
    obj = model.match_for_pk("v1", only=["amount_kg", "flavour"])
    obj.amount_kg, obj.flavour = 43, "mint"
    obj.set(only=["amount_kg", "flavour"])
    assert model.match_for_pk("v1").to_primitive() == {**model(ROWS[0]).to_primitive(), "pk": "v1"} | {
        "amount_kg": 43,
        "flavour": "mint",
    }
    assert [o.pk for o in model.filter(flavour="mint")] == ["v1"]
    assert model.filter(flavour="vanilla") == []
    assert model.check_indexes() == []


def test_refresh_makes_a_partial_object_whole(layout: type, client: Any) -> None:
    model = stored(layout, client)
    obj = model.match_for_pk("s1", only=["code"])
    assert obj.refresh() is obj
    assert obj.loaded_fields == set(model.fields)
    assert obj.to_primitive() == model.match_for_pk("s1").to_primitive()
    obj.set()  # whole again: allowed


@pytest.mark.parametrize("base", [DistributedRedisModel, DistributedHashRedisModel])
def test_field_layouts_read_only_the_fields_asked(base: type, client: Any) -> None:
    """A value that cannot be decoded breaks a whole read, not a read that skips it."""
    model = stored(base, client)
    keys = model._engine().keys
    if base is DistributedRedisModel:
        client.hset(keys.object("v1"), "amount_kg", "{not json")
    else:
        client.hset(keys.column("amount_kg"), "v1", "{not json")
    with pytest.raises(Exception, match="v1"):
        model.match_for_pk("v1")
    assert model.match_for_pk("v1", only=["flavour"]).flavour == "vanilla"
    assert [o.code for o in model.query(flavour="vanilla").only("code")] == ["A"]


def test_column_layout_tells_a_stored_object_from_a_missing_one(client: Any) -> None:
    """A partial read of columns that hold nothing for a pk still finds the object
    (the other columns are asked), and still misses one that is not stored."""
    model = ice_cream(DistributedHashRedisModel, client, indexed=False)
    model({"id": "e1", "flavour": "x"}).set()
    layout = model._engine().layout
    states = sync_driver(client).handle(layout.read(["e1", "zz"], ["price", "code"]))
    assert states[0] is not None
    assert states[1] is None
    assert layout.decode(states[0], ["price", "code"]) == {"price": None, "code": None}


def strict_model(layout: type, client: Any) -> Any:
    """A model with required fields, one of them indexed, and a choice-limited status."""
    attrs = {
        "__redis_client__": client,
        "__prefix__": "Strict",
        "__indexes__": ("status", RangeIndex("rank")),
        "id": types.StringType(),
        "name": types.StringType(required=True),
        "rank": types.IntType(required=True),
        "status": types.StringType(choices=["new", "done"]),
    }
    model = type(layout)("Strict", (layout,), attrs)
    model({"id": "1", "name": "first", "rank": 3, "status": "new"}).set()
    return model


def test_partial_write_validates_only_the_fields_it_writes(layout: type, client: Any) -> None:
    """The way docs/querying.md updates one field: read it alone, write it alone. The
    required fields it did not load (None on the object) are not validated."""
    model = strict_model(layout, client)
    obj = model.match_for_pk("1", only=["status"])
    assert obj.name is None  # required, not loaded
    obj.status = "done"
    obj.set(only=["status"])  # raised InvalidModel: 'This field is required.'
    assert model.match_for_pk("1").to_primitive() == {
        "id": "1", "pk": "1", "name": "first", "rank": 3, "status": "done"
    }  # fmt: skip
    assert [o.pk for o in model.filter(status="done")] == ["1"]
    assert [o.pk for o in model.filter(rank__gte=3)] == ["1"]
    assert model.check_indexes() == []


def test_partial_write_still_refuses_an_invalid_written_value(layout: type, client: Any) -> None:
    model = strict_model(layout, client)
    obj = model.match_for_pk("1", only=["status", "rank"])
    before = db_state(client)
    obj.status = "lost"
    with pytest.raises(InvalidModel, match=r"status.*Value \(lost\) must be one of") as err:
        obj.set(only=["status"])
    assert "name" not in str(err.value)  # not written, not looked at
    obj.status, obj.rank = "done", None
    with pytest.raises(InvalidModel, match=r"'rank': \['This field is required.'\]"):
        obj.set(only=["status", "rank"])  # a required field it writes must hold a value
    obj.rank = "three"
    with pytest.raises(InvalidModel, match="rank"):
        obj.set(only=["rank"])
    assert db_state(client) == before
    obj.rank = "4"  # converted, as validate() converts it
    obj.set(only=["rank"])
    assert model.match_for_pk("1").rank == 4
    assert [o.pk for o in model.filter(rank=4)] == ["1"]


def test_partial_write_of_an_object_deleted_since_its_read_is_refused(layout: type, client: Any) -> None:
    """Written whole, it would store the required fields it never loaded as None."""
    model = strict_model(layout, client)
    obj = model.match_for_pk("1", only=["status"])
    model.delete_many(["1"])
    before = db_state(client)
    obj.status = "done"
    with pytest.raises(
        PartiallyLoaded, match=r"'1' was read with only=\[.*\] and is no longer stored"
    ) as err:
        obj.set(only=["status"])
    assert set(err.value.missing) == {"name", "rank"}
    assert db_state(client) == before
