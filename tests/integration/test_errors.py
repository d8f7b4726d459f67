"""Bad input gets a clear error and writes nothing; it never harms another object or an index.

Each test takes a full snapshot of the database (every key: type, content, whether it
has a TTL) before the bad call and compares it after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from schematics import types

from redis_schematics import HashRedisModel, NotFound, SimpleRedisModel, UniqueIndex
from redis_schematics.exceptions import (
    CorruptPayload,
    InvalidFilterValue,
    InvalidModel,
    InvalidPrimaryKey,
    QueryError,
    RedisSchematicsError,
    UniqueViolation,
    UnknownField,
    UnknownLookup,
    WriteConflict,
)
from redis_schematics.write import MAX_ATTEMPTS
from tests.dbstate import db_state
from tests.races import racing

Factory = Callable[..., Any]


def _text(value: Any) -> Any:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


#: layouts that store one opaque payload per object (the corrupt-payload tests write one)
PAYLOAD_LAYOUTS = {"simple": SimpleRedisModel, "hash": HashRedisModel}


@pytest.fixture(params=list(PAYLOAD_LAYOUTS))
def payload_layout(request: pytest.FixtureRequest) -> type:
    return PAYLOAD_LAYOUTS[request.param]


@pytest.fixture
def make(layout: type, client: Any) -> Factory:
    return shop_factory(layout, client)


def shop_factory(layout: type, client: Any) -> Factory:
    def factory(name: str = "Shop", **attrs: Any) -> Any:
        body: dict[str, Any] = {
            "__redis_client__": client,
            "__indexes__": ("flavour", "amount", UniqueIndex("code")),
            "id": types.StringType(),
            "flavour": types.StringType(),
            "amount": types.IntType(),
            "code": types.StringType(),
            "size": types.StringType(choices=["S", "M", "L"]),
            "name": types.StringType(required=True),
        }
        body.update(attrs)
        return type(layout)(name, (layout,), body)

    return factory


def fill(model: Any) -> Any:
    model.set_many(
        [
            model({"id": "1", "name": "one", "flavour": "vanilla", "amount": 1, "code": "C1"}),
            model({"id": "2", "name": "two", "flavour": "mint", "amount": 2, "code": "C2"}),
        ]
    )
    return model


@pytest.fixture
def shop(make: Factory) -> Any:
    return fill(make())


@pytest.fixture
def payload_shop(payload_layout: type, client: Any) -> Any:
    """The shop on a layout that stores one payload per object."""
    return fill(shop_factory(payload_layout, client)())


def write_raw(model: Any, client: Any, pk: str, payload: str, listed: bool = True) -> None:
    store = model._engine()
    if store.layout.name == "simple":
        client.set(store.keys.object(pk), payload)
    else:
        client.hset(store.keys.model_hash(), store.keys.object(pk), payload)
    if listed:
        client.sadd(store.keys.members(), pk)


def ids(objs: list[Any]) -> list[str]:
    return sorted(o.id for o in objs)


# -- invalid model data ----------------------------------------------------------------------------


def wrong_type(model: Any) -> Any:
    obj = model({"id": "3", "name": "three", "amount": 3})
    obj.amount = "not a number"
    return obj


def missing_required(model: Any) -> Any:
    return model({"id": "3", "amount": 3})


def bad_choice(model: Any) -> Any:
    return model({"id": "3", "name": "three", "size": "XXL"})


def update_with_wrong_type(model: Any) -> Any:
    obj = model.match_for_pk("1")
    obj.flavour = "changed"
    obj.amount = "not a number"
    return obj


def update_missing_required(model: Any) -> Any:
    obj = model.match_for_pk("2")
    obj.flavour = "changed"
    obj.name = None
    return obj


BAD_OBJECTS = {
    "wrong type": (wrong_type, "amount"),
    "missing required": (missing_required, "name"),
    "bad choice": (bad_choice, "size"),
    "update with wrong type": (update_with_wrong_type, "amount"),
    "update missing required": (update_missing_required, "name"),
}


@pytest.mark.parametrize("case", list(BAD_OBJECTS))
def test_invalid_object_writes_nothing(shop: Any, client: Any, case: str) -> None:
    build, field = BAD_OBJECTS[case]
    obj = build(shop)
    before = db_state(client)
    with pytest.raises(InvalidModel) as info:
        obj.set()
    msg = str(info.value)
    assert "Shop" in msg
    assert field in msg
    assert "nothing was written" in msg
    assert field in str(info.value.errors)
    assert db_state(client) == before
    assert shop.check_indexes() == []


@pytest.mark.parametrize("case", list(BAD_OBJECTS))
def test_set_many_with_one_invalid_object_writes_nothing(shop: Any, client: Any, case: str) -> None:
    build, _field = BAD_OBJECTS[case]
    good = [shop({"id": f"n{i}", "name": "new", "flavour": "vanilla"}) for i in range(3)]
    bad = build(shop)
    before = db_state(client)
    with pytest.raises(InvalidModel):
        shop.set_many([*good, bad])
    assert db_state(client) == before


def test_invalid_object_in_a_pipeline_queues_nothing(shop: Any, client: Any) -> None:
    before = db_state(client)
    pipe = client.pipeline()
    with pytest.raises(InvalidModel):
        wrong_type(shop).set(pipeline=pipe)
    assert len(pipe.command_stack) == 0
    pipe.execute()
    assert db_state(client) == before


def test_nan_in_a_range_indexed_field_writes_nothing(make: Factory, client: Any) -> None:
    model = make(__indexes__=("price",), price=types.FloatType())
    model({"id": "1", "name": "one", "price": 1.0}).set()
    before = db_state(client)
    with pytest.raises(InvalidModel) as info:
        model({"id": "2", "name": "two", "price": float("nan")}).set()
    assert "price" in str(info.value)
    assert db_state(client) == before


# -- primary keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pk", ["a:b", "*", "{tag}", "with space", "ç-ñ-日本", "[x]", "?", "a#b", "\\"])
def test_awkward_pks_are_stored_and_isolated(shop: Any, client: Any, pk: str) -> None:
    shop({"id": pk, "name": "odd", "flavour": "vanilla", "code": f"K{pk}"}).set()
    assert shop.match_for_pk(pk).id == pk
    assert shop.match(id=pk).name == "odd"
    assert ids(shop.filter(flavour="vanilla")) == sorted(["1", pk])
    assert shop.match_for_pk("1").name == "one"  # neighbours untouched
    assert shop.check_indexes() == []
    assert shop.delete_many([pk]) == 1
    assert ids(shop.all()) == ["1", "2"]
    assert shop.check_indexes() == []


@pytest.mark.parametrize("pk", ["", None])
def test_empty_pk_is_refused(shop: Any, client: Any, pk: Any) -> None:
    before = db_state(client)
    for call in (lambda: shop.match_for_pk(pk), lambda: shop.delete_many([pk])):
        with pytest.raises(InvalidPrimaryKey) as info:
            call()
        assert "Shop" in str(info.value)
    assert db_state(client) == before


# -- bad filters: clear errors, and delete_filter deletes nothing ----------------------------------

BAD_FILTERS: list[tuple[dict[str, Any], type, list[str]]] = [
    ({"flavor": "vanilla"}, UnknownField, ["Shop", "'flavor'", "did you mean 'flavour'?"]),
    ({"amount__gtee": 1}, UnknownLookup, ["Shop", "'gtee'", "did you mean 'gte'?"]),
    ({"amount": "many"}, InvalidFilterValue, ["Shop.amount", "'many'"]),
    ({"amount__in": 3}, InvalidFilterValue, ["amount__in", "list"]),
    ({"flavour": "vanilla", "amount__lt": "x"}, InvalidFilterValue, ["Shop.amount", "'x'"]),
]


@pytest.mark.parametrize(("kwargs", "error", "words"), BAD_FILTERS)
def test_bad_filters_raise_and_delete_nothing(
    shop: Any, client: Any, kwargs: dict[str, Any], error: type, words: list[str]
) -> None:
    before = db_state(client)
    calls: list[Callable[[], Any]] = [
        lambda: shop.filter(**kwargs),
        lambda: shop.count(**kwargs),
        lambda: shop.match(**kwargs),
        lambda: shop.query(**kwargs),
        lambda: shop.delete_filter(**kwargs),
    ]
    for call in calls:
        with pytest.raises(error) as info:
            call()
        assert isinstance(info.value, QueryError)
        for word in words:
            assert word in str(info.value)
    assert db_state(client) == before


# -- unique violations -----------------------------------------------------------------------------


def test_unique_violation_on_a_new_object_changes_nothing(shop: Any, client: Any) -> None:
    before = db_state(client)
    with pytest.raises(UniqueViolation) as info:
        shop({"id": "3", "name": "three", "flavour": "x", "code": "C1"}).set()
    msg = str(info.value)
    assert "Shop.code" in msg
    assert "'C1'" in msg
    assert "'1'" in msg  # the owner
    assert "'3'" in msg  # the refused object
    assert db_state(client) == before


def test_unique_violation_on_an_update_changes_nothing(shop: Any, client: Any) -> None:
    obj = shop.match_for_pk("2")
    obj.code = "C1"
    obj.flavour = "changed"
    obj.amount = 99
    before = db_state(client)
    with pytest.raises(UniqueViolation):
        obj.set()
    assert db_state(client) == before
    assert shop.match_for_pk("2").flavour == "mint"
    assert shop.match(code="C2").id == "2"


def test_unique_violation_in_set_many_writes_none_of_the_chunk(shop: Any, client: Any) -> None:
    before = db_state(client)
    batch = [
        shop({"id": "3", "name": "three", "code": "C3"}),
        shop({"id": "4", "name": "four", "code": "C2"}),  # owned by "2"
        shop({"id": "1", "name": "renamed", "code": "C1"}),
    ]
    with pytest.raises(UniqueViolation):
        shop.set_many(batch)
    assert db_state(client) == before


def test_two_new_objects_claiming_one_value_in_one_batch(shop: Any, client: Any) -> None:
    before = db_state(client)
    with pytest.raises(UniqueViolation):
        shop.set_many(
            [
                shop({"id": "3", "name": "three", "code": "C9"}),
                shop({"id": "4", "name": "four", "code": "C9"}),
            ]
        )
    assert db_state(client) == before


def test_moving_a_value_to_another_object_in_one_batch_is_checked(shop: Any, client: Any) -> None:
    before = db_state(client)
    with pytest.raises(UniqueViolation):
        shop.set_many(
            [
                shop({"id": "3", "name": "three", "code": "C8"}),
                shop({"id": "1", "name": "one", "code": "C8"}),
            ]
        )
    assert db_state(client) == before


def test_unique_value_is_free_again_after_delete_or_change(shop: Any) -> None:
    shop.match_for_pk("1").delete()
    shop({"id": "3", "name": "three", "code": "C1"}).set()
    obj = shop.match_for_pk("2")
    obj.code = "C2b"
    obj.set()
    shop({"id": "4", "name": "four", "code": "C2"}).set()
    assert shop.match(code="C1").id == "3"
    assert shop.match(code="C2").id == "4"
    assert shop.check_indexes() == []


def test_none_is_never_a_unique_claim(shop: Any) -> None:
    shop.set_many([shop({"id": str(n), "name": "x", "code": None}) for n in range(3, 6)])
    assert ids(shop.filter(code=None)) == ["3", "4", "5"]
    assert shop.check_indexes() == []


# -- corrupt stored payloads -----------------------------------------------------------------------

CORRUPT = {
    "not json": "{not json",
    "json list": "[1, 2]",
    "json string": '"text"',
    "wrong field type": '{"id": "bad", "name": "x", "amount": "abc"}',
    "list for a string": '{"id": "bad", "name": ["x"]}',
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_payload_names_the_key(payload_shop: Any, client: Any, case: str) -> None:
    write_raw(payload_shop, client, "bad", CORRUPT[case])
    before = db_state(client)
    for call in (
        lambda: payload_shop.match_for_pk("bad"),
        payload_shop.all,
        lambda: payload_shop.match_for_pks(["1", "bad"]),
    ):
        with pytest.raises(CorruptPayload) as info:
            call()
        msg = str(info.value)
        assert "Shop" in msg
        assert "'Shop:bad'" in msg
        assert info.value.key == "Shop:bad"
        assert isinstance(info.value, ValueError)
    assert db_state(client) == before  # reading a corrupt payload writes nothing


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_payload_leaves_other_objects_alone(payload_shop: Any, client: Any, case: str) -> None:
    write_raw(payload_shop, client, "bad", CORRUPT[case])
    assert payload_shop.match_for_pk("1").name == "one"
    assert payload_shop.match(code="C2").id == "2"
    assert ids(payload_shop.filter(flavour="vanilla")) == ["1"]  # the index never lists "bad"
    assert payload_shop.count(amount__gte=1) == 2
    assert [o.id if o else None for o in payload_shop.match_for_pks(["2", "nope"])] == ["2", None]
    problems = payload_shop.check_indexes()
    assert all(p.member == "bad" or "bad" in p.detail for p in problems), problems


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_payload_can_be_deleted_or_overwritten(payload_shop: Any, client: Any, case: str) -> None:
    write_raw(payload_shop, client, "bad", CORRUPT[case])
    assert payload_shop.delete_many(["bad"]) == 1
    assert ids(payload_shop.all()) == ["1", "2"]
    assert payload_shop.check_indexes() == []

    write_raw(payload_shop, client, "bad", CORRUPT[case])
    payload_shop({"id": "bad", "name": "fixed", "flavour": "vanilla", "code": "CB"}).set()
    assert payload_shop.match_for_pk("bad").name == "fixed"
    assert ids(payload_shop.filter(flavour="vanilla")) == ["1", "bad"]
    assert payload_shop.match(code="CB").id == "bad"
    payload_shop.rebuild_indexes()
    assert payload_shop.check_indexes() == []


def test_corrupt_unlisted_payload_is_reported_by_check(payload_shop: Any, client: Any) -> None:
    write_raw(payload_shop, client, "bad", "{not json", listed=False)
    assert ids(payload_shop.all()) == ["1", "2"]  # not a member: never loaded by queries
    with pytest.raises(CorruptPayload):
        payload_shop.match_for_pk("bad")
    assert any(p.member == "bad" for p in payload_shop.check_indexes())


def test_corrupt_payload_in_a_filter_names_the_key(payload_shop: Any, client: Any) -> None:
    write_raw(payload_shop, client, "bad", "[]")
    with pytest.raises(CorruptPayload, match="'Shop:bad'"):
        payload_shop.filter(name="one")  # a scan reads every object


def test_every_error_is_a_library_error() -> None:
    for exc in (CorruptPayload, InvalidModel, InvalidPrimaryKey, UniqueViolation, QueryError, NotFound):
        assert issubclass(exc, RedisSchematicsError)


def test_a_write_that_loses_every_attempt_gives_up_with_write_conflict(client: Any) -> None:
    """Another writer changes the object before each of our attempts: after MAX_ATTEMPTS
    attempts (waiting 0-50 ms from the third on) set() raises WriteConflict naming the pk,
    and none of its own changes is stored."""
    model = type(SimpleRedisModel)(
        "Contended",
        (SimpleRedisModel,),
        {
            "__redis_client__": client,
            "__indexes__": ("flavour",),
            "id": types.StringType(),
            "flavour": types.StringType(),
            "n": types.IntType(),
        },
    )
    model({"id": "v2", "flavour": "mint", "n": 0}).set()

    def rewrite(redis_client: Any, n: int) -> None:  # another client wins every race
        redis_client.set("Contended:v2", f'{{"id":"v2","flavour":"mint","n":{n}}}')

    with (
        racing(client, rewrite) as race,
        pytest.raises(WriteConflict, match=r"Contended: gave up writing \['v2'\] after 50 attempt"),
    ):
        model({"id": "v2", "flavour": "fig", "n": -1}).set()
    waits = race.waits
    assert len(race.calls) == MAX_ATTEMPTS == 50
    assert len(waits) == 48
    assert all(0 <= w <= 0.05 for w in waits)
    assert model.filter(flavour="fig") == []
    assert model.match_for_pk("v2").n == 50  # the other writer's last payload
