"""The Distributed (hash per object) and DistributedHash (hash per field) layouts.

What is pinned here: the exact Redis shapes after ``set()``, the round trip of ``None``
and of absent fields, compound fields stored as JSON, partial writes
(``set(only=[...])``) that write one hash field and touch only the indexes of that field,
TTL per object / per model, and the compare-and-set guards that keep indexes exact when
writers race. Every test runs on fakeredis and on the real server (``client`` /
``backend`` fixtures); the common behaviour of all layouts is covered by the rest of the
suite through the ``layout`` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import redis
from schematics import models, types
from schematics.types import compound

from redis_schematics import (
    DistributedHashRedisMixin,
    DistributedHashRedisModel,
    DistributedRedisMixin,
    DistributedRedisModel,
    NotFound,
    RangeIndex,
    SimpleRedisModel,
    UniqueIndex,
    transaction,
)
from redis_schematics.exceptions import CorruptPayload, InvalidModel, UnknownField
from redis_schematics.write import commit, read_state
from tests import dbstate
from tests.engine import layout_read, run
from tests.races import racing

Factory = Callable[..., Any]

FIELD_LAYOUTS = {"distributed": DistributedRedisModel, "distributed_hash": DistributedHashRedisModel}
INDEXES = ("flavour", "vegan", RangeIndex("amount_kg"), UniqueIndex("code"))


class Nutrition(models.Model):
    kcal = types.IntType()
    sugar_g = types.FloatType()


def fields() -> dict[str, Any]:
    return {
        "id": types.StringType(),
        "flavour": types.StringType(),
        "amount_kg": types.IntType(),
        "price": types.FloatType(),
        "best_before": types.DateTimeType(),
        "vegan": types.BooleanType(),
        "code": types.StringType(),
        "tags": compound.ListType(types.StringType()),
        "extra": compound.DictType(types.IntType()),
        "nutrition": compound.ModelType(Nutrition),
        "note": types.StringType(serialize_when_none=False),
        "size": types.IntType(default=3),
    }


@pytest.fixture(params=list(FIELD_LAYOUTS))
def field_layout(request: pytest.FixtureRequest) -> type:
    """The ready-made model of each field layout."""
    return FIELD_LAYOUTS[request.param]


def factory(base: type, client: Any) -> Factory:
    def make(name: str = "IceCream", **attrs: Any) -> Any:
        body: dict[str, Any] = {"__redis_client__": client, "__indexes__": INDEXES, **fields()}
        body.update(attrs)
        return type(base)(name, (base,), body)

    return make


@pytest.fixture
def make(field_layout: type, client: Any) -> Factory:
    return factory(field_layout, client)


def is_columns(model: Any) -> bool:
    return bool(model._engine().layout.name == "distributed_hash")


def s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def key_names(client: Any) -> set[str]:
    return dbstate.key_names(client)


def hash_of(client: Any, key: str) -> dict[str, str]:
    return {s(k): s(v) for k, v in client.hgetall(key).items()}


def stored_fields(model: Any, client: Any, pk: str) -> dict[str, str]:
    """What Redis holds for one object: hash field (or column) -> stored text."""
    store = model._engine()
    if not is_columns(model):
        return hash_of(client, store.keys.object(pk))
    out = {}
    for name in store.layout.codec.names:  # type: ignore[attr-defined]
        value = client.hget(store.keys.column(name), pk)
        if value is not None:
            out[name] = s(value)
    return out


def vanilla(model: Any, **over: Any) -> Any:
    data = {
        "id": "v1",
        "flavour": "vanilla",
        "amount_kg": 42,
        "price": 1.5,
        "best_before": datetime(2026, 3, 1, 12),
        "vegan": True,
        "code": "X1",
        "tags": ["a", "b"],
        "extra": {"k": 1},
        "nutrition": {"kcal": 120, "sugar_g": 9.5},
    }
    data.update(over)
    return model(data)


VANILLA_STORED = {
    "pk": "v1",
    "id": "v1",
    "flavour": "vanilla",
    "amount_kg": "42",
    "price": "1.5",
    "best_before": "2026-03-01T12:00:00.000000",
    "vegan": "true",
    "code": "X1",
    "tags": '["a","b"]',
    "extra": '{"k":1}',
    "nutrition": '{"kcal":120,"sugar_g":9.5}',
    "size": "3",
}

INDEX_KEYS = {
    "IceCream#members",
    "IceCream#meta",
    "IceCream#eq:flavour:vanilla",
    "IceCream#eq:vegan:true",
    "IceCream#range:amount_kg",
    "IceCream#unique:code",
}


# -- Redis shapes ---------------------------------------------------------------------------------


def test_distributed_stores_one_hash_per_object(client: Any) -> None:
    model = factory(DistributedRedisModel, client)()
    vanilla(model).set()
    assert key_names(client) == {"IceCream:v1", *INDEX_KEYS}
    assert s(client.type("IceCream:v1")) == "hash"
    # "note" is None and not serialized when None: no hash field at all
    assert hash_of(client, "IceCream:v1") == VANILLA_STORED
    assert model({"id": "v1"}).key == "IceCream:v1"


def test_distributed_hash_stores_one_hash_per_field(client: Any) -> None:
    model = factory(DistributedHashRedisModel, client)()
    vanilla(model).set()
    vanilla(model, id="m1", code="M1").set()
    columns = {f"IceCream#col:{name}" for name in VANILLA_STORED}
    assert key_names(client) == columns | INDEX_KEYS  # no object key, no column for "note"
    for name, value in VANILLA_STORED.items():
        expected_m1 = {"pk": "m1", "id": "m1", "code": "M1"}.get(name, value)
        assert hash_of(client, f"IceCream#col:{name}") == {"v1": value, "m1": expected_m1}
    assert {s(m) for m in client.smembers("IceCream#members")} == {"v1", "m1"}


def test_index_keys_are_those_of_the_payload_layouts(field_layout: type, client: Any) -> None:
    model = factory(field_layout, client)()
    simple = factory(SimpleRedisModel, client)("Plain", __prefix__="IceCream")

    def index_state() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in key_names(client):
            if key.startswith("IceCream#") and "#col:" not in key and key != "IceCream#members":
                kind = s(client.type(key))
                if kind == "set":
                    out[key] = {s(m) for m in client.smembers(key)}
                elif kind == "zset":
                    out[key] = {s(m): sc for m, sc in client.zrange(key, 0, -1, withscores=True)}
                else:
                    out[key] = hash_of(client, key)
        return out

    vanilla(model).set()
    ours = index_state()
    client.flushdb()
    vanilla(simple).set()  # same prefix: the same index keys, with the same members
    assert index_state() == ours
    assert set(ours) == INDEX_KEYS - {"IceCream#members"}


def test_serialized_names_name_the_hash_fields(field_layout: type, client: Any) -> None:
    model = factory(field_layout, client)(
        "Named", __indexes__=None, amount_kg=types.IntType(serialized_name="amt")
    )
    vanilla(model).set()
    stored = stored_fields(model, client, "v1")
    assert stored["amt"] == "42"
    assert "amount_kg" not in stored
    assert model.match_for_pk("v1").amount_kg == 42


def test_none_is_stored_explicitly(make: Factory, client: Any) -> None:
    model = make()
    model({"id": "n1", "flavour": None, "price": None, "tags": None, "size": None, "note": None}).set()
    stored = stored_fields(model, client, "n1")
    assert stored["flavour"] == "\0null"  # a string field: "\0" + JSON
    assert stored["price"] == "null"  # a number field: its JSON
    assert stored["tags"] == "null"
    assert stored["size"] == "null"  # None, not the default 3
    assert "note" not in stored  # absent from to_primitive(): absent from Redis


# -- round trips ----------------------------------------------------------------------------------

ROUND_TRIPS = [
    {"id": "all-none"},
    {"id": "empty", "flavour": "", "code": "", "tags": [], "extra": {}, "note": ""},
    {"id": "marks", "flavour": "\0null", "code": "\0", "note": "\0x", "tags": ["\0"]},
    {"id": "json-looking", "flavour": "null", "code": "42", "note": '{"a": 1}'},
    {"id": "unicode", "flavour": "sorvete-ç 🍦", "tags": ["ç", "🍦"], "extra": {"ç": 2}},
    {"id": "spaces", "flavour": " ", "code": "a b", "note": "\n"},
    {"id": "numbers", "amount_kg": -(2**63) - 1, "price": -0.0, "size": 0, "extra": {"big": 2**70}},
    {"id": "size-none", "size": None, "nutrition": {"kcal": None}},
    {"id": "false", "vegan": False, "price": 1e-300},
    {"id": "a:b *[x]{y}", "flavour": "pk with odd characters"},
]


@pytest.mark.parametrize("data", ROUND_TRIPS, ids=[d["id"] for d in ROUND_TRIPS])
def test_none_and_absent_round_trip(make: Factory, data: dict[str, Any]) -> None:
    model = make(__indexes__=("flavour", RangeIndex("amount_kg")))
    obj = model(data)
    obj.set()
    loaded = model.match_for_pk(data["id"])
    assert loaded.to_primitive() == obj.to_primitive()
    assert [o.to_primitive() for o in model.all()] == [obj.to_primitive()]


def test_round_trip_matches_the_simple_layout(field_layout: type, client: Any) -> None:
    """Where a round trip changes an object (a None field that is not serialized and has a
    default), it changes it exactly as the JSON layouts do."""
    extra = {"level": types.IntType(default=7, serialize_when_none=False)}
    ours = factory(field_layout, client)(**extra)
    simple = factory(SimpleRedisModel, client)("Plain", __prefix__="Plain", **extra)
    for data in [*ROUND_TRIPS, {"id": "lvl", "level": None}, {"id": "lvl2", "level": 0}]:
        ours(data).set()
        simple(data).set()
        assert ours.match_for_pk(data["id"]).to_primitive() == simple.match_for_pk(data["id"]).to_primitive()
    assert ours.match_for_pk("lvl").level == 7  # absent in storage: the default, on both layouts


def test_compound_fields_are_json(make: Factory, client: Any) -> None:
    model = make()
    obj = vanilla(model, tags=["x", "y"], extra={"a": 1, "b": 2}, nutrition={"kcal": 1})
    obj.set()
    stored = stored_fields(model, client, "v1")
    for name in ("tags", "extra", "nutrition"):
        assert json.loads(stored[name]) == obj.to_primitive()[name]
    assert json.loads(stored["nutrition"]) == {"kcal": 1, "sugar_g": None}


def test_compound_fields_use_the_model_serializer(make: Factory, client: Any) -> None:
    model = make(
        __serializer__=staticmethod(lambda value: "J" + json.dumps(value)),
        __deserializer__=staticmethod(lambda dump: json.loads(s(dump)[1:])),
    )
    obj = vanilla(model)
    obj.set()
    stored = stored_fields(model, client, "v1")
    assert stored["tags"] == 'J["a", "b"]'
    assert stored["amount_kg"] == "42"  # scalars are their own text
    assert model.match_for_pk("v1").to_primitive() == obj.to_primitive()


def test_unknown_hash_fields_are_ignored_and_a_whole_write_drops_them(make: Factory, client: Any) -> None:
    model = make()
    obj = vanilla(model)
    obj.set()
    store = model._engine()
    if is_columns(model):
        client.hset(store.keys.column("legacy"), "v1", "old")  # not a column of the model
    else:
        client.hset("IceCream:v1", "legacy", "old")
    assert model.match_for_pk("v1").to_primitive() == obj.to_primitive()
    obj.set()
    if not is_columns(model):
        assert "legacy" not in hash_of(client, "IceCream:v1")


def test_hash_state_does_not_depend_on_field_order(backend: Any) -> None:
    model = factory(DistributedRedisModel, backend)(__indexes__=None)
    backend.hset("IceCream:a", mapping={"flavour": "x", "code": "y"})
    backend.hset("IceCream:b", mapping={"code": "y", "flavour": "x"})
    layout = model._engine().layout
    first, second = layout_read(model, backend, ["a", "b"])
    assert first == second
    assert layout.decode(first) == {"flavour": "x", "code": "y"}


# -- partial writes ---------------------------------------------------------------------------


def test_partial_set_writes_one_field_and_its_index_only(make: Factory, client: Any) -> None:
    model = make()
    obj = vanilla(model)
    obj.set()
    store = model._engine()
    # Behind the library's back: another field changes in Redis. A write of "amount_kg"
    # only must not touch it.
    if is_columns(model):
        client.hset(store.keys.column("price"), "v1", "9.5")
    else:
        client.hset("IceCream:v1", "price", "9.5")
    before = stored_fields(model, client, "v1")

    obj.amount_kg = 7
    obj.flavour = "mint"  # changed in memory, not written: not in only=
    obj.set(only=["amount_kg"])

    after = stored_fields(model, client, "v1")
    assert after == {**before, "amount_kg": "7"}  # one hash field (column) written
    assert float(client.zscore("IceCream#range:amount_kg", "v1")) == 7.0
    assert {s(m) for m in client.smembers("IceCream#eq:flavour:vanilla")} == {"v1"}
    assert not client.exists("IceCream#eq:flavour:mint")
    loaded = model.match_for_pk("v1")
    assert (loaded.amount_kg, loaded.flavour, loaded.price) == (7, "vanilla", 9.5)
    assert model.filter(amount_kg__lt=10, flavour="vanilla") == [loaded]
    assert model.check_indexes() == []


def test_partial_set_to_none_and_to_absent(make: Factory, client: Any) -> None:
    model = make()
    obj = vanilla(model, note="hello")
    obj.set()
    obj.flavour = None
    obj.note = None  # not serialized when None: the field goes
    obj.set(only=["flavour", "note"])
    stored = stored_fields(model, client, "v1")
    assert stored["flavour"] == "\0null"
    assert "note" not in stored
    assert model.match_for_pk("v1").to_primitive() == obj.to_primitive()
    assert model.filter(flavour=None) == [obj]
    assert not client.exists("IceCream#eq:flavour:vanilla")
    assert model.check_indexes() == []


def test_partial_set_of_an_absent_object_writes_it_whole(make: Factory, client: Any) -> None:
    model = make()
    obj = vanilla(model)
    obj.set(only=["amount_kg"])
    assert stored_fields(model, client, "v1") == VANILLA_STORED
    assert model.match_for_pk("v1").to_primitive() == obj.to_primitive()
    assert model.check_indexes() == []


def test_partial_set_of_an_unknown_field_writes_nothing(make: Factory, client: Any) -> None:
    model = make()
    with pytest.raises(UnknownField, match=r"amount_kgg.*did you mean 'amount_kg'"):
        vanilla(model).set(only=["amount_kgg"])
    assert key_names(client) == set()


def test_partial_set_keeps_unique_index_exact(make: Factory, client: Any) -> None:
    model = make()
    vanilla(model).set()
    other = vanilla(model, id="m1", code="M1")
    other.set()
    other.code = "X1"
    with pytest.raises(Exception, match="already belongs"):
        other.set(only=["code"])
    assert stored_fields(model, client, "m1")["code"] == "M1"
    other.code = "M2"
    other.set(only=["code"])
    assert {s(k): s(v) for k, v in client.hgetall("IceCream#unique:code").items()} == {"X1": "v1", "M2": "m1"}
    assert model.check_indexes() == []


@pytest.fixture
def any_model(layout: type, backend: Any) -> Any:
    return factory(layout, backend)()


def test_partial_set_means_the_same_on_every_layout(any_model: Any) -> None:
    """Simple and Hash rewrite the payload, the field layouts write the field: the stored
    object and the indexes end up the same."""
    model = any_model
    vanilla(model).set()
    stale = vanilla(model, flavour="chocolate", price=0.5)  # an old copy in memory
    stale.amount_kg = 5
    stale.set(only=["amount_kg", "vegan"])
    loaded = model.match_for_pk("v1")
    assert loaded.to_primitive() == vanilla(model, amount_kg=5, pk="v1").to_primitive()
    assert model.filter(flavour="vanilla", amount_kg=5) == [loaded]
    assert model.filter(flavour="chocolate") == []
    assert model.check_indexes() == []


def test_partial_set_in_a_transaction_and_a_pipeline(any_model: Any, backend: Any) -> None:
    model = any_model
    vanilla(model).set()
    stale = vanilla(model, flavour="mint")
    stale.amount_kg = 1
    with transaction() as tx:
        stale.set(pipeline=tx, only=["amount_kg"])
    assert (model.match_for_pk("v1").amount_kg, model.match_for_pk("v1").flavour) == (1, "vanilla")
    stale.amount_kg = 2
    pipe = backend.pipeline()
    stale.set(pipeline=pipe, only=["amount_kg"])
    pipe.execute()
    assert (model.match_for_pk("v1").amount_kg, model.match_for_pk("v1").flavour) == (2, "vanilla")
    assert model.check_indexes() == []


# -- TTL ----------------------------------------------------------------------------------------


def test_distributed_ttl_is_per_object(backend: Any) -> None:
    model = factory(DistributedRedisModel, backend)(__expire__=100, __indexes__=None)
    one, two = vanilla(model), vanilla(model, id="v2", code="X2")
    one.set()
    two.set()
    assert 99_000 < backend.pttl("IceCream:v1") <= 100_000
    backend.pexpire("IceCream:v1", 5_000)
    backend.pexpire("IceCream:v2", 5_000)
    one.amount_kg = 1
    one.set(only=["amount_kg"])  # a write renews that object's TTL only
    assert 99_000 < backend.pttl("IceCream:v1") <= 100_000
    assert backend.pttl("IceCream:v2") <= 5_000


def test_distributed_ttl_keeps_expired_objects_one_more_period_when_indexed(backend: Any) -> None:
    model = factory(DistributedRedisModel, backend)(__expire__=100)
    vanilla(model).set()
    assert 199_000 < backend.pttl("IceCream:v1") <= 200_000  # entries of an expired object can be found


def test_distributed_hash_ttl_is_per_model(backend: Any) -> None:
    model = factory(DistributedHashRedisModel, backend)(__expire__=100, __indexes__=None)
    obj = vanilla(model)
    obj.set()
    columns = [f"IceCream#col:{name}" for name in VANILLA_STORED]
    for column in columns:
        assert 99_000 < backend.pttl(column) <= 100_000
        backend.pexpire(column, 5_000)
    obj.amount_kg = 1
    obj.set(only=["amount_kg"])
    for column in columns:  # also the columns the write did not touch: they hold the object
        assert 99_000 < backend.pttl(column) <= 100_000


def test_expired_objects_disappear_and_are_purged(field_layout: type, backend: Any) -> None:
    model = factory(field_layout, backend)(__expire__=100)
    vanilla(model).set()
    vanilla(model, id="v2", code="X2").set()
    backend.zadd("IceCream#members", {"v1": 1})  # v1's deadline is long past
    with pytest.raises(NotFound):
        model.match_for_pk("v1")
    assert [o.id for o in model.filter(flavour="vanilla")] == ["v2"]
    assert model.purge_expired() <= 1
    assert stored_fields(model, backend, "v1") == {}
    assert [s(m) for m in backend.smembers("IceCream#eq:flavour:vanilla")] == ["v2"]
    assert model.check_indexes() == []


def test_partial_set_of_an_expired_object_writes_it_whole(field_layout: type, backend: Any) -> None:
    model = factory(field_layout, backend)(__expire__=100)
    vanilla(model, flavour="old").set()
    backend.zadd("IceCream#members", {"v1": 1})
    fresh = vanilla(model)
    fresh.set(only=["amount_kg"])  # the expired object's other fields are not resurrected
    assert model.match_for_pk("v1").to_primitive() == fresh.to_primitive()
    assert model.check_indexes() == []


# -- guards and concurrent writers ----------------------------------------------------------------


def item_of(model: Any, obj: Any, only: tuple[str, ...] | None = None) -> Any:
    """The write of ``obj`` (of just the fields ``only``), not sent yet."""
    (item,) = model._engine().writes.items([obj], only)
    return item


def test_the_read_state_is_the_guard_state(make: Factory, client: Any) -> None:
    """A write computed from a read applies in one script call: the state read returns
    is exactly what the guard in apply_write.lua recomputes."""
    model = make()
    obj = vanilla(model, note="\0x", tags=["ç"])
    obj.set()
    item = item_of(model, vanilla(model, flavour="mint"))
    run(model, read_state([item]))
    assert item.expected is not None
    with racing(client) as race:
        run(model, commit([item]))
    assert race.names == ["apply_write"]
    assert model.match_for_pk("v1").flavour == "mint"


def test_a_concurrent_change_is_caught_by_the_guard(make: Factory, client: Any) -> None:
    model = make()
    vanilla(model).set()
    item = item_of(model, vanilla(model, flavour="chocolate"))
    run(model, read_state([item]))  # sees vanilla
    vanilla(model, flavour="mint").set()  # another writer, between read and write
    run(model, commit([item]))  # the guard fails, the write is redone on "mint"
    assert model.match_for_pk("v1").flavour == "chocolate"
    assert model.filter(flavour="mint") == []
    assert model.filter(flavour="vanilla") == []
    assert model.check_indexes() == []


def test_a_concurrent_change_fails_a_queued_write(make: Factory, client: Any) -> None:
    model = make()
    vanilla(model).set()
    pipe = client.pipeline(transaction=False)
    vanilla(model, flavour="chocolate").set(pipeline=pipe)  # state read now
    vanilla(model, flavour="mint").set()
    (result,) = pipe.execute(raise_on_error=False)
    assert isinstance(result, redis.ResponseError)
    assert "RSGUARD" in str(result)
    assert model.match_for_pk("v1").flavour == "mint"
    assert model.check_indexes() == []


def test_concurrent_partial_writes_of_different_fields_both_land(make: Factory, client: Any) -> None:
    """A partial write guards only its own fields: another field written between its read
    and its write does not even make it retry."""
    model = make()
    vanilla(model).set()
    item = item_of(model, vanilla(model, flavour="mint"), ("flavour",))
    run(model, read_state([item]))
    vanilla(model, amount_kg=2).set(only=["amount_kg"])  # lands between b's read and write
    with racing(client) as race:
        run(model, commit([item]))
    assert race.names == ["apply_write"]
    loaded = model.match_for_pk("v1")
    assert (loaded.amount_kg, loaded.flavour) == (2, "mint")
    assert model.check_indexes() == []


def test_a_partial_write_retries_when_its_own_field_changed(make: Factory, client: Any) -> None:
    model = make()
    vanilla(model).set()
    item = item_of(model, vanilla(model, flavour="mint"), ("flavour",))
    run(model, read_state([item]))  # sees vanilla
    vanilla(model, flavour="chocolate").set(only=["flavour"])  # the same field, meanwhile
    run(model, commit([item]))  # the guard fails; the retry removes "chocolate", not "vanilla"
    assert model.match_for_pk("v1").flavour == "mint"
    assert model.filter(flavour="chocolate") == []
    assert model.check_indexes() == []


def test_a_partial_write_rewrites_an_object_deleted_meanwhile(make: Factory, client: Any) -> None:
    model = make()
    vanilla(model).set()
    b = vanilla(model, amount_kg=5)
    item = item_of(model, b, ("amount_kg",))
    run(model, read_state([item]))
    model.delete_many(["v1"])  # between the read and the write
    run(model, commit([item]))  # the object is written whole again
    assert model.match_for_pk("v1").to_primitive() == b.to_primitive()
    assert model.check_indexes() == []


# -- upkeep, bad data -------------------------------------------------------------------------


def test_check_and_rebuild_keep_the_columns(make: Factory, client: Any) -> None:
    model = make()
    vanilla(model).set()
    before = key_names(client)
    assert model.check_indexes() == []
    assert model.rebuild_indexes() == 0
    assert key_names(client) == before


def test_rebuild_adopts_objects_written_without_the_library(make: Factory, client: Any) -> None:
    model = make()
    store = model._engine()
    if is_columns(model):
        for name, value in {"id": "z9", "flavour": "vanilla", "amount_kg": "3"}.items():
            client.hset(store.keys.column(name), "z9", value)
    else:
        client.hset("IceCream:z9", mapping={"id": "z9", "flavour": "vanilla", "amount_kg": "3"})
        client.set("IceCream:not-a-hash", "x")  # another layout's key under the same pattern
    assert model.filter(flavour="vanilla") == []  # not listed yet
    assert model.rebuild_indexes() == 1
    assert [o.id for o in model.filter(flavour="vanilla", amount_kg=3)] == ["z9"]
    assert model.check_indexes() == []
    assert model.delete_all() == 1


def test_a_corrupt_value_names_the_object(make: Factory, client: Any) -> None:
    model = make()
    vanilla(model).set()
    vanilla(model, id="v2", code="X2").set()
    store = model._engine()
    if is_columns(model):
        client.hset(store.keys.column("amount_kg"), "v1", "not json")
    else:
        client.hset("IceCream:v1", "amount_kg", "not json")
    with pytest.raises(CorruptPayload) as info:
        model.match_for_pk("v1")
    assert "'IceCream:v1'" in str(info.value)
    assert model.match_for_pk("v2").amount_kg == 42
    assert model.delete_many(["v1"]) == 1  # a corrupt object can still be deleted
    assert stored_fields(model, client, "v1") == {}
    vanilla(model).set()
    assert model.check_indexes() == []


def test_an_object_with_nothing_to_store_is_refused(field_layout: type, client: Any) -> None:
    mixin = DistributedRedisMixin if field_layout is DistributedRedisModel else DistributedHashRedisMixin

    class Bare(models.Model, mixin):  # type: ignore[misc, valid-type]
        __redis_client__ = client
        note = types.StringType(serialize_when_none=False)

    with pytest.raises(InvalidModel, match="no field to store"):
        Bare({}).set()
    assert key_names(client) == set()
    Bare({"note": "x"}).set()
    assert [o.note for o in Bare.all()] == ["x"]


def test_threads_writing_different_fields_lose_no_update(any_model: Any) -> None:
    """Partial writes of different fields race on one object: each field ends with its
    writer's last value (nobody rewrites a stale copy of the others) and the indexes are
    exact, on every layout."""
    model = any_model
    vanilla(model).set()
    rounds = 40
    errors: list[BaseException] = []

    def writer(field: str, values: list[Any]) -> None:
        try:
            obj = vanilla(model, flavour="stale", amount_kg=-1, vegan=None)  # a stale copy
            for value in values:
                setattr(obj, field, value)
                obj.set(only=[field])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    plans = {
        "amount_kg": list(range(rounds)),
        "flavour": [f"f{n % 3}" for n in range(rounds)],
        "vegan": [n % 2 == 0 for n in range(rounds)],
    }
    threads = [threading.Thread(target=writer, args=item) for item in plans.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    loaded = model.match_for_pk("v1")
    assert (loaded.amount_kg, loaded.flavour, loaded.vegan) == (rounds - 1, "f0", False)
    assert loaded.price == 1.5  # never written, never clobbered
    assert model.filter(flavour="f0", vegan=False, amount_kg=rounds - 1) == [loaded]
    assert model.check_indexes() == []
